//! Integration tests of the `sonoprint` binary: output formats, exit statuses, `bench`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NAMES: [&str; 25] = [
    "sub_bass_pct",
    "bass_pct",
    "low_mid_pct",
    "mid_pct",
    "upper_mid_pct",
    "presence_pct",
    "air_pct",
    "lufs",
    "crest_db",
    "bass_mid_ratio",
    "tempo_bpm",
    "rhythm_stability",
    "transient_density",
    "silence_ratio",
    "spectral_centroid",
    "spectral_rolloff",
    "spectral_flatness",
    "harmonic_ratio",
    "pitch_stability",
    "chroma_energy",
    "dynamic_range_variation",
    "loudness_variation_std",
    "peak_consistency",
    "stereo_width",
    "phase_correlation",
];

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("sonoprint-cli-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 3 s of a 440 Hz sine, 16-bit stereo at 44.1 kHz.
fn write_wav(path: &Path, secs: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(secs * 44100.0) as u64 {
        let x = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 44100.0).sin();
        let s = (x * 32768.0).round() as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn sonoprint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .args(args)
        .output()
        .expect("run sonoprint")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn check_fingerprint_line(v: &Value, path: &str) {
    let obj = v.as_object().unwrap();
    assert_eq!(obj["path"], path);
    assert!(!obj.contains_key("error"), "{v}");
    let fp = obj["fingerprint"].as_object().unwrap();
    let names: Vec<&str> = fp.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, NAMES, "all 25 names, in table order");
    assert!(fp.values().all(|x| x.as_f64().is_some_and(f64::is_finite)));
    assert!(fp["low_mid_pct"].as_f64().unwrap() > 0.9);
    let m = obj["metadata"].as_object().unwrap();
    for key in [
        "duration_sec",
        "sample_rate",
        "channels",
        "bits_per_sample",
        "format",
        "codec",
        "analyzed_sec",
        "mode",
        "decoder",
        "fingerprint_version",
    ] {
        assert!(m.contains_key(key), "metadata lacks {key}: {v}");
    }
    assert_eq!(m["sample_rate"], 44100);
    assert_eq!(m["channels"], 2);
    assert_eq!(m["bits_per_sample"], 16);
    assert_eq!(m["format"], "wav");
    assert_eq!(m["mode"], "excerpt");
    assert_eq!(m["decoder"], "symphonia");
    assert!((m["duration_sec"].as_f64().unwrap() - 3.0).abs() < 1e-6);
}

#[test]
fn analyze_json_prints_one_line_and_exits_0() {
    let dir = TempDir::new("json");
    let wav = dir.path("sine.wav");
    write_wav(&wav, 3.0);
    let p = wav.to_str().unwrap();
    let out = sonoprint(&["analyze", "--json", p]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    check_fingerprint_line(&lines[0], p);
}

#[test]
fn analyze_json_with_a_broken_file_prints_two_lines_and_exits_1() {
    let dir = TempDir::new("mixed");
    let wav = dir.path("sine.wav");
    write_wav(&wav, 3.0);
    let bad = dir.path("readme.flac");
    std::fs::write(
        &bad,
        "Not audio at all, just a text file with a .flac name.\n",
    )
    .unwrap();
    let (good, broken) = (wav.to_str().unwrap(), bad.to_str().unwrap());
    let out = sonoprint(&["analyze", "--json", good, broken]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    check_fingerprint_line(&lines[0], good);
    let e = lines[1].as_object().unwrap();
    assert_eq!(e["path"], broken);
    assert!(!e.contains_key("fingerprint"));
    let err = e["error"].as_object().unwrap();
    assert_eq!(err["class"], "not_audio");
    assert!(!err["message"].as_str().unwrap().is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["analyze"][..],
        &["analyze", "--no-such-flag", "x.flac"],
        &["frobnicate"],
        &[],
    ] {
        let out = sonoprint(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn table_lists_all_25_names() {
    let dir = TempDir::new("table");
    let wav = dir.path("sine.wav");
    write_wav(&wav, 3.0);
    let out = sonoprint(&["analyze", wav.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut at = 0;
    for name in NAMES {
        let line = text[at..]
            .lines()
            .position(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing or out of order in\n{text}"));
        at += text[at..]
            .lines()
            .take(line + 1)
            .map(|l| l.len() + 1)
            .sum::<usize>();
    }
}

#[test]
fn bench_on_a_small_folder() {
    let dir = TempDir::new("bench");
    write_wav(&dir.path("a.wav"), 3.0);
    write_wav(&dir.path("b.wav"), 2.0);
    let out = sonoprint(&["bench", "--jobs", "1", dir.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("decode"),
        "the decoding floor is reported:\n{text}"
    );
    assert!(text.to_lowercase().contains("tracks/s"), "{text}");
}
