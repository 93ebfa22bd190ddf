//! The symphonia decoding path.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom};

use symphonia::core::audio::{Audio, GenericAudioBufferRef};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::common::Limit;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Time, TimeBase, Timestamp};

use super::gapless;
use super::{Access, AudioSource, Cancel, Failure, StreamInfo};
use sonoprint_core::ErrorClass;

/// Skipped packets tolerated before a file counts as corrupt: more than this many in a row, or
/// more than `MAX_BAD_SHARE` of all packets once `MIN_BAD_FOR_SHARE` have failed. A few bad
/// packets (a scratch in a rip, a bad sector) are skipped; a stream that is mostly garbage fails.
const MAX_BAD_IN_A_ROW: u32 = 200;
const MIN_BAD_FOR_SHARE: u32 = 50;
const MAX_BAD_SHARE: f64 = 0.10;

pub struct SymphoniaSource {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    time_base: Option<TimeBase>,
    info: StreamInfo,
    buf: Vec<f32>,
    /// Frame position of the next sample the decoder produces, once known.
    pos: Option<u64>,
    /// Where the caller wants the next chunk to start, after a seek.
    target: Option<u64>,
    packets: u64,
    skipped: u32,
    bad_in_a_row: u32,
    ended_early: bool,
    /// Decoded frames before the first one presented (MP4 priming, see [`gapless`]).
    trim_start: u64,
    /// Decoded frame at which presentation ends: packets starting there or later are dropped.
    end: Option<u64>,
    /// Ogg: what the reader returned after a packet it trimmed at its end, read ahead to tell
    /// the end of the stream from a page in the middle (see [`SymphoniaSource::settle_ogg_trim`]).
    ahead: VecDeque<Read>,
    cancel: Cancel,
}

/// One answer of `FormatReader::next_packet`.
type Read = Result<Option<Packet>, SymError>;

/// Packets read ahead, at most, after one the Ogg reader trimmed (a page holds at most 255).
const MAX_AHEAD: usize = 600;

fn classify(e: &SymError) -> ErrorClass {
    match e {
        SymError::IoError(_) => ErrorClass::Corrupt,
        SymError::Unsupported(_) => ErrorClass::UnsupportedCodec,
        _ => ErrorClass::Corrupt,
    }
}

impl SymphoniaSource {
    pub(crate) fn set_cancel(&mut self, cancel: Cancel) {
        self.cancel = cancel;
    }

    /// Opens a file for decoding.
    pub fn open(file: File, len: u64) -> Result<Self, Failure> {
        Self::open_source(file, len)
    }

    /// Opens any seekable byte source (a file, bytes in memory).
    pub fn open_source<R>(mut file: R, len: u64) -> Result<Self, Failure>
    where
        R: symphonia::core::io::MediaSource + std::io::Read + Seek + 'static,
    {
        let io = |e: std::io::Error| Failure::new(ErrorClass::Io, format!("cannot read file: {e}"));
        // MP4: the edit list and iTunSMPB, which symphonia does not apply (see `gapless`).
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut head = [0u8; 8];
        let mp4_boxes = match std::io::Read::read_exact(&mut file, &mut head) {
            Ok(()) if &head[4..8] == b"ftyp" => gapless::scan(&mut file, len),
            _ => None,
        };
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        // Cover art is never used: do not hold a 12 MB picture in memory.
        let meta_opts = MetadataOptions::default().limit_visual_bytes(Limit::Maximum(0));
        // No extension hint: the content decides, not the name.
        let reader = symphonia::default::get_probe()
            .probe(&Hint::new(), mss, FormatOptions::default(), meta_opts)
            .map_err(|e| match e {
                // The headers announce more than the file holds: whatever its size (a FLAC's
                // metadata alone may exceed 8 KiB), the file was cut short.
                SymError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Failure::new(
                        ErrorClass::Truncated,
                        format!(
                            "the file ends before its audio stream could be identified \
                             ({len} bytes; {e})"
                        ),
                    )
                }
                SymError::Unsupported(_) => Failure::new(
                    ErrorClass::NotAudio,
                    "no audio container recognised in the content".to_string(),
                ),
                other => Failure::new(
                    classify(&other),
                    format!("cannot read the container: {other}"),
                ),
            })?;
        let fmt_name = match reader.format_info().short_name {
            "isomp4" => "mp4",
            "wave" => "wav",
            other => other,
        }
        .to_string();
        let track = reader
            .default_track(TrackType::Audio)
            .or_else(|| reader.first_track_known_codec(TrackType::Audio))
            .ok_or_else(|| {
                Failure::new(ErrorClass::NotAudio, "the container holds no audio track")
            })?
            .clone();
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => {
                return Err(Failure::new(
                    ErrorClass::UnsupportedCodec,
                    "the audio track has no codec parameters",
                ))
            }
        };
        // symphonia's own codecs plus ours (see `codecs`). FLAC frames from symphonia's FLAC
        // demuxer had their CRC checked there: our decoder does not check them again.
        let from_flac_reader = reader.format_info().format
            == symphonia::core::formats::well_known::FORMAT_ID_FLAC
            && params.codec == symphonia::core::codecs::audio::well_known::CODEC_ID_FLAC;
        let decoder: Result<Box<dyn AudioDecoder>, SymError> = if from_flac_reader {
            super::flac::FlacDecoder::try_new_for_flac_reader(&params)
                .map(|d| Box::new(d) as Box<dyn AudioDecoder>)
        } else {
            super::codecs().make_audio_decoder(&params, &AudioDecoderOptions::default())
        };
        let decoder = decoder.map_err(|e| {
            Failure::new(
                ErrorClass::UnsupportedCodec,
                format!("no symphonia decoder for this codec: {e}"),
            )
        })?;
        let codec = decoder.codec_info().short_name.to_string();
        // Opus in other containers (MKV, MP4) states its delay and timing its own way, which only
        // the Ogg path here has been checked against: ffmpeg decodes those.
        if codec == "opus" && fmt_name != "ogg" {
            return Err(Failure::new(
                ErrorClass::UnsupportedCodec,
                format!("Opus in {fmt_name} is left to ffmpeg"),
            ));
        }
        let sample_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| Failure::new(ErrorClass::Corrupt, "the stream states no sample rate"))?;
        let (channels, lfe) = match &params.channels {
            Some(ch) => (ch.count(), lfe_index(ch)),
            None => (0, None),
        };
        let mut total_frames = track.num_frames.or_else(|| {
            let (tb, dur) = (track.time_base?, track.duration?);
            let secs = tb.calc_duration(dur)?.as_secs_f64();
            Some((secs * sample_rate as f64).round() as u64)
        });
        let gapless = mp4_boxes.and_then(|b| b.at_rate(sample_rate));
        if let Some(g) = gapless {
            total_frames = g
                .frames
                .or_else(|| total_frames.map(|t| t.saturating_sub(g.priming)));
        }
        // Opus: the pre-skip (the encoder's delay) is decoded but not presented, like MP4
        // priming. symphonia's Ogg reader times Opus packets by granule position, which counts
        // the pre-skip, and leaves it in: it is trimmed here so that the declared length, the
        // seek targets and the samples all exclude it, as ffmpeg does.
        let pre_skip = match codec.as_str() {
            "opus" => params
                .extra_data
                .as_deref()
                .and_then(super::opus::OpusHead::parse)
                .map_or(0, |h| u64::from(h.pre_skip)),
            _ => 0,
        };
        if pre_skip > 0 {
            total_frames = total_frames.map(|t| t.saturating_sub(pre_skip));
        }
        let trim_start = gapless.map_or(0, |g| g.priming) + pre_skip;
        let info = StreamInfo {
            sample_rate,
            channels,
            bits_per_sample: params.bits_per_sample,
            format: fmt_name,
            codec,
            total_frames: total_frames.filter(|&f| f > 0),
            lfe,
            decoder: "symphonia",
        };
        Ok(SymphoniaSource {
            reader,
            decoder,
            track_id: track.id,
            time_base: track.time_base,
            info,
            buf: Vec::new(),
            pos: Some(0),
            // The priming is dropped like the part of a packet before a seek target.
            target: (trim_start > 0).then_some(trim_start),
            packets: 0,
            skipped: 0,
            bad_in_a_row: 0,
            ended_early: false,
            trim_start,
            end: gapless.and_then(|g| g.end),
            ahead: VecDeque::new(),
            cancel: Cancel::default(),
        })
    }

    fn ts_to_frame(&self, ts: Timestamp) -> Option<u64> {
        let secs = self.time_base?.calc_time(ts)?.as_secs_f64();
        Some((secs * self.info.sample_rate as f64).round().max(0.0) as u64)
    }

    fn dur_to_frames(&self, dur: Duration) -> Option<u64> {
        let secs = self.time_base?.calc_duration(dur)?.as_secs_f64();
        Some((secs * self.info.sample_rate as f64).round().max(0.0) as u64)
    }

    fn note_bad_packet(&mut self, what: &str, e: &SymError) -> Result<(), Failure> {
        self.note_bad_packets(1, what, e)
    }

    /// Counts `n` lost packets and fails the file past the thresholds.
    fn note_bad_packets(&mut self, n: u32, what: &str, e: &SymError) -> Result<(), Failure> {
        self.skipped = self.skipped.saturating_add(n);
        self.bad_in_a_row = self.bad_in_a_row.saturating_add(n);
        let share = self.skipped as f64 / self.packets.max(1) as f64;
        if self.bad_in_a_row > MAX_BAD_IN_A_ROW
            || (self.skipped > MIN_BAD_FOR_SHARE && share > MAX_BAD_SHARE)
        {
            return Err(Failure::new(
                ErrorClass::Corrupt,
                format!(
                    "the file appears corrupted: {} of {} packets failed to {what} (last error: {e})",
                    self.skipped, self.packets
                ),
            ));
        }
        Ok(())
    }
}

impl SymphoniaSource {
    /// Keeps the Ogg reader's end trim of `packet` only at the end of the stream.
    ///
    /// symphonia 0.6.1's Ogg reader (`logical.rs`, `read_page_init`) gives every page the
    /// previous page's granule position as its start, and trims the end of any packet that runs
    /// past the page's own granule position, on every page. Granule positions in the middle of
    /// a stream are not always exact: ffmpeg's Ogg muxer writes them from its packets'
    /// timestamps, which follow the input's (a source with a timestamp jump gives pages whose
    /// granule runs ahead by a few hundred samples, and the next page back). The decoded audio
    /// is continuous all the same, and symphonia then cuts real samples out of the middle (448
    /// at a long-to-short block switch), shifting everything after. ffmpeg and libvorbis use
    /// the granule positions only at the start and at the end of the stream. The upstream fix:
    /// `read_page_init` should set `trim_end` on the last page only (`page.header.is_last_page`),
    /// and re-anchor page start timestamps without trimming elsewhere.
    ///
    /// Here: a trim is the end of the stream when every packet after it, up to the end, is
    /// trimmed too (the last page's padding). When a packet without trim follows, the trims were
    /// a page in the middle: they are undone. At the end, the trim is recomputed from the final
    /// granule position (the stream's stated length) and the frames actually decoded, since the
    /// reader's is relative to the previous page's granule, which may be one that ran ahead.
    fn settle_ogg_trim(&mut self, packet: &mut Packet) {
        let mut middle = false;
        // Packets already read ahead: is one of them untrimmed?
        for r in &self.ahead {
            if let Ok(Some(p)) = r {
                if p.track_id == self.track_id && p.trim_end.is_zero() {
                    middle = true;
                    break;
                }
            }
        }
        if !middle && !matches!(self.ahead.back(), Some(Ok(None) | Err(_))) {
            while self.ahead.len() < MAX_AHEAD {
                let r = self.reader.next_packet();
                let stop = match &r {
                    Ok(Some(p)) if p.track_id == self.track_id => {
                        middle = p.trim_end.is_zero();
                        middle
                    }
                    Ok(Some(_)) => false,
                    Ok(None) | Err(_) => true,
                };
                self.ahead.push_back(r);
                if stop {
                    break;
                }
            }
            if self.ahead.len() >= MAX_AHEAD {
                middle = true;
            }
        }
        if !middle {
            // The end: decoded frames past the stated length are padding, and only those.
            if let (Some(total), Some(pos)) = (self.info.total_frames, self.pos) {
                // `pos` is on the decoder's timeline, which includes the Opus pre-skip.
                let total = total + self.trim_start;
                let block = packet.block_dur().get();
                let start = packet.trim_start.get().min(block);
                let end = pos + (block - start);
                let over = end.saturating_sub(total).min(block - start);
                packet.trim_end = Duration::new(over);
                packet.dur = Duration::new(block - start - over);
            }
            return;
        }
        untrim(packet);
        {
            for r in self.ahead.iter_mut() {
                match r {
                    Ok(Some(p)) if p.track_id == self.track_id => {
                        if p.trim_end.is_zero() {
                            break;
                        }
                        untrim(p);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Gives a packet back the frames its reader trimmed at its end.
fn untrim(p: &mut Packet) {
    p.dur = p.dur.saturating_add(p.trim_end);
    p.trim_end = Duration::ZERO;
}

/// Index of the LFE channel in the decoded (canonical) channel order.
fn lfe_index(ch: &symphonia::core::audio::Channels) -> Option<usize> {
    use symphonia::core::audio::{Channels, Position};
    match ch {
        Channels::Positioned(pos) if pos.contains(Position::LFE1) => {
            Some((pos.bits() & (Position::LFE1.bits() - 1)).count_ones() as usize)
        }
        _ => None,
    }
}

impl AudioSource for SymphoniaSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn seek(&mut self, frame: u64) -> Result<Access, Failure> {
        // `frame` counts presented frames; the decoder's timeline includes the priming.
        let frame = frame + self.trim_start;
        let secs = frame as f64 / self.info.sample_rate as f64;
        // Lossy decoders overlap each packet with the previous one (MDCT windows, MP3's bit
        // reservoir): the first packet after a reset decodes wrong. Seek a few packets early and
        // decode up to the target, as ffmpeg does with its codecs' preroll.
        let preroll = match self.info.codec.as_str() {
            "flac" | "alac" | "wavpack" => 0,
            c if c.starts_with("pcm") => 0,
            // RFC 7845 §4.6 asks for at least 80 ms (3840 samples) before the target, which
            // ffmpeg uses. CELT predicts each band's energy from the previous frame's, so a
            // restarted decoder converges slowly: with 4096 samples of preroll the first ones
            // after the target were 4e-2 off those of decoding from the start, and still 1e-4
            // 100 ms later. 500 ms costs ~1 ms of CPU per seek and brings them to 3e-8.
            "opus" => 24_000,
            _ => 4096,
        };
        let from = frame.saturating_sub(preroll) as f64 / self.info.sample_rate as f64;
        let seeked = Time::try_from_secs_f64(from).and_then(|time| {
            self.reader
                .seek(
                    SeekMode::Accurate,
                    SeekTo::Time {
                        time,
                        track_id: Some(self.track_id),
                    },
                )
                .ok()
        });
        self.target = Some(frame);
        match seeked {
            Some(_) => {
                self.decoder.reset();
                self.ahead.clear();
                // The first packet's timestamp tells where decoding resumes.
                self.pos = None;
                Ok(Access::Seek)
            }
            None => match self.pos {
                // Forward from where we are: decode and discard up to the target.
                Some(p) if p <= frame => Ok(Access::Sequential),
                _ => Err(Failure::new(
                    ErrorClass::Corrupt,
                    format!("cannot seek to {secs:.1} s"),
                )),
            },
        }
    }

    fn next_chunk(&mut self) -> Result<Option<&[f32]>, Failure> {
        loop {
            self.cancel.check()?;
            let next = match self.ahead.pop_front() {
                Some(r) => r,
                None => self.reader.next_packet(),
            };
            let mut packet = match next {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.ended_early = true;
                    return Ok(None);
                }
                Err(SymError::IoError(e)) => {
                    return Err(Failure::new(ErrorClass::Io, format!("read error: {e}")))
                }
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => {
                    // A demuxer error: some readers resynchronise on the next call.
                    self.packets += 1;
                    self.note_bad_packet("demux", &e)?;
                    continue;
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            if self.info.format == "ogg" && !packet.trim_end.is_zero() {
                self.settle_ogg_trim(&mut packet);
            }
            self.packets += 1;
            let stated = self.ts_to_frame(packet.pts);
            let start_frame = match (self.pos, stated) {
                // A FLAC frame header states the frame's exact first sample. A packet that starts
                // a whole packet or more past where the previous one ended means the reader
                // dropped damaged frames in between without an error (symphonia's FLAC reader
                // resynchronises on the next frame header silently). Count them against the
                // corruption thresholds, and follow the stated position. Other codecs' packet
                // timestamps do not match the decoded lengths this exactly (Vorbis overlaps
                // its blocks), so only FLAC is checked.
                (Some(p), Some(ts)) if self.info.codec == "flac" && ts > p => {
                    let dur = self.dur_to_frames(packet.dur).unwrap_or(0);
                    if dur > 0 && ts - p >= dur {
                        let lost = ((ts - p) as f64 / dur as f64).round();
                        let lost = lost.min(u32::MAX as f64) as u32;
                        self.packets += u64::from(lost);
                        let e = SymError::DecodeError("packets missing from the stream");
                        self.note_bad_packets(lost, "demux", &e)?;
                        ts
                    } else {
                        p
                    }
                }
                (Some(p), _) => p,
                (None, ts) => ts.unwrap_or(0),
            };
            // Past the end of the MP4 edit: padding (ffmpeg keeps a packet that starts before
            // the end whole, and drops the ones after it).
            if self.end.is_some_and(|e| start_frame >= e) {
                return Ok(None);
            }
            let channels = self.info.channels;
            let decoded = match self.decoder.decode(&packet) {
                Ok(buf) => {
                    let n_ch = buf.spec().channels().count();
                    if buf.frames() == 0 {
                        None
                    } else if channels != 0 && n_ch != channels {
                        Some(Err(n_ch))
                    } else {
                        interleave(&buf, &mut self.buf);
                        Some(Ok((buf.frames(), n_ch)))
                    }
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.ended_early = true;
                    return Ok(None);
                }
                Err(SymError::Unsupported(what)) if self.packets == 1 => {
                    return Err(Failure::new(
                        ErrorClass::UnsupportedCodec,
                        format!("symphonia cannot decode this stream: {what}"),
                    ))
                }
                Err(e) => {
                    self.note_bad_packet("decode", &e)?;
                    continue;
                }
            };
            let (frames, n_ch) = match decoded {
                None => continue,
                Some(Err(n_ch)) => {
                    let e = SymError::DecodeError("channel count changed mid-stream");
                    self.note_bad_packet(&format!("decode ({n_ch} channels)"), &e)?;
                    continue;
                }
                Some(Ok(v)) => v,
            };
            self.bad_in_a_row = 0;
            if self.info.channels == 0 {
                self.info.channels = n_ch;
            }
            self.pos = Some(start_frame + frames as u64);
            let mut skip = 0;
            if let Some(t) = self.target {
                if start_frame + frames as u64 <= t {
                    continue; // wholly before the target
                }
                skip = t.saturating_sub(start_frame) as usize;
                self.target = None;
            }
            return Ok(Some(&self.buf[skip * n_ch..]));
        }
    }

    fn skipped_packets(&self) -> u32 {
        self.skipped
    }

    fn ended_early(&self) -> bool {
        self.ended_early
    }
}

/// The decoded buffer as interleaved `f32`, as symphonia's `copy_to_vec_interleaved` makes it.
/// Stereo 32-bit integer buffers (what our FLAC and ALAC decoders give) take a loop the compiler
/// vectorises: symphonia's generic copy interleaves one sample at a time through an `f64`
/// division, ~2 % of a full-mode analysis of a FLAC file.
fn interleave(buf: &GenericAudioBufferRef<'_>, out: &mut Vec<f32>) {
    if let GenericAudioBufferRef::S32(b) = buf {
        if let (2, Some((left, right))) = (b.num_planes(), b.plane_pair(0, 1)) {
            interleave_stereo_i32(left, right, out);
            return;
        }
    }
    buf.copy_to_vec_interleaved::<f32>(out);
}

/// `left` and `right` interleaved and scaled by 2^-31. symphonia converts with
/// `(s as f64 / 2^31) as f32`; `s as f32 * 2^-31` is the same number, because scaling by a power
/// of two commutes with rounding to `f32` (no result is subnormal: the smallest is 2^-31).
fn interleave_stereo_i32(left: &[i32], right: &[i32], out: &mut Vec<f32>) {
    const SCALE: f32 = 1.0 / 2_147_483_648.0;
    let frames = left.len().min(right.len());
    out.clear();
    out.resize(2 * frames, 0.0);
    for ((pair, &l), &r) in out.chunks_exact_mut(2).zip(left).zip(right) {
        pair[0] = l as f32 * SCALE;
        pair[1] = r as f32 * SCALE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;
    use symphonia::core::audio::{AudioBuffer, AudioMut, AudioSpec, Channels, Position};

    fn buffer(planes: &[Vec<i32>]) -> AudioBuffer<i32> {
        let positions = [
            Position::FRONT_LEFT,
            Position::FRONT_RIGHT,
            Position::FRONT_CENTER,
        ];
        let mask = positions[..planes.len()]
            .iter()
            .fold(Position::empty(), |m, &p| m | p);
        let frames = planes[0].len();
        let mut buf = AudioBuffer::new(AudioSpec::new(44_100, Channels::Positioned(mask)), frames);
        buf.render_silence(Some(frames));
        for (i, plane) in planes.iter().enumerate() {
            buf.plane_mut(i).unwrap().copy_from_slice(plane);
        }
        buf
    }

    /// Every class of i32: the extremes, powers of two, 16- and 24-bit samples shifted up as
    /// the decoders give them, and values that round when made `f32`.
    fn samples(n: usize, seed: u64) -> Vec<i32> {
        let mut rng = XorShift::new(seed);
        let mut v = vec![
            i32::MIN,
            i32::MAX,
            0,
            1,
            -1,
            1 << 30,
            -(1 << 30),
            0x7fff << 16,
        ];
        v.extend((0..n).map(|i| {
            let s = rng.next_u32() as i32;
            match i % 3 {
                0 => s,
                1 => (s >> 16) << 16,
                _ => (s >> 8) << 8,
            }
        }));
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn stereo_i32_interleaves_as_symphonia_converts() {
        for n in [0, 1, 7, 4096] {
            let buf = buffer(&[samples(n, 3), samples(n, 11)]);
            let generic = GenericAudioBufferRef::S32(&buf);
            let (mut ours, mut theirs) = (vec![9.0; 3], Vec::new());
            interleave(&generic, &mut ours);
            generic.copy_to_vec_interleaved::<f32>(&mut theirs);
            assert_eq!(ours.len(), 2 * (n + 8));
            assert_eq!(bits(&ours), bits(&theirs), "{n} frames");
        }
    }

    #[test]
    fn other_layouts_take_symphonia_s_copy() {
        let buf = buffer(&[samples(100, 5), samples(100, 6), samples(100, 7)]);
        let generic = GenericAudioBufferRef::S32(&buf);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        interleave(&generic, &mut ours);
        generic.copy_to_vec_interleaved::<f32>(&mut theirs);
        assert_eq!(ours.len(), 3 * 108);
        assert_eq!(bits(&ours), bits(&theirs));
    }
}
