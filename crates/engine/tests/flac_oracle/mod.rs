//! Our FLAC decoder against symphonia's own (the oracle), packet by packet: the same packets
//! from symphonia's demuxer go to both decoders, whose results must agree (both an error, or the
//! same `AudioSpec`, frame count and every sample). Shared by `tests/flac_decoder.rs` and the
//! `flac_oracle` example (which runs it over the corpus).

use std::fs::File;
use std::path::Path;

use sonoprint_engine::decode::flac::FlacDecoder;
use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::checksum::Crc16Ansi;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, Monitor};
use symphonia::core::meta::MetadataOptions;

/// What a comparison found.
#[derive(Debug, Default)]
pub struct Agreement {
    pub packets: u64,
    /// Packets both decoders refused.
    pub both_failed: u64,
    pub samples: u64,
    /// Human-readable disagreements (at most a few are kept).
    pub differences: Vec<String>,
    pub different_packets: u64,
}

impl Agreement {
    pub fn identical(&self) -> bool {
        self.different_packets == 0
    }
}

fn samples(buf: &GenericAudioBufferRef<'_>) -> Vec<i32> {
    let mut v = Vec::new();
    buf.copy_to_vec_interleaved::<i32>(&mut v);
    v
}

/// Opens `path` with symphonia's probe (`ext` a hint, if any): the reader, the audio track's
/// parameters and its id.
fn open(
    path: &Path,
    ext: Option<&str>,
) -> Result<(Box<dyn FormatReader>, AudioCodecParameters, u32), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| format!("probe: {e}"))?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or("no audio track")?;
    let Some(CodecParameters::Audio(params)) = &track.codec_params else {
        return Err("no audio codec parameters".into());
    };
    let (params, id) = (params.clone(), track.id);
    Ok((reader, params, id))
}

/// Decodes `path` with both decoders and compares them.
pub fn compare(path: &Path) -> Result<Agreement, String> {
    let (mut reader, params, track_id) = open(path, Some("flac"))?;
    let params = &params;
    let opts = AudioDecoderOptions::default();
    let mut ours = FlacDecoder::try_new(params, &opts).map_err(|e| format!("ours: {e}"))?;
    let mut theirs = symphonia::default::codecs::FlacDecoder::try_new(params, &opts)
        .map_err(|e| format!("symphonia: {e}"))?;
    let mut out = Agreement::default();
    if format!("{:?}", ours.codec_params()) != format!("{:?}", theirs.codec_params()) {
        out.different_packets += 1;
        out.differences.push(format!(
            "codec parameters differ: ours {:?}, symphonia {:?}",
            ours.codec_params(),
            theirs.codec_params()
        ));
    }
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(format!("demux: {e}")),
        };
        if packet.track_id != track_id {
            continue;
        }
        out.packets += 1;
        let a = ours
            .decode(&packet)
            .map(|b| (b.spec().clone(), b.frames(), samples(&b)));
        let b = theirs
            .decode(&packet)
            .map(|b| (b.spec().clone(), b.frames(), samples(&b)));
        let what = match (a, b) {
            (Ok(a), Ok(b)) => {
                out.samples += a.2.len() as u64;
                if a == b {
                    continue;
                }
                let first = a.2.iter().zip(&b.2).position(|(x, y)| x != y);
                format!(
                    "packet {}: spec {:?}/{:?}, frames {}/{}, first differing sample {first:?}",
                    out.packets, a.0, b.0, a.1, b.1
                )
            }
            (Err(_), Err(_)) => {
                out.both_failed += 1;
                continue;
            }
            (Ok(_), Err(e)) => format!("packet {}: only symphonia fails: {e}", out.packets),
            (Err(e), Ok(_)) => format!("packet {}: only ours fails: {e}", out.packets),
        };
        out.different_packets += 1;
        if out.differences.len() < 5 {
            out.differences.push(what);
        }
    }
    Ok(out)
}

/// What feeding mutated packets to our decoder did.
#[derive(Debug, Default)]
pub struct Mutated {
    pub packets: u64,
    pub decoded: u64,
    pub errors: u64,
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Feeds `rounds` mutated copies of every packet of `path` to our decoder: bits flipped, bytes
/// set to extremes, runs zeroed or cut, in the subframes (the first 8 bytes, the frame header,
/// are left alone), and the frame CRC-16 recomputed so that the damage reaches the subframe
/// decoding. A panic or a hang fails the caller; errors are counted.
pub fn mutate_packets(path: &Path, seed: u64, rounds: usize) -> Result<Mutated, String> {
    let (mut reader, params, _) = open(path, None)?;
    let params = &params;
    let mut ours = FlacDecoder::try_new(params, &AudioDecoderOptions::default())
        .map_err(|e| format!("ours: {e}"))?;
    let mut rng = Rng(seed | 1);
    let mut out = Mutated::default();
    while let Ok(Some(packet)) = reader.next_packet() {
        for _ in 0..rounds {
            let mut data = packet.data.to_vec();
            if data.len() < 12 {
                continue;
            }
            let body = data.len() - 2;
            let edits = 1 + rng.below(4);
            for _ in 0..edits {
                let at = 8 + rng.below(body - 8);
                match rng.below(5) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data[at] = 0xff,
                    2 => data[at] = 0,
                    3 => {
                        let end = (at + 1 + rng.below(64)).min(body);
                        data[at..end].fill(0);
                    }
                    _ => {
                        let end = (at + 1 + rng.below(64)).min(body);
                        data[at..end].fill(0xff);
                    }
                }
            }
            if rng.below(8) == 0 {
                // Cut short.
                data.truncate(8 + rng.below(body - 8));
            }
            let n = data.len();
            if n >= 2 {
                let mut crc = Crc16Ansi::new(0);
                crc.process_buf_bytes(&data[..n - 2]);
                let crc = crc.crc();
                data[n - 2..].copy_from_slice(&crc.to_be_bytes());
            }
            let p =
                symphonia::core::packet::Packet::new(packet.track_id, packet.pts, packet.dur, data);
            out.packets += 1;
            match ours.decode(&p) {
                Ok(_) => out.decoded += 1,
                Err(_) => out.errors += 1,
            }
        }
    }
    Ok(out)
}
