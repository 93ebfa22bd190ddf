//! Helpers shared by the decoding test binaries: fixtures, temp folders, generated audio.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A committed fixture (see `tests/fixtures/README.md`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sonoprint-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a generated WAV stores its samples.
#[derive(Clone, Copy, Debug)]
pub enum WavFormat {
    Int16,
    Int24,
    Float32,
}

/// Writes a sine of `freq` Hz at peak `amp`, the same in every channel, with hound.
pub fn write_sine_wav(
    path: &Path,
    fmt: WavFormat,
    sample_rate: u32,
    channels: u16,
    secs: f64,
    freq: f64,
    amp: f64,
) {
    let (bits, sample_format) = match fmt {
        WavFormat::Int16 => (16, hound::SampleFormat::Int),
        WavFormat::Int24 => (24, hound::SampleFormat::Int),
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let n = (secs * sample_rate as f64).round() as u64;
    for i in 0..n {
        let x = amp * (2.0 * std::f64::consts::PI * freq * i as f64 / sample_rate as f64).sin();
        for _ in 0..channels {
            match fmt {
                WavFormat::Int16 => w.write_sample((x * 32768.0).round() as i16).unwrap(),
                WavFormat::Int24 => w.write_sample((x * 8388608.0).round() as i32).unwrap(),
                WavFormat::Float32 => w.write_sample(x as f32).unwrap(),
            }
        }
    }
    w.finalize().expect("finalize wav");
}

/// Runs ffmpeg to make a test input. The tests that need it do not skip without it: `.ci/run`
/// installs ffmpeg.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed to run these tests (.ci/run installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `secs` seconds of a 440 Hz sine at amplitude 0.5 (stereo) with ffmpeg, encoded by the
/// given codec arguments, at `path`.
pub fn ffmpeg_sine(path: &Path, rate: u32, secs: f64, codec: &[&str]) {
    let src =
        format!("aevalsrc=0.5*sin(2*PI*440*t)|0.5*sin(2*PI*440*t):c=stereo:s={rate}:d={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &src];
    args.extend_from_slice(codec);
    let p = path.to_str().expect("utf-8 temp path");
    args.push(p);
    ffmpeg(&args);
}

/// A deterministic byte stream for corrupting files.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}

/// An ID3v2.3 tag with a title frame and, when `picture_bytes > 0`, an APIC frame of that size.
pub fn id3v2_tag(picture_bytes: usize) -> Vec<u8> {
    fn frame(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut f = id.to_vec();
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(body);
        f
    }
    let mut frames = frame(b"TIT2", b"\0sonoprint test tag");
    if picture_bytes > 0 {
        let mut body = b"\0image/png\0\x03cover\0".to_vec();
        body.extend_from_slice(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        body.resize(body.len() + picture_bytes, 0x55);
        frames.extend(frame(b"APIC", &body));
    }
    frames.resize(frames.len() + 256, 0); // padding
    let n = frames.len() as u32;
    let syncsafe = [
        ((n >> 21) & 0x7F) as u8,
        ((n >> 14) & 0x7F) as u8,
        ((n >> 7) & 0x7F) as u8,
        (n & 0x7F) as u8,
    ];
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe);
    tag.extend(frames);
    tag
}
