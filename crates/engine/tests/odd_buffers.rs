//! The analysis of short odd buffers, the cases the `analyze_pcm` fuzz target derives from its
//! input (fuzz/README.md): each ends at once with a fingerprint or a classified error.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::time::{Duration, Instant};

use sonoprint_engine::{analyze_pcm, Analysis, AnalysisError, ErrorClass, Mode};

fn timed(samples: Vec<f32>, rate: u32, ch: usize) -> Result<Analysis, AnalysisError> {
    let t = Instant::now();
    let r = analyze_pcm(samples, rate, ch, Mode::Full);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "{rate} Hz took {:?}",
        t.elapsed()
    );
    if let Ok(a) = &r {
        assert!(a.fingerprint.first_non_finite().is_none());
    }
    r
}

fn noise(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

#[test]
fn sample_rates_outside_1_khz_to_1536_khz_are_refused_at_once() {
    // The earlier (lost) campaign found the resampler stuck at a stated rate of 1 Hz; today's
    // resampler returns, with a meaningless fingerprint (4 samples analysed as 4 s of music).
    // Such rates are a damaged header: refused at once with a clear error (without the check
    // this test fails: 1 Hz gives a fingerprint).
    for rate in [1, 7, 999, 1_536_001, u32::MAX] {
        let e = timed(noise(4 * rate.min(10_000) as usize), rate, 1).unwrap_err();
        assert_eq!(e.class, ErrorClass::UnsupportedCodec, "{rate} Hz: {e}");
        assert!(e.message.contains("sample rate"), "{e}");
    }
    for rate in [1_000, 384_000] {
        timed(noise(rate as usize * 3 / 2), rate, 1).unwrap();
    }
}

#[test]
fn samples_near_f32_max_do_not_crash_the_resampler() {
    // Found by the analyze_pcm fuzz target (fuzz/README.md; its input derived 7 channels at
    // 11 025 Hz of raw f32 bytes): finite samples near f32::MAX overflowed to infinity in the
    // mono mix and the FFT resampler, and rubato panicked ("Imaginary part of first value was
    // non-zero"). Magnitudes beyond +60 dBFS are now clamped.
    let n = 11_025 * 3 / 2 * 7;
    let x: Vec<f32> = (0..n)
        .map(|i| match i % 5 {
            0 => 3.0e38,
            1 => -3.3e38,
            2 => 1.0e30,
            _ => 0.1,
        })
        .collect();
    timed(x, 11_025, 7).unwrap();
}

#[test]
fn odd_signals_give_a_fingerprint_or_a_classified_error() {
    let rate = 22_050;
    let n = rate * 3 / 2;
    // NaN and infinities read as silence; denormals; a full-scale square; a single impulse.
    let nan: Vec<f32> = (0..n)
        .map(|i| [f32::NAN, f32::INFINITY, 0.25, f32::NEG_INFINITY][i % 4])
        .collect();
    let denormal: Vec<f32> = (0..n).map(|i| f32::from_bits(1 + (i as u32 % 7))).collect();
    let square: Vec<f32> = (0..2 * n)
        .map(|i| if (i / 2 / 50) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut impulse = vec![0.0; n];
    impulse[n / 2] = 1.0;
    timed(nan, rate as u32, 1).unwrap();
    timed(denormal, rate as u32, 1).unwrap();
    timed(square, rate as u32, 2).unwrap();
    timed(impulse, rate as u32, 1).unwrap();
    timed(noise(8 * n), rate as u32, 8).unwrap();
    let one = timed(vec![0.5], 44_100, 1).unwrap_err();
    assert_eq!(one.class, ErrorClass::TooShort, "{one}");
}
