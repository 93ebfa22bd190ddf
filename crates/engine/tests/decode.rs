//! Decoding tests: every supported format, and every troublesome case a real library holds.
//!
//! The fixtures (`tests/fixtures/`, made by the commands in its README) hold a 440 Hz sine at
//! amplitude 0.5 in every channel. Its loudness is −0.691 + 10·log10(2 · 0.5²/2) ≈ −6.71 LUFS
//! (stereo, or mono measured as dual mono), and all of its power lies in the 250–500 Hz band.
//! WAV files and longer inputs are generated here, with hound or with ffmpeg (which `.ci/run`
//! installs: these tests do not skip without it).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use sonoprint_engine::{
    analyze_file, analyze_file_guarded, Analysis, AnalysisError, ErrorClass, Mode, Options,
};

/// Loudness of the fixtures' signal, measured on lossless copies.
const SINE_LUFS: f64 = -6.71;

fn analyze(path: &Path) -> Result<Analysis, AnalysisError> {
    analyze_file(path, &Options::default())
}

fn ok(path: &Path) -> Analysis {
    match analyze(path) {
        Ok(a) => a,
        Err(e) => panic!("{} should be fingerprinted, got {e}", path.display()),
    }
}

fn err(path: &Path) -> AnalysisError {
    match analyze(path) {
        Ok(a) => panic!(
            "{} should fail, got a fingerprint: {:?}",
            path.display(),
            a.metadata
        ),
        Err(e) => e,
    }
}

/// What the metadata of a fixture must say.
struct Expect {
    format: &'static str,
    codec: &'static str,
    decoder: &'static str,
    sample_rate: u32,
    channels: u32,
    bits: Option<u32>,
    secs: f64,
    /// Loudness tolerance around `SINE_LUFS` (lossy codecs get ~1 LU).
    lufs_tol: f64,
}

/// Checks the metadata and that the fingerprint looks like a 440 Hz sine.
fn check_sine(a: &Analysis, e: &Expect) {
    let m = &a.metadata;
    let fp = &a.fingerprint;
    assert_eq!(m.format, e.format, "format in {m:?}");
    assert_eq!(m.codec, e.codec, "codec in {m:?}");
    assert_eq!(m.decoder, e.decoder, "decoder in {m:?}");
    assert_eq!(m.sample_rate, e.sample_rate, "sample rate in {m:?}");
    assert_eq!(m.channels, e.channels, "channels in {m:?}");
    if let Some(b) = e.bits {
        assert_eq!(m.bits_per_sample, Some(b), "bits in {m:?}");
    }
    // Lossy codecs add encoder delay and padding: a few tens of ms.
    assert!(
        (m.duration_sec - e.secs).abs() < 0.08,
        "duration {} for {} s",
        m.duration_sec,
        e.secs
    );
    assert!(
        (m.analyzed_sec - e.secs).abs() < 0.08,
        "analysed {} of {} s",
        m.analyzed_sec,
        e.secs
    );
    assert_eq!(m.mode, Mode::Excerpt);
    assert_eq!(m.access, "whole");
    assert!(!m.truncated, "not truncated: {m:?}");
    assert_eq!(m.skipped_packets, 0);
    assert_eq!(m.fingerprint_version, sonoprint_engine::FINGERPRINT_VERSION);
    assert!(fp.low_mid_pct > 0.9, "low_mid_pct {}", fp.low_mid_pct);
    assert!(fp.sub_bass_pct < 0.01, "sub_bass_pct {}", fp.sub_bass_pct);
    assert!(
        (fp.lufs - SINE_LUFS).abs() < e.lufs_tol,
        "lufs {} for {SINE_LUFS} ± {}",
        fp.lufs,
        e.lufs_tol
    );
    // A sine's crest factor is √2 (3.01 dB); codecs ring a little around it.
    assert!((fp.crest_db - 3.01).abs() < 0.5, "crest_db {}", fp.crest_db);
    assert!(
        fp.phase_correlation > 0.99,
        "phase_correlation {}",
        fp.phase_correlation
    );
    assert!(fp.stereo_width < 0.01, "stereo_width {}", fp.stereo_width);
    assert!(fp.chroma_energy > 0.4, "chroma_energy {}", fp.chroma_energy);
    assert!(fp.first_non_finite().is_none());
}

const LOSSLESS: f64 = 0.1;
const LOSSY: f64 = 1.0;

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

#[test]
fn mp3_cbr_with_id3v2_tag() {
    let p = fixture("mp3-cbr-id3.mp3");
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..3], b"ID3", "the fixture starts with its ID3v2 tag");
    check_sine(
        &ok(&p),
        &Expect {
            format: "mp3",
            codec: "mp3",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn mp3_vbr() {
    check_sine(
        &ok(&fixture("mp3-vbr.mp3")),
        &Expect {
            format: "mp3",
            codec: "mp3",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn aac_in_m4a() {
    check_sine(
        &ok(&fixture("aac.m4a")),
        &Expect {
            format: "mp4",
            codec: "aac",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn alac_in_m4a() {
    check_sine(
        &ok(&fixture("alac-mono.m4a")),
        &Expect {
            format: "mp4",
            codec: "alac",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 1,
            bits: None,
            secs: 2.0,
            lufs_tol: LOSSLESS,
        },
    );
}

#[test]
fn ogg_vorbis() {
    check_sine(
        &ok(&fixture("vorbis.ogg")),
        &Expect {
            format: "ogg",
            codec: "vorbis",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn ogg_opus() {
    // In process (`decode/opus.rs`): ffmpeg is only the fallback for what symphonia cannot read.
    check_sine(
        &ok(&fixture("opus.opus")),
        &Expect {
            format: "ogg",
            codec: "opus",
            decoder: "symphonia",
            sample_rate: 48000,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn wma_through_ffmpeg() {
    check_sine(
        &ok(&fixture("wma.wma")),
        &Expect {
            format: "asf",
            codec: "wmav2",
            decoder: "ffmpeg",
            sample_rate: 44100,
            channels: 2,
            bits: None,
            secs: 3.0,
            lufs_tol: LOSSY,
        },
    );
}

#[test]
fn aiff_16bit() {
    check_sine(
        &ok(&fixture("aiff-mono-22k.aiff")),
        &Expect {
            format: "aiff",
            codec: "pcm_s16be",
            decoder: "symphonia",
            sample_rate: 22050,
            channels: 1,
            bits: Some(16),
            secs: 1.5,
            lufs_tol: LOSSLESS,
        },
    );
}

#[test]
fn flac_16bit() {
    check_sine(
        &ok(&fixture("flac-16bit.flac")),
        &Expect {
            format: "flac",
            codec: "flac",
            decoder: "symphonia",
            sample_rate: 44100,
            channels: 2,
            bits: Some(16),
            secs: 3.0,
            lufs_tol: LOSSLESS,
        },
    );
}

#[test]
fn flac_24bit_96k_matches_a_24bit_wav() {
    let flac = ok(&fixture("flac-24bit-96k-mono.flac"));
    check_sine(
        &flac,
        &Expect {
            format: "flac",
            codec: "flac",
            decoder: "symphonia",
            sample_rate: 96000,
            channels: 1,
            bits: Some(24),
            secs: 1.25,
            lufs_tol: LOSSLESS,
        },
    );
    // The same signal as a 24-bit WAV: integer scaling is by 2^23 in both.
    let dir = TempDir::new("flac24");
    let wav = dir.path("same.wav");
    write_sine_wav(&wav, WavFormat::Int24, 96000, 1, 1.25, 440.0, 0.5);
    let w = ok(&wav);
    assert!(
        (flac.fingerprint.lufs - w.fingerprint.lufs).abs() < 0.05,
        "FLAC {} vs WAV {}",
        flac.fingerprint.lufs,
        w.fingerprint.lufs
    );
    assert!((flac.fingerprint.crest_db - w.fingerprint.crest_db).abs() < 0.05);
}

#[test]
fn flac_16bit_matches_a_16bit_wav() {
    let flac = ok(&fixture("flac-16bit.flac"));
    let dir = TempDir::new("flac16");
    let wav = dir.path("same.wav");
    write_sine_wav(&wav, WavFormat::Int16, 44100, 2, 3.0, 440.0, 0.5);
    let w = ok(&wav);
    assert!(
        (flac.fingerprint.lufs - w.fingerprint.lufs).abs() < 0.05,
        "FLAC {} vs WAV {}",
        flac.fingerprint.lufs,
        w.fingerprint.lufs
    );
}

#[test]
fn flac_7_1_excludes_the_lfe() {
    let a = ok(&fixture("flac-7.1.flac"));
    let (m, fp) = (&a.metadata, &a.fingerprint);
    assert_eq!((m.format.as_str(), m.codec.as_str()), ("flac", "flac"));
    assert_eq!((m.sample_rate, m.channels), (48000, 8));
    assert_eq!(m.bits_per_sample, Some(16));
    assert!((m.duration_sec - 1.25).abs() < 1e-3);
    // The LFE holds a 50 Hz sine: it must not reach the mono mix ...
    assert!(fp.sub_bass_pct < 0.01, "sub_bass_pct {}", fp.sub_bass_pct);
    assert!(fp.low_mid_pct > 0.9, "low_mid_pct {}", fp.low_mid_pct);
    // ... nor the loudness: FL FR FC at weight 1 and four surrounds at 1.41, each 0.125 mean
    // square: −0.691 + 10·log10(0.125 · (3 + 4 · 1.41)) = −0.36 LUFS.
    assert!((fp.lufs - -0.36).abs() < 0.1, "lufs {}", fp.lufs);
}

#[test]
fn wav_16_24_and_float_agree() {
    let dir = TempDir::new("wav");
    let mut lufs = Vec::new();
    for (fmt, bits, codec) in [
        (WavFormat::Int16, 16, "pcm_s16le"),
        (WavFormat::Int24, 24, "pcm_s24le"),
        (WavFormat::Float32, 32, "pcm_f32le"),
    ] {
        let p = dir.path(&format!("{bits}.wav"));
        write_sine_wav(&p, fmt, 44100, 2, 3.0, 440.0, 0.5);
        let a = ok(&p);
        check_sine(
            &a,
            &Expect {
                format: "wav",
                codec,
                decoder: "symphonia",
                sample_rate: 44100,
                channels: 2,
                bits: Some(bits),
                secs: 3.0,
                lufs_tol: LOSSLESS,
            },
        );
        lufs.push(a.fingerprint.lufs);
    }
    assert!(
        (lufs[0] - lufs[1]).abs() < 0.05 && (lufs[1] - lufs[2]).abs() < 0.05,
        "16/24/float lufs {lufs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Troublesome cases
// ---------------------------------------------------------------------------------------------

#[test]
fn flac_with_id3v2_tag_in_front() {
    let dir = TempDir::new("id3flac");
    let p = dir.path("tagged.flac");
    let mut bytes = id3v2_tag(0);
    bytes.extend(std::fs::read(fixture("flac-16bit.flac")).unwrap());
    std::fs::write(&p, bytes).unwrap();
    let a = ok(&p);
    assert_eq!(a.metadata.format, "flac");
    assert!((a.metadata.duration_sec - 3.0).abs() < 1e-3);
    assert!((a.fingerprint.lufs - SINE_LUFS).abs() < LOSSLESS);
}

#[test]
fn mp3_with_a_large_id3v2_tag_in_front() {
    // A 300 kB cover in the ID3v2 tag, in front of an untagged MP3.
    let dir = TempDir::new("id3mp3");
    let p = dir.path("tagged.mp3");
    let mut bytes = id3v2_tag(300_000);
    bytes.extend(std::fs::read(fixture("mp3-vbr.mp3")).unwrap());
    std::fs::write(&p, bytes).unwrap();
    let a = ok(&p);
    assert_eq!(a.metadata.format, "mp3");
    assert!((a.metadata.duration_sec - 3.0).abs() < 0.08);
    assert!(a.fingerprint.low_mid_pct > 0.9);
}

#[test]
fn lying_extensions_are_ignored() {
    let dir = TempDir::new("lying");
    for (src, name, format) in [
        ("flac-16bit.flac", "really-flac.mp3", "flac"),
        ("mp3-cbr-id3.mp3", "really-mp3.wav", "mp3"),
        ("aac.m4a", "no-extension", "mp4"),
        ("vorbis.ogg", "really-ogg.m4a", "ogg"),
    ] {
        let p = dir.path(name);
        std::fs::copy(fixture(src), &p).unwrap();
        let a = ok(&p);
        assert_eq!(a.metadata.format, format, "{name}");
        assert!(a.fingerprint.low_mid_pct > 0.9, "{name}");
    }
}

/// Overwrites `n` bytes at `at` with noise.
fn corrupt(bytes: &mut [u8], at: usize, n: usize, seed: u64) {
    Noise::new(seed).fill(&mut bytes[at..at + n]);
}

#[test]
fn flac_with_a_few_corrupt_frames_is_fingerprinted() {
    let dir = TempDir::new("corruptflac");
    let p = dir.path("long.flac");
    ffmpeg_sine(&p, 44100, 20.0, &["-sample_fmt", "s16", "-c:a", "flac"]);
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    corrupt(&mut bytes, mid, 400, 1);
    let later = mid + bytes.len() / 5;
    corrupt(&mut bytes, later, 300, 2);
    std::fs::write(&p, &bytes).unwrap();
    let a = ok(&p);
    let m = &a.metadata;
    assert_eq!(m.decoder, "symphonia");
    assert!(
        m.skipped_packets >= 1,
        "the damaged frames are counted: {m:?}"
    );
    assert!(m.skipped_packets < 10, "{m:?}");
    assert!(m.analyzed_sec > 18.0, "the rest decodes: {m:?}");
    assert!(a.fingerprint.low_mid_pct > 0.9);
}

#[test]
fn mp3_with_a_few_corrupt_frames_is_fingerprinted() {
    let dir = TempDir::new("corruptmp3");
    let p = dir.path("long.mp3");
    ffmpeg_sine(&p, 44100, 20.0, &["-c:a", "libmp3lame", "-b:a", "128k"]);
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    corrupt(&mut bytes, mid, 400, 3);
    let later = mid + bytes.len() / 5;
    corrupt(&mut bytes, later, 300, 4);
    std::fs::write(&p, &bytes).unwrap();
    let a = ok(&p);
    let m = &a.metadata;
    // An MP3 decoder may or may not notice a damaged frame (there is no checksum by default):
    // what matters is that the rest decodes.
    assert!(m.skipped_packets < 10, "{m:?}");
    assert!(m.analyzed_sec > 18.0, "the rest decodes: {m:?}");
    assert!(a.fingerprint.low_mid_pct > 0.8);
}

/// Heavy damage ends, by itself and fast, in a `corrupt` error or a fingerprint of what decodes.
fn mostly_garbage(codec: &[&str], name: &str) {
    let dir = TempDir::new("garbage");
    let p = dir.path(name);
    ffmpeg_sine(&p, 44100, 20.0, codec);
    let mut bytes = std::fs::read(&p).unwrap();
    let keep = 4096.min(bytes.len() / 10);
    let n = bytes.len() - keep;
    corrupt(&mut bytes, keep, n, 5);
    std::fs::write(&p, &bytes).unwrap();
    let t0 = Instant::now();
    let r = analyze_file_guarded(&p, &Options::default(), Duration::from_secs(60));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    match r {
        Ok(a) => assert!(a.fingerprint.first_non_finite().is_none()),
        Err(e) => assert!(
            matches!(
                e.class,
                ErrorClass::Corrupt | ErrorClass::Truncated | ErrorClass::TooShort
            ),
            "{name}: {e}"
        ),
    }
}

#[test]
fn flac_mostly_garbage_fails_as_corrupt_or_decodes_what_it_can() {
    mostly_garbage(&["-sample_fmt", "s16", "-c:a", "flac"], "garbage.flac");
}

#[test]
fn mp3_mostly_garbage_fails_as_corrupt_or_decodes_what_it_can() {
    mostly_garbage(&["-c:a", "libmp3lame", "-b:a", "128k"], "garbage.mp3");
}

/// A 10 s FLAC whose tail is cut off (`keep` of its bytes) or, with `garbage`, overwritten.
fn damaged_flac(dir: &TempDir, keep: f64, garbage: bool) -> std::path::PathBuf {
    let p = dir.path("long.flac");
    ffmpeg_sine(&p, 44100, 10.0, &["-sample_fmt", "s16", "-c:a", "flac"]);
    let mut bytes = std::fs::read(&p).unwrap();
    let at = (bytes.len() as f64 * keep) as usize;
    if garbage {
        Noise::new(7).fill(&mut bytes[at..]);
    } else {
        bytes.truncate(at);
    }
    std::fs::write(&p, &bytes).unwrap();
    p
}

#[test]
fn flac_cut_to_a_quarter_fails_as_truncated_with_both_durations() {
    let dir = TempDir::new("truncflac");
    let e = err(&damaged_flac(&dir, 0.25, false));
    assert_eq!(e.class, ErrorClass::Truncated, "{e}");
    assert!(e.message.contains("appears corrupted or truncated"), "{e}");
    assert!(e.message.contains("10.0 s"), "the declared duration: {e}");
    assert!(
        e.message.contains(" 2.") || e.message.contains(" 3."),
        "what decodes: {e}"
    );
}

#[test]
fn flac_whose_last_three_quarters_are_garbage_fails_as_truncated() {
    // Garbage is not a clean end of the stream: the file does not hold the declared track.
    let dir = TempDir::new("garbflac");
    let e = err(&damaged_flac(&dir, 0.25, true));
    assert_eq!(e.class, ErrorClass::Truncated, "{e}");
    assert!(e.message.contains("10.0 s"), "{e}");
}

#[test]
fn flac_missing_its_last_five_percent_is_analysed_and_flagged() {
    let dir = TempDir::new("trunc5");
    for garbage in [false, true] {
        let a = ok(&damaged_flac(&dir, 0.95, garbage));
        let m = &a.metadata;
        assert!(m.truncated, "{m:?}");
        assert_eq!(m.duration_sec, 10.0, "the declared duration: {m:?}");
        assert!(m.analyzed_sec > 9.0 && m.analyzed_sec < 9.9, "{m:?}");
        assert!(a.fingerprint.low_mid_pct > 0.9);
    }
}

#[test]
fn min_coverage_is_settable() {
    let dir = TempDir::new("cov");
    let p = damaged_flac(&dir, 0.4, false);
    assert_eq!(
        err(&p).class,
        ErrorClass::Truncated,
        "40 % < 90 % by default"
    );
    let opts = Options {
        min_coverage: 0.3,
        ..Default::default()
    };
    let a = analyze_file(&p, &opts).unwrap();
    assert!(a.metadata.truncated);
    assert!(a.metadata.analyzed_sec > 3.0 && a.metadata.analyzed_sec < 5.0);
}

#[test]
fn truncated_mp3_fails_below_the_coverage_and_is_flagged_above() {
    let dir = TempDir::new("truncmp3");
    let p = dir.path("long.mp3");
    ffmpeg_sine(&p, 44100, 10.0, &["-c:a", "libmp3lame", "-b:a", "128k"]);
    let bytes = std::fs::read(&p).unwrap();
    let cut = dir.path("cut.mp3");
    std::fs::write(&cut, &bytes[..bytes.len() * 4 / 10]).unwrap();
    let e = err(&cut);
    assert_eq!(
        e.class,
        ErrorClass::Truncated,
        "the Xing header says 10 s: {e}"
    );
    std::fs::write(&cut, &bytes[..bytes.len() * 93 / 100]).unwrap();
    let m = ok(&cut).metadata;
    assert!(m.truncated, "{m:?}");
    assert!(m.analyzed_sec > 9.0 && m.analyzed_sec < 9.9, "{m:?}");
}

#[test]
fn long_flac_cut_after_its_excerpts_fails_in_excerpt_mode_too() {
    // 200 s: the excerpts end at 165 s, the file at 170 s (85 % of 200).
    let dir = TempDir::new("excut");
    let p = dir.path("long.flac");
    ffmpeg_sine(&p, 8000, 200.0, &["-sample_fmt", "s16", "-c:a", "flac"]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() * 85 / 100]).unwrap();
    let e = err(&p);
    assert_eq!(e.class, ErrorClass::Truncated, "{e}");
    assert!(e.message.contains("200.0 s"), "{e}");
}

#[test]
fn truncated_flac_under_a_second_is_truncated() {
    let dir = TempDir::new("trunc300");
    let p = dir.path("head.flac");
    let bytes = std::fs::read(fixture("flac-16bit.flac")).unwrap();
    std::fs::write(&p, &bytes[..300]).unwrap();
    assert_eq!(err(&p).class, ErrorClass::Truncated);
    // Past the header but well under 1 s of audio.
    std::fs::write(&p, &bytes[..6000]).unwrap();
    assert_eq!(err(&p).class, ErrorClass::Truncated);
}

/// Rewrites a FLAC's metadata blocks with a PICTURE block of `size` bytes after STREAMINFO.
fn with_picture(flac: &[u8], size: usize) -> Vec<u8> {
    assert_eq!(&flac[..4], b"fLaC");
    let mut blocks = Vec::new();
    let mut pos = 4;
    loop {
        let hdr = flac[pos];
        let len = u32::from_be_bytes([0, flac[pos + 1], flac[pos + 2], flac[pos + 3]]) as usize;
        blocks.push((hdr & 0x7F, flac[pos + 4..pos + 4 + len].to_vec()));
        pos += 4 + len;
        if hdr & 0x80 != 0 {
            break;
        }
    }
    let mut pic = Vec::new();
    pic.extend_from_slice(&3u32.to_be_bytes()); // front cover
    pic.extend_from_slice(&9u32.to_be_bytes());
    pic.extend_from_slice(b"image/png");
    pic.extend_from_slice(&5u32.to_be_bytes());
    pic.extend_from_slice(b"cover");
    for v in [3000u32, 3000, 24, 0] {
        pic.extend_from_slice(&v.to_be_bytes());
    }
    let mut data = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    data.resize(size, 0);
    Noise::new(9).fill(&mut data[8..]);
    pic.extend_from_slice(&(data.len() as u32).to_be_bytes());
    pic.extend(data);
    assert!(pic.len() < 1 << 24, "a metadata block holds under 16 MiB");
    blocks.insert(1, (6, pic));

    let mut out = b"fLaC".to_vec();
    let last = blocks.len() - 1;
    for (i, (typ, body)) in blocks.into_iter().enumerate() {
        let len = body.len() as u32;
        out.push(typ | if i == last { 0x80 } else { 0 });
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend(body);
    }
    out.extend_from_slice(&flac[pos..]);
    out
}

#[test]
fn flac_with_a_huge_embedded_picture() {
    let dir = TempDir::new("cover");
    let p = dir.path("cover.flac");
    let bytes = std::fs::read(fixture("flac-16bit.flac")).unwrap();
    std::fs::write(&p, with_picture(&bytes, 12 << 20)).unwrap();
    assert!(std::fs::metadata(&p).unwrap().len() > 12 << 20);
    let a = ok(&p);
    assert!((a.metadata.duration_sec - 3.0).abs() < 1e-3);
    assert!((a.fingerprint.lufs - SINE_LUFS).abs() < LOSSLESS);
}

#[test]
fn zero_byte_file_is_empty() {
    let dir = TempDir::new("empty");
    let p = dir.path("empty.flac");
    std::fs::write(&p, b"").unwrap();
    let e = err(&p);
    assert_eq!(e.class, ErrorClass::Empty);
    assert!(e.message.contains("empty"), "{e}");
    assert_eq!(e.path, p, "the error names the file");
}

#[test]
fn text_named_flac_is_not_audio() {
    let dir = TempDir::new("text");
    let p = dir.path("readme.flac");
    std::fs::write(
        &p,
        "This folder holds my music collection.\nPlease do not delete it.\n".repeat(20),
    )
    .unwrap();
    assert_eq!(err(&p).class, ErrorClass::NotAudio);
}

#[test]
fn images_named_mp3_are_not_audio() {
    let dir = TempDir::new("image");
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.extend_from_slice(&[0, 0, 0, 13]);
    png.extend_from_slice(b"IHDR");
    png.resize(5000, 0);
    Noise::new(7).fill(&mut png[40..]);
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    jpeg.extend_from_slice(b"JFIF\0");
    jpeg.resize(5000, 0);
    Noise::new(8).fill(&mut jpeg[40..]);
    for (name, bytes) in [("cover.mp3", png), ("photo.mp3", jpeg)] {
        let p = dir.path(name);
        std::fs::write(&p, bytes).unwrap();
        let e = err(&p);
        assert_eq!(e.class, ErrorClass::NotAudio, "{name}: {e}");
        assert!(e.message.contains("image"), "{name}: {e}");
    }
}

#[test]
fn directory_is_io() {
    let dir = TempDir::new("dir");
    let p = dir.path("album.flac");
    std::fs::create_dir(&p).unwrap();
    let e = err(&p);
    assert_eq!(e.class, ErrorClass::Io);
    assert!(e.message.contains("directory"), "{e}");
}

#[cfg(unix)]
#[test]
fn fifo_is_io_at_once() {
    let dir = TempDir::new("fifo");
    let p = dir.path("pipe.flac");
    let st = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let t0 = Instant::now();
    // Guarded: if the open ever blocked, the test fails instead of hanging.
    let r = analyze_file_guarded(&p, &Options::default(), Duration::from_secs(5));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    let e = r.expect_err("a FIFO is no track");
    assert_eq!(e.class, ErrorClass::Io, "{e}");
}

#[cfg(unix)]
#[test]
fn dangling_symlink_is_io() {
    let dir = TempDir::new("dangling");
    let p = dir.path("dangling.flac");
    std::os::unix::fs::symlink(dir.path("nowhere.flac"), &p).unwrap();
    let e = err(&p);
    assert_eq!(e.class, ErrorClass::Io);
    assert!(e.message.contains("link"), "{e}");
}

#[test]
fn missing_file_is_io() {
    let dir = TempDir::new("missing");
    assert_eq!(err(&dir.path("nothing.flac")).class, ErrorClass::Io);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_io() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("unreadable");
    let p = dir.path("locked.flac");
    std::fs::copy(fixture("flac-16bit.flac"), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    let r = analyze(&p);
    // root reads any file whatever its mode, so as root the file is simply fingerprinted and
    // only the absence of a panic or a hang is checked.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !root {
        let e = r.expect_err("a mode-000 file cannot be read");
        assert_eq!(e.class, ErrorClass::Io, "{e}");
        assert!(e.message.contains("permission"), "{e}");
    }
}

#[test]
fn under_a_second_is_too_short() {
    let dir = TempDir::new("short");
    let p = dir.path("short.wav");
    write_sine_wav(&p, WavFormat::Int16, 44100, 2, 0.5, 440.0, 0.5);
    let e = err(&p);
    assert_eq!(e.class, ErrorClass::TooShort, "{e}");
    // 1.5 s is enough.
    write_sine_wav(&p, WavFormat::Int16, 44100, 2, 1.5, 440.0, 0.5);
    ok(&p);
}

// ---------------------------------------------------------------------------------------------
// The excerpt plan reaches its excerpts by seeking
// ---------------------------------------------------------------------------------------------

/// A 130 s track analysed in excerpt mode: three 30 s excerpts, reached by seeking.
fn seeks(p: &Path, format: &str) {
    let a = ok(p);
    let m = &a.metadata;
    assert_eq!(m.format, format);
    assert_eq!(m.access, "seek", "{format}: {m:?}");
    assert!(!m.truncated, "{format}: {m:?}");
    assert!(
        (m.analyzed_sec - 90.0).abs() < 0.1,
        "{format}: three 30 s excerpts: {m:?}"
    );
    assert!((m.duration_sec - 130.0).abs() < 0.2, "{format}: {m:?}");
    assert!(a.fingerprint.low_mid_pct > 0.9, "{format}");
    assert!((a.fingerprint.lufs - SINE_LUFS).abs() < LOSSY, "{format}");
}

#[test]
fn excerpts_seek_in_flac() {
    let dir = TempDir::new("seekflac");
    let p = dir.path("long.flac");
    ffmpeg_sine(&p, 22050, 130.0, &["-sample_fmt", "s16", "-c:a", "flac"]);
    seeks(&p, "flac");
}

#[test]
fn excerpts_seek_in_mp3() {
    let dir = TempDir::new("seekmp3");
    let p = dir.path("long.mp3");
    ffmpeg_sine(&p, 22050, 130.0, &["-c:a", "libmp3lame", "-b:a", "64k"]);
    seeks(&p, "mp3");
}

#[test]
fn excerpts_seek_in_m4a() {
    let dir = TempDir::new("seekm4a");
    let p = dir.path("long.m4a");
    ffmpeg_sine(&p, 22050, 130.0, &["-c:a", "aac", "-b:a", "48k"]);
    seeks(&p, "mp4");
}

#[test]
fn excerpts_seek_in_ogg() {
    let dir = TempDir::new("seekogg");
    let p = dir.path("long.ogg");
    ffmpeg_sine(&p, 22050, 130.0, &["-c:a", "libvorbis", "-q:a", "0"]);
    seeks(&p, "ogg");
}

#[test]
fn excerpts_seek_in_wav() {
    let dir = TempDir::new("seekwav");
    let p = dir.path("long.wav");
    write_sine_wav(&p, WavFormat::Int16, 22050, 2, 130.0, 440.0, 0.5);
    seeks(&p, "wav");
}

#[test]
fn full_mode_reads_every_sample() {
    let dir = TempDir::new("full");
    let p = dir.path("long.wav");
    write_sine_wav(&p, WavFormat::Int16, 22050, 1, 130.0, 440.0, 0.5);
    let opts = Options {
        mode: Mode::Full,
        ..Default::default()
    };
    let a = analyze_file(&p, &opts).unwrap();
    assert_eq!(a.metadata.mode, Mode::Full);
    assert_eq!(a.metadata.access, "whole");
    assert!((a.metadata.analyzed_sec - 130.0).abs() < 1e-6);
}
