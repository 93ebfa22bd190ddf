//! Gapless information of MP4/M4A files, read from the file itself: the audio track's edit list
//! (`moov/trak/edts/elst`) and iTunes' `iTunSMPB` tag (`moov/udta/meta/ilst/----`).
//!
//! AAC encoders put priming samples (1024 for ffmpeg's and most others, 2112 for Apple's) in
//! front of the audio and pad the last frame. The container says how many: the edit list's
//! `media_time` is where presentation starts in the decoded stream, and its `segment_duration`
//! how long it lasts; files from iTunes state the priming in `iTunSMPB` instead.
//!
//! symphonia 0.6.1's isomp4 reader parses `elst` but does not apply it, and ignores `iTunSMPB`:
//! every track starts with the priming samples (an offset of 1024 or 2112 samples against every
//! other decoder). The upstream fix: `symphonia-format-isomp4` should set the first packets'
//! `trim_start` from the edit's `media_time` (or `iTunSMPB`'s priming) and the last packet's
//! `trim_end` from the edit's end, so that the AAC decoder drops them as the MP3 and Vorbis
//! decoders already do with their packets' trims (`demuxer.rs`, "TODO: Support edits"). Until
//! then, [`SymphoniaSource`](super::symphonia::SymphoniaSource) applies what this module reads.
//!
//! ffmpeg (the reference the decoding is compared against) starts exactly at `media_time`
//! (or the `iTunSMPB` priming when there is no edit list) and, at the end, keeps every packet
//! that starts before the end of the edit, whole: [`Mp4Gapless::end`] follows it.
//!
//! The parser is bounded: it only reads box headers and the few small boxes it needs, never a
//! box's body larger than 64 KiB, at most 16 levels deep and 100 000 boxes; a malformed file
//! gives `None` (no trimming), never an error.

use std::io::{Read, Seek, SeekFrom};

/// What the container says about priming and padding, in samples at the track's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mp4Gapless {
    /// Decoded samples to drop at the start (encoder priming).
    pub priming: u64,
    /// Where presentation ends, counted in decoded samples from the start of the stream
    /// (priming included), when the edit list says so.
    pub end: Option<u64>,
    /// The presented length (without priming and padding), when the container states it.
    pub frames: Option<u64>,
}

/// An `elst` entry that presents media.
#[derive(Debug, Clone, Copy)]
struct Edit {
    /// In the movie's time scale.
    segment_duration: u64,
    /// In the media's time scale.
    media_time: i64,
}

#[derive(Debug, Default)]
struct Track {
    sound: bool,
    media_timescale: Option<u32>,
    edits: Vec<Edit>,
    /// Edits present but not understood (several media edits, a rate other than 1).
    complex_edits: bool,
}

/// The raw gapless boxes of a file (see [`scan`]).
#[derive(Debug, Default)]
pub struct Found {
    movie_timescale: Option<u32>,
    tracks: Vec<Track>,
    itunsmpb: Option<String>,
}

const MAX_DEPTH: u32 = 16;
const MAX_BOXES: u32 = 100_000;
const MAX_LEAF: u64 = 64 * 1024;

struct Walker<'a, R> {
    r: &'a mut R,
    boxes: u32,
    found: Found,
}

/// Reads the gapless information of the first sound track of an MP4 file, for a track decoded
/// at `sample_rate`. `None` when the file is not MP4 or holds no usable information.
#[cfg(test)]
fn read<R: Read + Seek>(r: &mut R, len: u64, sample_rate: u32) -> Option<Mp4Gapless> {
    scan(r, len)?.at_rate(sample_rate)
}

/// Reads the boxes of an MP4 file that carry gapless information; `None` on a read error.
pub fn scan<R: Read + Seek>(r: &mut R, len: u64) -> Option<Found> {
    let mut w = Walker {
        r,
        boxes: 0,
        found: Found::default(),
    };
    w.children(0, len, 0, None).ok()?;
    Some(w.found)
}

impl Found {
    /// The gapless information of the first sound track, in samples at `sample_rate`.
    pub fn at_rate(&self, sample_rate: u32) -> Option<Mp4Gapless> {
        interpret(self, sample_rate)
    }
}

fn interpret(found: &Found, sample_rate: u32) -> Option<Mp4Gapless> {
    let track = found.tracks.iter().find(|t| t.sound)?;
    let sr = u64::from(sample_rate);
    let scale = |v: u64, from: u32| -> Option<u64> {
        (from > 0).then(|| (u128::from(v) * u128::from(sr) / u128::from(from)) as u64)
    };
    if let (false, [edit]) = (track.complex_edits, track.edits.as_slice()) {
        if edit.media_time >= 0 {
            let priming = scale(edit.media_time as u64, track.media_timescale?)?;
            // A segment_duration of 0 means "the whole media" in files of some muxers.
            let frames = match edit.segment_duration {
                0 => None,
                d => scale(d, found.movie_timescale?),
            };
            // Bound what a damaged header can claim: a priming of over 10 s is not one.
            if priming > 10 * sr {
                return None;
            }
            return Some(Mp4Gapless {
                priming,
                end: frames.map(|f| priming + f),
                frames,
            });
        }
    }
    // iTunSMPB: " 00000000 00000840 000001CA 00000000003F1FF6 ...": zero, priming, padding,
    // original length, in hexadecimal.
    let smpb = found.itunsmpb.as_deref()?;
    let fields: Vec<u64> = smpb
        .split_whitespace()
        .take(4)
        .map(|f| u64::from_str_radix(f, 16).ok())
        .collect::<Option<_>>()?;
    let (priming, frames) = match fields.as_slice() {
        [_, priming, _padding, frames] => (*priming, *frames),
        _ => return None,
    };
    // ffmpeg applies the priming when it is in 1..16384, and keeps the end.
    if priming == 0 || priming >= 16384 {
        return None;
    }
    Some(Mp4Gapless {
        priming,
        end: None,
        frames: (frames > 0).then_some(frames),
    })
}

impl<R: Read + Seek> Walker<'_, R> {
    /// Walks the boxes in `[start, end)`; `track` is the index of the enclosing `trak`.
    fn children(
        &mut self,
        start: u64,
        end: u64,
        depth: u32,
        track: Option<usize>,
    ) -> std::io::Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let mut off = start;
        while off + 8 <= end {
            self.boxes += 1;
            if self.boxes > MAX_BOXES {
                return Ok(());
            }
            self.r.seek(SeekFrom::Start(off))?;
            let mut h = [0u8; 8];
            self.r.read_exact(&mut h)?;
            let mut size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
            let kind = [h[4], h[5], h[6], h[7]];
            let mut header = 8;
            if size == 1 {
                let mut l = [0u8; 8];
                self.r.read_exact(&mut l)?;
                size = u64::from_be_bytes(l);
                header = 16;
            } else if size == 0 {
                size = end - off;
            }
            if size < header || off + size > end {
                return Ok(()); // damaged: stop here, keep what was found
            }
            let body = (off + header, off + size);
            self.visit(kind, body, depth, track)?;
            off += size;
        }
        Ok(())
    }

    fn leaf(&mut self, (start, end): (u64, u64)) -> std::io::Result<Option<Vec<u8>>> {
        if end - start > MAX_LEAF {
            return Ok(None);
        }
        self.r.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; (end - start) as usize];
        self.r.read_exact(&mut buf)?;
        Ok(Some(buf))
    }

    fn visit(
        &mut self,
        kind: [u8; 4],
        body: (u64, u64),
        depth: u32,
        track: Option<usize>,
    ) -> std::io::Result<()> {
        match &kind {
            b"moov" | b"mdia" | b"minf" | b"edts" | b"udta" | b"ilst" => {
                self.children(body.0, body.1, depth + 1, track)
            }
            b"trak" => {
                self.found.tracks.push(Track::default());
                let t = self.found.tracks.len() - 1;
                self.children(body.0, body.1, depth + 1, Some(t))
            }
            b"meta" => {
                // ISO `meta` is a full box (4 bytes of version and flags before its children);
                // QuickTime's is not. Tell them apart by whether a box type follows at +4.
                let mut probe = [0u8; 8];
                self.r.seek(SeekFrom::Start(body.0))?;
                let full = match self.r.read_exact(&mut probe) {
                    Ok(()) => &probe[4..8] != b"hdlr" && &probe[4..8] != b"ilst",
                    Err(_) => return Ok(()),
                };
                let start = body.0 + if full { 4 } else { 0 };
                self.children(start, body.1, depth + 1, track)
            }
            b"----" => self.freeform(body),
            b"mvhd" => {
                if let Some(b) = self.leaf(body)? {
                    // version 0: 4 bytes of version/flags, created, modified (4 each), timescale
                    // version 1: created, modified 8 bytes each.
                    let at = if b.first() == Some(&1) { 20 } else { 12 };
                    self.found.movie_timescale = be_u32(&b, at);
                }
                Ok(())
            }
            b"mdhd" => {
                if let (Some(b), Some(t)) = (self.leaf(body)?, track) {
                    let at = if b.first() == Some(&1) { 20 } else { 12 };
                    self.found.tracks[t].media_timescale = be_u32(&b, at);
                }
                Ok(())
            }
            b"hdlr" => {
                if let (Some(b), Some(t)) = (self.leaf(body)?, track) {
                    // version/flags 4, pre_defined 4, handler_type 4.
                    if b.get(8..12) == Some(b"soun") {
                        self.found.tracks[t].sound = true;
                    }
                }
                Ok(())
            }
            b"elst" => {
                if let (Some(b), Some(t)) = (self.leaf(body)?, track) {
                    parse_elst(&b, &mut self.found.tracks[t]);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A freeform `----` item: `mean`, `name`, `data` children. Keeps `iTunSMPB`'s text.
    fn freeform(&mut self, (start, end): (u64, u64)) -> std::io::Result<()> {
        let Some(b) = self.leaf((start, end))? else {
            return Ok(());
        };
        let mut name = None;
        let mut data = None;
        let mut off = 0usize;
        while off + 8 <= b.len() {
            let size = be_u32(&b, off).unwrap_or(0) as usize;
            if size < 8 || off + size > b.len() {
                break;
            }
            let body = &b[off + 8..off + size];
            match &b[off + 4..off + 8] {
                // version/flags, then the name.
                b"name" => {
                    name = body
                        .get(4..)
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                }
                // type (4), locale (4), then the value.
                b"data" => {
                    data = body
                        .get(8..)
                        .map(|d| String::from_utf8_lossy(d).into_owned())
                }
                _ => {}
            }
            off += size;
        }
        if name.as_deref() == Some("iTunSMPB") {
            self.found.itunsmpb = data;
        }
        Ok(())
    }
}

fn parse_elst(b: &[u8], track: &mut Track) {
    let version = b.first().copied().unwrap_or(0);
    let Some(count) = be_u32(b, 4) else { return };
    let entry = if version == 1 { 20 } else { 12 };
    let mut at = 8;
    for _ in 0..count.min(1000) {
        let e = match version {
            1 => (be_u64(b, at), be_u64(b, at + 8).map(|v| v as i64)),
            _ => (
                be_u32(b, at).map(u64::from),
                be_u32(b, at + 4).map(|v| i64::from(v as i32)),
            ),
        };
        let rate = be_u32(b, at + entry - 4);
        let (Some(segment_duration), Some(media_time)) = e else {
            track.complex_edits = true;
            return;
        };
        at += entry;
        if media_time == -1 {
            // An empty edit: a delay before the media starts, no samples to drop. ffmpeg shifts
            // its timestamps and decodes the same samples.
            continue;
        }
        if rate != Some(0x0001_0000) {
            track.complex_edits = true;
        }
        track.edits.push(Edit {
            segment_duration,
            media_time,
        });
    }
    if track.edits.len() > 1 {
        track.complex_edits = true;
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn full(version: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![version, 0, 0, 0];
        v.extend_from_slice(rest);
        v
    }

    /// mvhd/mdhd version 0: created, modified, timescale, duration.
    fn hd(kind: &[u8; 4], timescale: u32) -> Vec<u8> {
        let mut r = vec![0u8; 8];
        r.extend_from_slice(&timescale.to_be_bytes());
        r.extend_from_slice(&[0u8; 8]);
        bx(kind, &full(0, &r))
    }

    fn elst(entries: &[(u32, i32)]) -> Vec<u8> {
        let mut r = (entries.len() as u32).to_be_bytes().to_vec();
        for &(d, t) in entries {
            r.extend_from_slice(&d.to_be_bytes());
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        bx(b"edts", &bx(b"elst", &full(0, &r)))
    }

    fn sound_trak(edts: &[u8]) -> Vec<u8> {
        let hdlr = bx(
            b"hdlr",
            &full(0, &[0, 0, 0, 0, b's', b'o', b'u', b'n', 0, 0, 0, 0]),
        );
        let mdia = bx(b"mdia", &[hd(b"mdhd", 44_100), hdlr].concat());
        bx(b"trak", &[edts.to_vec(), mdia].concat())
    }

    fn smpb(text: &str) -> Vec<u8> {
        let mean = bx(b"mean", &full(0, b"com.apple.iTunes"));
        let name = bx(b"name", &full(0, b"iTunSMPB"));
        let data = bx(
            b"data",
            &[&[0, 0, 0, 1, 0, 0, 0, 0][..], text.as_bytes()].concat(),
        );
        let ilst = bx(b"ilst", &bx(b"----", &[mean, name, data].concat()));
        let hdlr = bx(b"hdlr", &full(0, &[0, 0, 0, 0, b'm', b'd', b'i', b'r']));
        bx(b"udta", &bx(b"meta", &full(0, &[hdlr, ilst].concat())))
    }

    fn file(moov_children: &[Vec<u8>]) -> Vec<u8> {
        let mut f = bx(b"ftyp", b"M4A \0\0\0\0");
        f.extend(bx(b"mdat", &[0u8; 100]));
        f.extend(bx(b"moov", &moov_children.concat()));
        f
    }

    fn read_bytes(b: &[u8], sr: u32) -> Option<Mp4Gapless> {
        read(&mut Cursor::new(b), b.len() as u64, sr)
    }

    #[test]
    fn edit_list_gives_priming_and_end() {
        let f = file(&[hd(b"mvhd", 1000), sound_trak(&elst(&[(3000, 1024)]))]);
        let g = read_bytes(&f, 44_100).unwrap();
        assert_eq!(g.priming, 1024);
        assert_eq!(g.frames, Some(132_300));
        assert_eq!(g.end, Some(1024 + 132_300));
    }

    #[test]
    fn an_empty_edit_in_front_is_skipped() {
        let f = file(&[
            hd(b"mvhd", 1000),
            sound_trak(&elst(&[(500, -1), (3000, 2112)])),
        ]);
        assert_eq!(read_bytes(&f, 44_100).unwrap().priming, 2112);
    }

    #[test]
    fn itunsmpb_without_edit_list() {
        let text = " 00000000 00000840 000001CA 00000000003F1FF6 00000000 00000000";
        let f = file(&[hd(b"mvhd", 1000), sound_trak(&[]), smpb(text)]);
        let g = read_bytes(&f, 44_100).unwrap();
        assert_eq!(g.priming, 0x840);
        assert_eq!(g.frames, Some(0x3F1FF6));
        assert_eq!(g.end, None);
    }

    #[test]
    fn nothing_to_trim_and_damage_give_none() {
        let f = file(&[hd(b"mvhd", 1000), sound_trak(&[])]);
        assert_eq!(read_bytes(&f, 44_100), None);
        // A box claiming more than the file holds, and a file of garbage.
        let mut bad = file(&[hd(b"mvhd", 1000), sound_trak(&elst(&[(3000, 1024)]))]);
        let n = bad.len();
        bad[n - 60..n - 56].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = read_bytes(&bad, 44_100);
        assert_eq!(read_bytes(&[0xFFu8; 100], 44_100), None);
        // A priming of more than 10 s is damage, not priming.
        let f = file(&[hd(b"mvhd", 1000), sound_trak(&elst(&[(3000, 0x7fff_0000)]))]);
        assert_eq!(read_bytes(&f, 44_100), None);
    }
}
