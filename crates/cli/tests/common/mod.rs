//! Helpers shared by the CLI integration tests: the binary with a data dir, exit checks,
//! generated WAV files. Each test binary uses a subset.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `sonoprint --data-dir DATA ARGS...`, with no library, ffmpeg or log settings inherited from
/// the environment.
pub fn command(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sonoprint"));
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SONOPRINT_HOME")
        .env_remove("SONOPRINT_FFMPEG")
        .env_remove("RUST_LOG");
    c
}

/// Runs `sonoprint --data-dir DATA ARGS...` to completion.
pub fn sonoprint(data: &Path, args: &[&str]) -> Output {
    command(data, args).output().unwrap()
}

/// The stdout of a command that must have succeeded (the message shows both streams).
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A mono 16-bit 22 050 Hz WAV of `secs` seconds of a tone.
pub fn wav(path: &Path, secs: f64, freq: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(secs * 22050.0) as usize {
        let t = i as f64 / 22050.0;
        w.write_sample(((t * freq * std::f64::consts::TAU).sin() * 12000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}
