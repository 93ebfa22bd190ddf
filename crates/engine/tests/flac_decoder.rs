//! Our FLAC decoder (`decode::flac`) against symphonia's own, the oracle: every packet of FLAC
//! files made here with ffmpeg at varied settings must decode to the same samples and the same
//! `AudioSpec`. Fixtures are generated, not committed; ffmpeg is required (the tests fail
//! without it).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;
mod flac_oracle;

use std::path::Path;

use common::{ffmpeg, TempDir};
use sonoprint_engine::decode::{self, OpenOptions};

/// A signal with tones, a chirp-like beat and a little noise, different in each channel, so that
/// the encoder picks varied predictors.
fn music(channels: usize) -> String {
    let exprs: Vec<String> = (0..channels)
        .map(|c| {
            format!(
                "0.3*sin(2*PI*{}*t)+0.2*sin(2*PI*{}*t)*sin(3*t)+0.05*(random({c})-0.5)",
                220 + 110 * c,
                1234 + 77 * c
            )
        })
        .collect();
    exprs.join("|")
}

/// Encodes `secs` of `source` (an lavfi graph) to FLAC with `args` and compares the decoders.
fn check(dir: &TempDir, name: &str, source: &str, args: &[&str]) {
    let path = dir.path(&format!("{name}.flac"));
    let p = path.to_str().expect("utf-8 path");
    let mut all = vec!["-f", "lavfi", "-i", source, "-c:a", "flac"];
    all.extend_from_slice(args);
    all.push(p);
    ffmpeg(&all);
    assert_identical(&path);
}

fn assert_identical(path: &Path) {
    let a = flac_oracle::compare(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        a.identical(),
        "{}: {} packets differ: {:?}",
        path.display(),
        a.different_packets,
        a.differences
    );
    assert!(
        a.packets > 0 && a.samples > 0,
        "{}: nothing decoded",
        path.display()
    );
    assert_eq!(a.both_failed, 0, "{}: packets refused", path.display());
}

fn stereo(rate: u32, secs: f64) -> String {
    format!("aevalsrc={}:c=stereo:s={rate}:d={secs}", music(2))
}

#[test]
fn every_compression_level() {
    let dir = TempDir::new("flac-levels");
    let src = stereo(44_100, 2.0);
    for level in 0..=12 {
        let l = level.to_string();
        check(
            &dir,
            &format!("level{level}"),
            &src,
            &["-compression_level", &l],
        );
    }
}

#[test]
fn lpc_types_and_passes() {
    let dir = TempDir::new("flac-lpc");
    let src = stereo(44_100, 1.5);
    for (name, args) in [
        ("none", &["-lpc_type", "none"][..]),
        ("fixed", &["-lpc_type", "fixed"]),
        ("levinson", &["-lpc_type", "levinson"]),
        ("cholesky", &["-lpc_type", "cholesky", "-lpc_passes", "3"]),
        (
            "order32",
            &[
                "-compression_level",
                "12",
                "-min_prediction_order",
                "32",
                "-max_prediction_order",
                "32",
                "-strict",
                "-2",
            ],
        ),
        (
            "precision15",
            &["-lpc_coeff_precision", "15", "-max_prediction_order", "12"],
        ),
        (
            "exact_rice",
            &["-exact_rice_parameters", "1", "-multi_dim_quant", "1"],
        ),
        (
            "search",
            &[
                "-prediction_order_method",
                "search",
                "-max_partition_order",
                "8",
            ],
        ),
    ] {
        check(&dir, name, &src, args);
    }
}

#[test]
fn stereo_modes() {
    let dir = TempDir::new("flac-stereo");
    let src = stereo(44_100, 1.5);
    for mode in ["auto", "indep", "left_side", "right_side", "mid_side"] {
        check(&dir, mode, &src, &["-ch_mode", mode]);
    }
}

#[test]
fn sample_formats_rates_and_channels() {
    let dir = TempDir::new("flac-formats");
    let src = stereo(44_100, 1.5);
    check(&dir, "s16", &src, &["-sample_fmt", "s16"]);
    check(
        &dir,
        "s24",
        &src,
        &["-sample_fmt", "s32", "-bits_per_raw_sample", "24"],
    );
    check(
        &dir,
        "s24_mid",
        &src,
        &[
            "-sample_fmt",
            "s32",
            "-bits_per_raw_sample",
            "24",
            "-ch_mode",
            "mid_side",
            "-compression_level",
            "8",
        ],
    );
    let mono = format!("aevalsrc={}:c=mono:s=44100:d=1.5", music(1));
    check(&dir, "mono", &mono, &[]);
    let six = format!("aevalsrc={}:c=5.1:s=48000:d=1.5", music(6));
    check(&dir, "six", &six, &[]);
    check(
        &dir,
        "six24",
        &six,
        &["-sample_fmt", "s32", "-bits_per_raw_sample", "24"],
    );
    check(&dir, "8k", &stereo(8_000, 2.0), &[]);
    check(
        &dir,
        "96k",
        &stereo(96_000, 1.0),
        &["-sample_fmt", "s32", "-bits_per_raw_sample", "24"],
    );
    check(&dir, "22k", &stereo(22_050, 1.0), &[]);
}

#[test]
fn odd_block_sizes() {
    let dir = TempDir::new("flac-blocks");
    let src = stereo(44_100, 1.0);
    for size in ["16", "17", "192", "576", "1153", "4607", "16384", "65535"] {
        check(
            &dir,
            &format!("bs{size}"),
            &src,
            &["-frame_size", size, "-strict", "-2"],
        );
    }
}

#[test]
fn noise_silence_and_a_short_file() {
    let dir = TempDir::new("flac-edge");
    // Full-scale white noise: verbatim subframes and escaped partitions.
    check(&dir, "noise", "anoisesrc=a=1:c=white:d=1.5:r=44100", &[]);
    check(
        &dir,
        "noise24",
        "anoisesrc=a=1:c=pink:d=1:r=48000",
        &["-sample_fmt", "s32", "-bits_per_raw_sample", "24"],
    );
    // Silence: constant subframes.
    check(&dir, "silence", "anullsrc=r=44100:cl=stereo:d=1", &[]);
    // A constant offset and a quiet signal (wasted bits).
    check(&dir, "dc", "aevalsrc=0.25|-0.5:c=stereo:s=44100:d=0.5", &[]);
    check(
        &dir,
        "quiet",
        &format!("aevalsrc=({})*0.001:c=mono:s=44100:d=1", music(1)),
        &[],
    );
    // A file shorter than one block.
    check(&dir, "short", &stereo(44_100, 0.01), &[]);
}

#[test]
fn corrupted_files_give_errors_not_panics() {
    let dir = TempDir::new("flac-corrupt");
    let path = dir.path("clean.flac");
    let src = stereo(44_100, 3.0);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-c:a",
        "flac",
        path.to_str().expect("utf-8"),
    ]);
    let clean = std::fs::read(&path).expect("read");

    // Packets damaged inside, CRCs made valid again: our decoder alone.
    let m = flac_oracle::mutate_packets(&path, 7, 20).expect("mutate");
    assert!(m.packets > 500, "{m:?}");
    assert!(m.errors > 0, "damage went unnoticed: {m:?}");

    // Whole files with bytes flipped, through the decoding front end.
    let mut rng = flac_oracle::Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20 {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.below(50) {
            let at = 42 + rng.below(bytes.len() - 42);
            bytes[at] ^= 1 << rng.below(8);
        }
        let bad = dir.path(&format!("bad{round}.flac"));
        std::fs::write(&bad, &bytes).expect("write");
        let opts = OpenOptions {
            ffmpeg_fallback: false,
            ..OpenOptions::default()
        };
        if let Ok(mut src) = decode::open(&bad, &opts) {
            let mut frames = 0usize;
            while let Ok(Some(chunk)) = src.next_chunk() {
                frames += chunk.len();
            }
            assert!(frames > 0 || src.skipped_packets() > 0);
        }
    }
}
