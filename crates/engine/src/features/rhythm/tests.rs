//! Tests of the rhythm algorithms against librosa's behaviour.

use super::onset::*;
use super::onsets::*;
use super::*;
use crate::dsp::mel::MelFilterbank;
use crate::dsp::{N_BINS, N_FFT};
use realfft::RealFftPlanner;

/// librosa-style STFT power frames: periodic Hann 2048, centred with 1024 zeros on each
/// side, hop 512.
fn power_frames(y: &[f32]) -> Vec<Vec<f32>> {
    let pad = N_FFT / 2;
    let mut padded = vec![0.0f64; y.len() + 2 * pad];
    for (p, &v) in padded[pad..].iter_mut().zip(y) {
        *p = f64::from(v);
    }
    let window = crate::dsp::hann(N_FFT);
    let n_frames = 1 + y.len() / HOP;
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(N_FFT);
    let mut buf = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    (0..n_frames)
        .map(|t| {
            let frame = &padded[t * HOP..t * HOP + N_FFT];
            for ((b, &v), &w) in buf.iter_mut().zip(frame).zip(&window) {
                *b = v * w;
            }
            fft.process(&mut buf, &mut spec).unwrap();
            spec.iter().map(|c| c.norm_sqr() as f32).collect()
        })
        .collect()
}

fn envelope(y: &[f32]) -> Vec<f32> {
    let mut oe = OnsetEnvelope::new();
    for f in power_frames(y) {
        assert_eq!(f.len(), N_BINS);
        oe.push_power_frame(&f);
    }
    oe.finish()
}

/// 50 ms bursts `0.8·sin(2π·1000t)·e^(−40t)` starting at the given times, at 22050 Hz.
fn clicks_at(times: &[f64], seconds: f64) -> Vec<f32> {
    let sr = f64::from(SR22);
    let mut y = vec![0.0f32; (seconds * sr) as usize];
    let burst = (0.05 * sr) as usize;
    for &t0 in times {
        let s0 = (t0 * sr).round().max(0.0) as usize;
        for j in 0..burst {
            let t = j as f64 / sr;
            if let Some(s) = y.get_mut(s0 + j) {
                *s += (0.8 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() * (-40.0 * t).exp())
                    as f32;
            }
        }
    }
    y
}

fn click_times(bpm: f64, seconds: f64) -> Vec<f64> {
    let period = 60.0 / bpm;
    (0..)
        .map(|k| k as f64 * period)
        .take_while(|&t| t < seconds)
        .collect()
}

/// xorshift64*: a fixed-seed generator, uniform in [0, 1).
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn analyse(y: &[f32]) -> ExcerptRhythm {
    analyze_envelope(&envelope(y))
}

#[test]
fn click_tracks_tempo_and_stability() {
    // Reference (librosa 0.11): 89.1, 117.5, 152.0.
    for &(bpm, reference) in &[(90.0, 89.1), (120.0, 117.5), (150.0, 152.0)] {
        let r = analyse(&clicks_at(&click_times(bpm, 20.0), 20.0));
        eprintln!("{bpm} BPM clicks: {r:?}");
        assert!(
            (r.tempo_bpm - bpm).abs() <= 0.03 * bpm,
            "{bpm}: tempo {}",
            r.tempo_bpm
        );
        assert!(
            (r.tempo_bpm - reference).abs() < 0.1,
            "{bpm}: {}",
            r.tempo_bpm
        );
        assert!(r.stability >= 0.97, "{bpm}: stability {}", r.stability);
        // One onset per click, roughly.
        let n_clicks = click_times(bpm, 20.0).len();
        assert!(
            r.onsets.abs_diff(n_clicks) <= 2,
            "{bpm}: {} onsets",
            r.onsets
        );
        assert!(r.beats.abs_diff(n_clicks) <= 3, "{bpm}: {} beats", r.beats);
    }
}

#[test]
fn jitter_lowers_stability() {
    let clean = analyse(&clicks_at(&click_times(120.0, 20.0), 20.0));
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let jittered: Vec<f64> = click_times(120.0, 20.0)
        .into_iter()
        .map(|t| (t + (rng.next_f64() * 2.0 - 1.0) * 0.040).max(0.0))
        .collect();
    let jit = analyse(&clicks_at(&jittered, 20.0));
    eprintln!("clean {clean:?}\njitter {jit:?}");
    assert!(
        jit.stability <= clean.stability - 0.02,
        "clean {} jitter {}",
        clean.stability,
        jit.stability
    );
    assert!(jit.stability > 0.5);
}

#[test]
fn silence_has_no_rhythm() {
    let y = vec![0.0f32; 20 * SR22 as usize];
    let env = envelope(&y);
    assert_eq!(env.len(), 1 + y.len() / HOP);
    assert!(env.iter().all(|&v| v == 0.0));
    let r = analyze_envelope(&env);
    assert_eq!(
        r,
        ExcerptRhythm {
            tempo_bpm: 0.0,
            beats: 0,
            stability: 0.0,
            onsets: 0
        }
    );
    assert_eq!(combine(&[r], 20.0), (0.0, 0.0, 0.0));
}

#[test]
fn white_noise_is_finite() {
    let mut rng = Rng(42);
    let y: Vec<f32> = (0..20 * SR22 as usize)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32 * 0.5)
        .collect();
    let env = envelope(&y);
    assert!(env.iter().all(|v| v.is_finite() && *v >= 0.0));
    let r = analyze_envelope(&env);
    eprintln!("noise: {r:?}");
    assert!(r.tempo_bpm.is_finite() && r.stability.is_finite());
    assert!(r.tempo_bpm == 0.0 || (40.0..320.0).contains(&r.tempo_bpm));
    assert!((0.0..=1.0).contains(&r.stability));
}

#[test]
fn degenerate_envelopes_are_finite() {
    let cases: Vec<Vec<f32>> = vec![
        vec![],
        vec![1.0],
        vec![0.0, 5.0],
        vec![3.0; 500],
        vec![1e-30; 500],
        (0..500)
            .map(|i| if i == 250 { 1e-38 } else { 0.0 })
            .collect(),
        (0..500)
            .map(|i| match i % 3 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                _ => 1.0,
            })
            .collect(),
    ];
    for env in &cases {
        let r = analyze_envelope(env);
        assert!(r.tempo_bpm.is_finite() && r.stability.is_finite(), "{r:?}");
    }
    // Degenerate power frames.
    let mut oe = OnsetEnvelope::new();
    for k in 0..10 {
        let v = match k % 4 {
            0 => 0.0,
            1 => f32::INFINITY,
            2 => f32::NAN,
            _ => 1e-30,
        };
        oe.push_power_frame(&vec![v; N_BINS]);
    }
    oe.push_power_frame(&[]);
    let env = oe.finish();
    assert_eq!(env.len(), 11);
    assert!(env.iter().all(|v| v.is_finite()));
    assert_eq!(OnsetEnvelope::new().finish(), Vec::<f32>::new());
}

#[test]
fn envelope_layout_matches_librosa() {
    // A step from silence to a flat spectrum at frame 5. The difference between frames 4
    // and 5 is difference 4; with the 3 leading frames (lag 1 + n_fft/(2·hop)) it lands
    // at index 7. Silence sits at the top_db floor, so band m rises by
    // 80 − (max_db − db_m) dB, db_m = 10·log10(Σ_k weight(m, k)).
    let mut oe = OnsetEnvelope::new();
    for t in 0..10 {
        let v = if t >= 5 { 1.0 } else { 0.0 };
        oe.push_power_frame(&vec![v; N_BINS]);
    }
    let env = oe.finish();
    assert_eq!(env.len(), 10);
    let fb = MelFilterbank::new(SR22, N_FFT, N_MELS);
    let db: Vec<f64> = (0..N_MELS)
        .map(|m| {
            let s: f64 = (0..N_BINS).map(|k| f64::from(fb.weight(m, k))).sum();
            10.0 * s.log10()
        })
        .collect();
    let max_db = db.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let want = db.iter().map(|d| 80.0 - (max_db - d)).sum::<f64>() / N_MELS as f64;
    for (i, &v) in env.iter().enumerate() {
        if i == 7 {
            assert!((f64::from(v) - want).abs() < 1e-3, "{v} vs {want}");
        } else {
            assert_eq!(v, 0.0, "index {i}");
        }
    }
}

#[test]
fn long_input_is_blocked_and_nearly_exact() {
    // 10 000 frames of a click pattern: exact for the first block, finite throughout.
    let y = clicks_at(&click_times(120.0, 120.0), 120.0);
    let frames = power_frames(&y);
    let mut oe = OnsetEnvelope::new();
    for f in &frames {
        oe.push_power_frame(f);
    }
    let env = oe.finish();
    assert_eq!(env.len(), frames.len());
    let mut short = OnsetEnvelope::new();
    for f in &frames[..MAX_BUFFERED_FRAMES] {
        short.push_power_frame(f);
    }
    let short = short.finish();
    // The first block is differenced with the floor of its own maximum either way.
    assert_eq!(&env[..MAX_BUFFERED_FRAMES], &short[..]);
    let r = analyze_envelope(&env);
    assert!((r.tempo_bpm - 117.45).abs() < 0.1, "{r:?}");
}

#[test]
fn combine_rules() {
    let e = |tempo_bpm, beats, stability, onsets| ExcerptRhythm {
        tempo_bpm,
        beats,
        stability,
        onsets,
    };
    let (t, s, d) = combine(&[e(120.0, 40, 0.9, 40)], 20.0);
    assert_eq!((t, s), (120.0, 0.9));
    assert!((d - 0.2).abs() < 1e-12);
    let (t, s, d) = combine(
        &[
            e(100.0, 10, 1.0, 100),
            e(130.0, 30, 0.5, 200),
            e(90.0, 0, 0.0, 0),
        ],
        90.0,
    );
    assert_eq!(t, 100.0);
    assert!((s - (10.0 + 15.0) / 40.0).abs() < 1e-12);
    assert!((d - 300.0 / 90.0 / 10.0).abs() < 1e-12);
    // Even count: mean of the middle two; density clipped to 1.
    let (t, _, d) = combine(&[e(100.0, 4, 1.0, 1000), e(120.0, 4, 1.0, 0)], 10.0);
    assert_eq!((t, d), (110.0, 1.0));
    assert_eq!(combine(&[], 0.0), (0.0, 0.0, 0.0));
}

#[test]
fn peak_pick_edges() {
    // A single isolated peak in the middle; the shifted ramp has no peak.
    let mut x = vec![0.0f64; 50];
    x[25] = 1.0;
    assert_eq!(count_onsets(&x), 1);
    // Peaks on consecutive frames: `wait` keeps only the first.
    x[26] = 1.0;
    assert_eq!(count_onsets(&x), 1);
    // A peak at frame 0 counts (window truncated at the start).
    let mut y = vec![0.0f64; 50];
    y[0] = 1.0;
    assert_eq!(count_onsets(&y), 1);
    assert_eq!(count_onsets(&[]), 0);
    assert_eq!(count_onsets(&[2.0; 10]), 0);
}

#[test]
fn round_ties_even_matches_numpy() {
    // The beat tracker rounds frames per beat as numpy does: halves to the even neighbour.
    assert_eq!(f64::round_ties_even(21.5), 22.0);
    assert_eq!(f64::round_ties_even(14.5), 14.0);
    assert_eq!(f64::round_ties_even(0.5), 0.0);
    assert_eq!(f64::round_ties_even(2.4), 2.0);
    assert_eq!(f64::round_ties_even(2.6), 3.0);
}
