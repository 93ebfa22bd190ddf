//! sonoprint's ALAC decoder (`decode::alac`) against symphonia's own, kept as the oracle: ALAC
//! files made here with ffmpeg at varied settings decode to the same samples, packet for packet,
//! with the same `AudioSpec`; a damaged file gives errors, not panics.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;

use std::path::Path;

use common::{ffmpeg, write_sine_wav, Noise, TempDir, WavFormat};
use sonoprint_engine::decode::alac::oracle::{compare_file, decode_alone};

/// Encodes `input_args` (an ffmpeg input) to ALAC in .m4a with `codec_args` at `name`.
fn alac(dir: &TempDir, name: &str, input_args: &[&str], codec_args: &[&str]) -> std::path::PathBuf {
    let out = dir.path(name);
    let mut args: Vec<&str> = input_args.to_vec();
    args.extend_from_slice(&["-c:a", "alac"]);
    args.extend_from_slice(codec_args);
    args.push(out.to_str().expect("utf-8 temp path"));
    ffmpeg(&args);
    out
}

fn assert_same(path: &Path, min_frames: u64) {
    let c = compare_file(path)
        .expect("readable")
        .expect("an ALAC track");
    assert_eq!(
        c.mismatches,
        0,
        "{}: {:?}",
        path.display(),
        c.first_mismatch
    );
    assert_eq!(c.both_failed, 0, "{}: packets failed", path.display());
    assert!(
        c.frames >= min_frames,
        "{}: {} frames decoded, expected at least {min_frames}",
        path.display(),
        c.frames
    );
}

fn lavfi(src: &str) -> Vec<&str> {
    vec!["-f", "lavfi", "-i", src]
}

#[test]
fn sixteen_bit_stereo_mono_and_six_channels() {
    let dir = TempDir::new("alac-16");
    let stereo =
        "aevalsrc=0.5*sin(2*PI*440*t)|0.3*sin(2*PI*660*t)+0.1*sin(2*PI*97*t):c=stereo:s=44100:d=3";
    let p = alac(&dir, "stereo.m4a", &lavfi(stereo), &["-sample_fmt", "s16p"]);
    assert_same(&p, 3 * 44100);
    let mono = "aevalsrc=0.7*sin(2*PI*300*t*(1+t)):s=48000:d=2";
    let p = alac(&dir, "mono.m4a", &lavfi(mono), &["-sample_fmt", "s16p"]);
    assert_same(&p, 2 * 48000);
    // 5.1: three elements (SCE, CPE, CPE, SCE for the LFE) mapped to symphonia's order.
    let six = "aevalsrc=0.5*sin(2*PI*220*t)|0.4*sin(2*PI*330*t)|0.3*sin(2*PI*440*t)|0.2*sin(2*PI*55*t)|0.5*sin(2*PI*550*t)|0.6*sin(2*PI*660*t):c=5.1:s=48000:d=1.5";
    let p = alac(&dir, "six.m4a", &lavfi(six), &["-sample_fmt", "s16p"]);
    assert_same(&p, 72000);
}

#[test]
fn twenty_four_bit_from_a_wav_and_from_noise() {
    let dir = TempDir::new("alac-24");
    let wav = dir.path("sine24.wav");
    write_sine_wav(&wav, WavFormat::Int24, 96000, 2, 1.5, 1234.5, 0.9);
    let w = wav.to_str().expect("utf-8 temp path");
    let p = alac(&dir, "sine24.m4a", &["-i", w], &["-sample_fmt", "s32p"]);
    assert_same(&p, 144000);
    // Full-scale white noise: escape codes, and frames sent uncompressed.
    let noise = "anoisesrc=d=1.5:c=white:a=1:r=44100:seed=7";
    let p = alac(&dir, "noise24.m4a", &lavfi(noise), &["-sample_fmt", "s32p"]);
    assert_same(&p, 66150);
    let p = alac(
        &dir,
        "noise16.m4a",
        &lavfi(noise),
        &["-sample_fmt", "s16p", "-ac", "2"],
    );
    assert_same(&p, 66150);
    // Quieter pink noise in 24 bits: compressed frames with the low bits sent apart (shift).
    let pink = "anoisesrc=d=1.5:c=pink:a=0.05:r=48000:seed=3";
    let p = alac(
        &dir,
        "pink24.m4a",
        &lavfi(pink),
        &["-sample_fmt", "s32p", "-ac", "2"],
    );
    assert_same(&p, 72000);
}

#[test]
fn prediction_orders_from_1_to_30() {
    let dir = TempDir::new("alac-orders");
    let src = "aevalsrc=0.4*sin(2*PI*440*t)+0.2*sin(2*PI*3000*t)+0.05*random(0)|0.6*sin(2*PI*200*t):c=stereo:s=44100:d=1";
    for (lo, hi) in [
        ("1", "1"),
        ("2", "3"),
        ("4", "4"),
        ("8", "8"),
        ("5", "12"),
        ("16", "16"),
        ("30", "30"),
    ] {
        let name = format!("order-{lo}-{hi}.m4a");
        let p = alac(
            &dir,
            &name,
            &lavfi(src),
            &[
                "-sample_fmt",
                "s16p",
                "-min_prediction_order",
                lo,
                "-max_prediction_order",
                hi,
            ],
        );
        assert_same(&p, 44100);
    }
}

#[test]
fn silence_and_a_short_file() {
    let dir = TempDir::new("alac-edge");
    // Digital silence: the zero runs of the residual coder.
    let p = alac(
        &dir,
        "silence.m4a",
        &lavfi("anullsrc=r=44100:cl=stereo:d=2"),
        &["-sample_fmt", "s16p"],
    );
    assert_same(&p, 88200);
    // Silence with rare clicks: long zero runs broken by single samples.
    let clicks = "aevalsrc=if(lt(mod(n\\,5000)\\,1)\\,0.5\\,0):s=44100:d=1";
    let p = alac(&dir, "clicks.m4a", &lavfi(clicks), &["-sample_fmt", "s16p"]);
    assert_same(&p, 44100);
    // 1000 samples: a single partial frame.
    let short = "aevalsrc=0.5*sin(2*PI*440*t):s=44100:d=0.0227";
    let p = alac(&dir, "short.m4a", &lavfi(short), &["-sample_fmt", "s16p"]);
    assert_same(&p, 1000);
}

#[test]
fn a_damaged_file_gives_errors_not_panics() {
    let dir = TempDir::new("alac-damaged");
    let src = "aevalsrc=0.5*sin(2*PI*440*t)+0.1*random(0)|0.3*sin(2*PI*660*t):c=stereo:s=44100:d=4";
    // `faststart`: the sample tables before the audio data, out of reach of the damage below.
    let p = alac(
        &dir,
        "good.m4a",
        &lavfi(src),
        &["-sample_fmt", "s16p", "-movflags", "+faststart"],
    );
    let good = std::fs::read(&p).expect("read");
    let mut noise = Noise::new(99);
    let mut total_failed = 0;
    for round in 0..40u64 {
        let mut bad = good.clone();
        // Flip bytes in the second half of the file (the audio data; the tables stay readable).
        let mut r = [0u8; 64];
        noise.fill(&mut r);
        let half = bad.len() / 2;
        for pair in r.chunks_exact(4) {
            let at = half
                + (u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]) as usize)
                    % (bad.len() - half);
            bad[at] ^= 0xff;
        }
        // Some rounds cut the file short too.
        if round % 4 == 3 {
            bad.truncate(bad.len() - bad.len() / 10);
        }
        let path = dir.path(&format!("bad-{round}.m4a"));
        std::fs::write(&path, &bad).expect("write");
        let a = decode_alone(&path, true)
            .expect("the container still opens")
            .expect("an ALAC track");
        // (symphonia's MP4 reader gives no packet at all from a file cut inside its `mdat`.)
        if round % 4 != 3 {
            assert!(a.packets > 0, "round {round}: {a:?}");
        }
        total_failed += a.failed;
        // Through the analysis path too: decode to the end, errors counted, never a panic.
        let _ = sonoprint_engine::decode::open(&path, &Default::default())
            .map(|mut s| while let Ok(Some(_)) = s.next_chunk() {});
    }
    assert!(
        total_failed > 0,
        "flipped bytes in the audio data went unnoticed"
    );
}
