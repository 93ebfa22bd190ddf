//! Sample-exact decoding: for each lossy and lossless format, files made with ffmpeg here are
//! decoded in-process and by `ffmpeg -f f32le` (at the file's own rate and channel count), and
//! both must give the same number of samples (priming and padding removed as ffmpeg removes
//! them) and the same samples within the codec's rounding. ffmpeg is required (`.ci/run`
//! installs it).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use sonoprint_engine::decode::{self, OpenOptions};

/// A chirp and a tone, different in each channel: any offset between two decodings shows.
const SIGNAL: &str = "aevalsrc=0.4*sin(2*PI*(150+300*t)*t)|0.3*sin(2*PI*(500-100*t)*t)+0.1*sin(2*PI*3000*t):c=stereo";

fn make(path: &Path, rate: u32, secs: f64, codec: &[&str]) {
    let src = format!("{SIGNAL}:s={rate}:d={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &src];
    args.extend_from_slice(codec);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

/// Our decoding, from the start: interleaved samples, rate, channels, decoder.
fn ours(path: &Path) -> (Vec<f32>, u32, usize, &'static str) {
    let mut src = decode::open(path, &OpenOptions::default()).unwrap();
    let info = src.info().clone();
    let mut out = Vec::new();
    while let Some(c) = src.next_chunk().unwrap() {
        out.extend_from_slice(c);
    }
    (out, info.sample_rate, info.channels, info.decoder)
}

/// ffmpeg's decoding at the given rate and channel count (its native ones: no conversion).
fn theirs(path: &Path, rate: u32, channels: usize) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "f32le", "-ac"])
        .arg(channels.to_string())
        .arg("-ar")
        .arg(rate.to_string())
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Decodes `path` both ways and checks lengths and samples; returns the frame count.
fn same_as_ffmpeg(path: &Path, tol: f32, decoder: &str) -> usize {
    let (a, rate, ch, used) = ours(path);
    assert_eq!(used, decoder, "decoding path");
    let b = theirs(path, rate, ch);
    assert_eq!(
        a.len() / ch,
        b.len() / ch,
        "{}: sample frames, ours vs ffmpeg",
        path.display()
    );
    let (worst, at) = a
        .iter()
        .zip(&b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold((0f32, 0), |m, v| if v.0 > m.0 { v } else { m });
    assert!(
        worst <= tol,
        "{}: samples differ by {worst} at frame {} (tolerance {tol})",
        path.display(),
        at / ch
    );
    a.len() / ch
}

#[test]
fn aac_in_m4a_starts_after_the_edit_lists_priming() {
    // ffmpeg's AAC encoder writes 1024 priming samples and an edit list that skips them.
    // symphonia 0.6.1 ignores the edit list: without `decode::gapless` this fails with 1024
    // extra frames in front and every sample off.
    let t = TempDir::new("aac-elst");
    let p = t.path("a.m4a");
    make(&p, 44_100, 2.5, &["-c:a", "aac", "-b:a", "128k"]);
    let n = same_as_ffmpeg(&p, 1e-4, "symphonia");
    // ffmpeg keeps the last packet whole: up to 1023 frames of padding past the 2.5 s.
    assert!((110_250..110_250 + 1024).contains(&n), "{n} frames");
}

/// Rewrites an ffmpeg-made M4A as iTunes writes them: no edit list, the priming stated in an
/// `iTunSMPB` tag instead. `moov` is the last box (ffmpeg's default layout), so it can grow
/// without moving the audio.
fn itunes_style(m4a: &[u8], priming: u32, frames: u64) -> Vec<u8> {
    fn boxes(b: &[u8]) -> Vec<(&[u8], &[u8])> {
        let mut v = Vec::new();
        let mut off = 0;
        while off + 8 <= b.len() {
            let size = u32::from_be_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            v.push((&b[off + 4..off + 8], &b[off + 8..off + size]));
            off += size;
        }
        v
    }
    fn bx(kind: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }
    let top = boxes(m4a);
    assert_eq!(top.last().unwrap().0, b"moov", "moov is last");
    let mut out = Vec::new();
    for (kind, body) in &top[..top.len() - 1] {
        out.extend(bx(kind, body));
    }
    let mut moov = Vec::new();
    for (kind, body) in boxes(top.last().unwrap().1) {
        if kind == b"trak" {
            let trak: Vec<u8> = boxes(body)
                .into_iter()
                .filter(|(k, _)| *k != b"edts")
                .flat_map(|(k, b)| bx(k, b))
                .collect();
            moov.extend(bx(b"trak", &trak));
        } else {
            moov.extend(bx(kind, body));
        }
    }
    let text = format!(" 00000000 {priming:08X} 00000000 {frames:016X} 00000000 00000000");
    let mean = bx(b"mean", b"\0\0\0\0com.apple.iTunes");
    let name = bx(b"name", b"\0\0\0\0iTunSMPB");
    let data = bx(b"data", &[b"\0\0\0\x01\0\0\0\0", text.as_bytes()].concat());
    let ilst = bx(b"ilst", &bx(b"----", &[mean, name, data].concat()));
    let hdlr = bx(b"hdlr", b"\0\0\0\0\0\0\0\0mdirappl\0\0\0\0\0\0\0\0\0");
    let meta = bx(b"meta", &[b"\0\0\0\0".to_vec(), hdlr, ilst].concat());
    moov.extend(bx(b"udta", &meta));
    out.extend(bx(b"moov", &moov));
    out
}

#[test]
fn aac_in_m4a_with_itunsmpb_and_no_edit_list() {
    let t = TempDir::new("aac-smpb");
    let p = t.path("a.m4a");
    make(&p, 44_100, 2.0, &["-c:a", "aac", "-b:a", "128k"]);
    let q = t.path("itunes.m4a");
    std::fs::write(&q, itunes_style(&std::fs::read(&p).unwrap(), 1024, 88_200)).unwrap();
    let n = same_as_ffmpeg(&q, 1e-4, "symphonia");
    // The same audio as the edit-list file, the last packet whole.
    assert_eq!(n, same_as_ffmpeg(&p, 1e-4, "symphonia"));
    let src = decode::open(&q, &OpenOptions::default()).unwrap();
    assert_eq!(src.info().total_frames, Some(88_200), "iTunSMPB's length");
}

/// The largest difference, at each seek target, between the first 2048 samples after seeking
/// and the same samples decoded from the start.
fn seek_errors(p: &Path, targets: &[u64]) -> Vec<(u64, f32)> {
    let (all, _, ch, _) = ours(p);
    let mut src = decode::open(p, &OpenOptions::default()).unwrap();
    targets
        .iter()
        .map(|&target| {
            src.seek(target).unwrap();
            let chunk = src.next_chunk().unwrap().unwrap().to_vec();
            let from = target as usize * ch;
            let n = chunk.len().min(2048);
            let worst = chunk[..n]
                .iter()
                .zip(&all[from..from + n])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            (target, worst)
        })
        .collect()
}

#[test]
fn aac_seeks_land_on_the_same_samples_as_decoding_from_the_start() {
    let t = TempDir::new("aac-seek");
    let p = t.path("a.m4a");
    make(&p, 44_100, 4.0, &["-c:a", "aac", "-b:a", "128k"]);
    for (target, worst) in seek_errors(&p, &[44_100, 100_000, 3]) {
        // The decoder is primed with the packets before the target (preroll): the same
        // samples, not a restart without the previous packet's overlap.
        assert!(worst < 5e-3, "seek to {target}: off by {worst}");
    }
}

#[test]
fn alac_in_m4a() {
    let t = TempDir::new("alac");
    let p = t.path("a.m4a");
    make(&p, 44_100, 1.5, &["-c:a", "alac"]);
    assert_eq!(same_as_ffmpeg(&p, 0.0, "symphonia"), 66_150);
}

#[test]
fn mp3_lame_delay_and_padding() {
    let t = TempDir::new("mp3");
    for (name, codec) in [
        ("cbr.mp3", &["-c:a", "libmp3lame", "-b:a", "192k"][..]),
        ("vbr.mp3", &["-c:a", "libmp3lame", "-q:a", "2"][..]),
    ] {
        let p = t.path(name);
        make(&p, 44_100, 2.0, codec);
        // The LAME header states delay and padding: exactly the 2 s come out.
        assert_eq!(same_as_ffmpeg(&p, 1e-5, "symphonia"), 88_200, "{name}");
    }
}

#[test]
fn ogg_vorbis_follows_the_granule_positions() {
    let t = TempDir::new("vorbis");
    for (rate, secs, q) in [(44_100, 3.0, "5"), (48_000, 2.7, "2"), (22_050, 1.3, "8")] {
        let p = t.path(&format!("v{rate}.ogg"));
        make(&p, rate, secs, &["-c:a", "libvorbis", "-q:a", q]);
        let n = same_as_ffmpeg(&p, 1e-5, "symphonia");
        assert_eq!(n, (rate as f64 * secs).round() as usize, "{rate} Hz");
    }
}

#[test]
fn opus_pre_skip() {
    // Opus decodes in process (`decode/opus.rs`), the pre-skip trimmed by our decoding layer:
    // the 2 s exactly, as ffmpeg gives them. ffmpeg's native Opus decoder is its own
    // implementation, not libopus, so the samples agree to its rounding, not bit for bit.
    let t = TempDir::new("opus");
    for (name, rate, codec) in [
        (
            "stereo.opus",
            48_000,
            &["-c:a", "libopus", "-b:a", "96k"][..],
        ),
        // Mono, and an input rate other than 48 kHz: Opus decodes at 48 kHz all the same.
        (
            "mono.opus",
            44_100,
            &["-ac", "1", "-c:a", "libopus", "-b:a", "48k"][..],
        ),
    ] {
        let p = t.path(name);
        make(&p, rate, 2.0, codec);
        assert_eq!(same_as_ffmpeg(&p, 2e-3, "symphonia"), 96_000, "{name}");
        // The declared length is without the pre-skip too (the last granule position counts it).
        let src = decode::open(&p, &OpenOptions::default()).unwrap();
        assert_eq!(src.info().total_frames, Some(96_000), "{name}");
        assert_eq!(src.info().codec, "opus", "{name}");
    }
}

/// The Ogg page CRC (RFC 3533: polynomial 0x04C11DB7, no reflection, initial 0: symphonia's
/// `Crc32`, which its Ogg reader checks pages with), over the page with its CRC field zeroed.
fn ogg_crc(page: &[u8]) -> u32 {
    use symphonia::core::io::Monitor;
    let mut crc = symphonia::core::checksum::Crc32::new(0);
    crc.process_buf_bytes(page);
    crc.crc()
}

#[test]
fn opus_output_gain_is_applied() {
    // RFC 7845 §5.1: a player applies the header's output gain. ffmpeg's encoder writes 0, so
    // the gain is patched into the first page (`OpusHead` bytes 16-17, Q7.8 dB) with the page
    // CRC recomputed: +6.0206 dB (1541/256) must double every sample.
    let t = TempDir::new("opus-gain");
    let plain = t.path("plain.opus");
    make(&plain, 48_000, 1.0, &["-c:a", "libopus", "-b:a", "96k"]);
    let mut bytes = std::fs::read(&plain).unwrap();
    let head = bytes.windows(8).position(|w| w == b"OpusHead").unwrap();
    bytes[head + 16..head + 18].copy_from_slice(&1541i16.to_le_bytes());
    // The first page: 27 header bytes, the segment table, then its one packet (the OpusHead).
    assert_eq!(&bytes[..4], b"OggS");
    let segments = usize::from(bytes[26]);
    let len = 27
        + segments
        + bytes[27..27 + segments]
            .iter()
            .map(|&l| usize::from(l))
            .sum::<usize>();
    bytes[22..26].fill(0);
    let crc = ogg_crc(&bytes[..len]);
    bytes[22..26].copy_from_slice(&crc.to_le_bytes());
    let louder = t.path("louder.opus");
    std::fs::write(&louder, &bytes).unwrap();

    let (a, _, _, used) = ours(&plain);
    let (b, _, _, used_b) = ours(&louder);
    assert_eq!((used, used_b), ("symphonia", "symphonia"));
    assert_eq!(a.len(), b.len());
    let gain = 10f64.powf(1541.0 / 256.0 / 20.0);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (f64::from(y) - gain * f64::from(x)).abs())
        .fold(0f64, f64::max);
    assert!(worst < 1e-4, "gain {gain}: off by {worst}");
    let peak = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(peak > 0.3, "the signal is there ({peak})");
}

#[test]
fn opus_seeks_land_on_the_same_samples_as_decoding_from_the_start() {
    let t = TempDir::new("opus-seek");
    let p = t.path("a.opus");
    make(&p, 48_000, 6.0, &["-c:a", "libopus", "-b:a", "96k"]);
    for (target, worst) in seek_errors(&p, &[48_000, 200_000, 3, 100_000]) {
        // Decoded from 500 ms before the target, the pre-skip counted: the same samples as
        // decoding from the start (with RFC 7845's minimum of 80 ms they were 4e-2 off).
        assert!(worst < 1e-5, "seek to {target}: off by {worst}");
    }
}

#[test]
fn flac_is_bit_exact() {
    let t = TempDir::new("flac");
    let p = t.path("a.flac");
    make(&p, 48_000, 1.7, &["-sample_fmt", "s16", "-c:a", "flac"]);
    assert_eq!(same_as_ffmpeg(&p, 0.0, "symphonia"), 81_600);
}

#[test]
fn ogg_vorbis_page_whose_granule_runs_ahead_loses_no_samples() {
    // `vorbis-page-trim.ogg` (tests/fixtures/README.md): ffmpeg's Ogg muxer wrote pages whose
    // granule position runs 448 samples ahead of the packets, then back, as it does for real
    // music transcoded from a source with a timestamp jump (10 of the corpus's 11 Vorbis files).
    // symphonia 0.6.1's Ogg reader trims packets against every page's granule: without the
    // correction in our decoding layer 448 samples vanish from the middle and every later
    // sample is shifted.
    let p = fixture("vorbis-page-trim.ogg");
    assert_eq!(same_as_ffmpeg(&p, 1e-5, "symphonia"), 33_075);
}

#[test]
fn ogg_vorbis_ends_at_the_final_granule_position() {
    // `vorbis-last-page-trim.ogg`: the page before the last has a granule 448 samples ahead, so
    // the last page's padding measured from it (symphonia's reader) is 448 too many, and ffmpeg,
    // which trims at most the last packet, keeps 205 samples of padding. The final granule
    // position says 33 075 (1.5 s at 22 050 Hz): exactly what comes out. Without the
    // correction in our decoding layer this gives 32 627.
    let p = fixture("vorbis-last-page-trim.ogg");
    let (a, rate, ch, _) = ours(&p);
    assert_eq!(a.len() / ch, 33_075);
    let b = theirs(&p, rate, ch);
    assert_eq!(
        b.len() / ch,
        33_075 + 205,
        "ffmpeg keeps part of the padding"
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-5, "the same samples up to the end: {worst}");
}
