//! Dimension 19, `pitch_stability`: streaming YIN (de Cheveigné & Kawahara 2002) on the mono
//! mix at 22 050 Hz, as defined in `docs/fingerprint.md`.
//!
//! Frames of 2048 samples at hop 1024 start at sample 0 of each segment (no centring). The
//! difference function is YIN's, over a fixed integration window (the paper's eq. 1):
//! `d(τ) = Σ_{j<W} (x_j − x_{j+τ})²` with `W = 2048 − 341`, the longest window for which every
//! lag read (up to `TAU_MAX + 1 = 341`) stays inside the frame. (Summing over the whole overlap,
//! `N − τ` terms, weighs short and long lags differently; the reference implementation uses the
//! fixed window: with it `pitch_stability` matches it to 6 digits on real music, without it
//! tracks with few voiced frames cross the 10-pair limit the other way.) It is computed from an
//! FFT cross-correlation and prefix sums of squares, in `f64`: near the true period `d(τ)` is a
//! small difference of large energies, and `f32` cancellation would make the local-minimum
//! descent and the interpolation jitter.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealToComplex};

use super::{Extractor, Needs, Output, Summary};
use crate::dsp::stats::median;
use crate::dsp::SR22;

/// YIN frame length in samples.
pub const FRAME: usize = 2048;
/// YIN hop in samples.
pub const FRAME_HOP: usize = 1024;
/// Absolute threshold on the cumulative-mean-normalised difference.
const THRESHOLD: f64 = 0.15;
/// Highest f0 searched, in Hz.
const F0_MAX: f64 = 2093.0;
/// Lowest f0 searched, in Hz.
const F0_MIN: f64 = 65.0;
/// Smallest lag searched: `floor(22050 / 2093)`.
const TAU_MIN: usize = (SR22 as f64 / F0_MAX) as usize;
/// Largest lag searched: `ceil(22050 / 65)`.
const TAU_MAX: usize = {
    let t = SR22 as f64 / F0_MIN;
    let f = t as usize;
    if (f as f64) < t {
        f + 1
    } else {
        f
    }
};
/// Integration window of the difference function: every lag up to TAU_MAX + 1 stays in the frame.
const WINDOW: usize = FRAME - TAU_MAX - 1;
/// FFT size of the cross-correlation of the window (W samples) with the frame (N samples):
/// negative lags −k (k < W) wrap to FFT_LEN − k ≥ FFT_LEN − W + 1 > TAU_MAX + 1, and positive
/// lags stay below N ≤ FFT_LEN, so every lag we read (0..=TAU_MAX + 1) is the linear one.
const FFT_LEN: usize = FRAME;
/// Frame energy threshold of an active frame: RMS above −60 dBFS, i.e. mean square > 1e-6.
const ACTIVE_ENERGY: f64 = 1e-6 * FRAME as f64;
/// Fewer consecutive voiced pairs than this: `pitch_stability` is 0.
const MIN_PAIRS: usize = 10;

const _: () = assert!(FFT_LEN >= FRAME && FFT_LEN - WINDOW + 1 > TAU_MAX + 1);
const _: () = assert!(TAU_MIN >= 2);
const _: () = assert!(TAU_MAX < WINDOW && WINDOW + TAU_MAX < FRAME);

/// Streaming `pitch_stability`: push the 22 050 Hz mono mix in chunks of any size, call
/// [`PitchTracker::end_segment`] at the end of each excerpt, then read [`PitchTracker::finish`].
pub struct PitchTracker {
    fft: Arc<dyn RealToComplex<f64>>,
    ifft: Arc<dyn ComplexToReal<f64>>,
    /// Samples of the current segment not yet consumed by a whole frame (< FRAME after `push`).
    pending: Vec<f32>,
    /// FFT input (the frame, zero padded to FFT_LEN), reused across frames.
    time: Vec<f64>,
    spec: Vec<Complex<f64>>,
    /// The frame's first WINDOW samples, zero padded, and their spectrum.
    time_win: Vec<f64>,
    spec_win: Vec<Complex<f64>>,
    scratch_fwd: Vec<Complex<f64>>,
    scratch_inv: Vec<Complex<f64>>,
    /// Prefix sums of squares of the frame, `P(k) = Σ_{j<k} x_j²`, where the difference
    /// function reads them: `head[τ] = P(τ)` and `tail[τ] = P(W + τ)` for τ ≤ TAU_MAX + 1.
    head: Vec<f64>,
    tail: Vec<f64>,
    /// d′(τ) for τ in 0..=TAU_MAX+1.
    cmnd: Vec<f64>,
    /// f0 of the previous frame of this segment when it was voiced.
    prev_f0: Option<f64>,
    /// |Δ| in cents over consecutive voiced pairs (f32: a few per second of audio).
    deltas: Vec<f32>,
    frames: u64,
    voiced: u64,
}

impl Default for PitchTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl PitchTracker {
    /// A tracker with no audio yet.
    pub fn new() -> Self {
        let fft = crate::dsp::rfft::plan_forward::<f64>(FFT_LEN);
        let ifft = crate::dsp::rfft::plan_inverse::<f64>(FFT_LEN);
        let scratch_fwd = fft.make_scratch_vec();
        let scratch_inv = ifft.make_scratch_vec();
        Self {
            time: fft.make_input_vec(),
            spec: fft.make_output_vec(),
            time_win: fft.make_input_vec(),
            spec_win: fft.make_output_vec(),
            fft,
            ifft,
            pending: Vec::with_capacity(2 * FRAME),
            scratch_fwd,
            scratch_inv,
            head: vec![0.0; TAU_MAX + 2],
            tail: vec![0.0; TAU_MAX + 2],
            cmnd: vec![1.0; TAU_MAX + 2],
            prev_f0: None,
            deltas: Vec::new(),
            frames: 0,
            voiced: 0,
        }
    }

    /// Appends samples of the current segment. Results do not depend on how the audio is cut
    /// into chunks.
    pub fn push(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            // Fill up to exactly one frame, so `pending` stays bounded whatever the chunk size.
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                self.process_frame();
                self.pending.drain(..FRAME_HOP);
            }
        }
    }

    /// The current excerpt ended: its partial frame is dropped and the next sample starts a new
    /// segment (frames restart at its sample 0; no voiced pair spans the boundary).
    pub fn end_segment(&mut self) {
        self.pending.clear();
        self.prev_f0 = None;
    }

    /// `pitch_stability` of everything pushed so far: `1 / (1 + median(Δ)/100)` over consecutive
    /// voiced pairs, 0 with fewer than 10 pairs.
    pub fn finish(&self) -> f64 {
        if self.deltas.len() < MIN_PAIRS {
            return 0.0;
        }
        let mut d = self.deltas.clone();
        let median = median(&mut d).unwrap_or(0.0);
        let v = 1.0 / (1.0 + median / 100.0);
        if v.is_finite() {
            v
        } else {
            0.0
        }
    }

    /// Whole frames analysed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Voiced frames so far.
    pub fn voiced_frames(&self) -> u64 {
        self.voiced
    }

    /// Analyses `pending[..FRAME]` and records the pair with the previous frame.
    fn process_frame(&mut self) {
        self.frames += 1;
        let f0 = self.frame_f0();
        if f0.is_some() {
            self.voiced += 1;
        }
        if let (Some(a), Some(b)) = (self.prev_f0, f0) {
            let cents = (1200.0 * (b / a).log2()).abs();
            if cents.is_finite() {
                self.deltas.push(cents as f32);
            }
        }
        self.prev_f0 = f0;
    }

    /// f0 of the frame in `pending[..FRAME]` when it is voiced and active.
    fn frame_f0(&mut self) -> Option<f64> {
        let frame = &self.pending[..FRAME];
        // Non-finite samples would poison every lag: treat them as silence.
        for (t, &s) in self.time.iter_mut().zip(frame) {
            *t = if s.is_finite() { f64::from(s) } else { 0.0 };
        }
        // The prefix sums P(τ) and P(W + τ) run over 342 samples each, and the 1 365 squares
        // between them are summed in four lanes: a running sum over all 2 048 samples would
        // make each addition wait on the one before.
        const SPAN: usize = TAU_MAX + 1;
        let x = &self.time[..FRAME];
        let mut acc = 0.0f64;
        self.head[0] = 0.0;
        for (h, v) in self.head[1..].iter_mut().zip(&x[..SPAN]) {
            acc += v * v;
            *h = acc;
        }
        let mut lanes = [0f64; 4];
        let middle = x[SPAN..WINDOW].chunks_exact(4);
        let mut rest = 0.0f64;
        for v in middle.remainder() {
            rest += v * v;
        }
        for c in middle {
            for l in 0..4 {
                lanes[l] += c[l] * c[l];
            }
        }
        let mut acc = acc + ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + rest;
        self.tail[0] = acc;
        for (t, v) in self.tail[1..].iter_mut().zip(&x[WINDOW..WINDOW + SPAN]) {
            acc += v * v;
            *t = acc;
        }
        let energy = acc + x[WINDOW + SPAN..].iter().map(|v| v * v).sum::<f64>();
        // `energy` is finite: inputs were sanitised and f32² sums cannot overflow f64.
        if energy <= ACTIVE_ENERGY {
            return None;
        }
        self.time[FRAME..].fill(0.0);
        self.time_win[..WINDOW].copy_from_slice(&self.time[..WINDOW]);
        self.time_win[WINDOW..].fill(0.0);
        // Cross-correlation r(τ) = Σ_{j<W} x_j x_{j+τ} = IFFT(conj(FFT(x[..W]))·FFT(x))(τ) / FFT_LEN.
        self.fft
            .process_with_scratch(&mut self.time, &mut self.spec, &mut self.scratch_fwd)
            .expect("buffers come from the FFT's own plan, so their lengths match");
        self.fft
            .process_with_scratch(
                &mut self.time_win,
                &mut self.spec_win,
                &mut self.scratch_fwd,
            )
            .expect("buffers come from the FFT's own plan, so their lengths match");
        for (c, w) in self.spec.iter_mut().zip(&self.spec_win) {
            *c *= w.conj();
        }
        // The inverse wants real DC and Nyquist bins; they are, up to rounding.
        let last = self.spec.len() - 1;
        self.spec[0].im = 0.0;
        self.spec[last].im = 0.0;
        self.ifft
            .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch_inv)
            .expect("buffers come from the FFT's own plan, and bins 0 and N/2 were made real");
        let scale = 1.0 / FFT_LEN as f64;

        // d(τ) = Σ_{j<W} x_j² + Σ_{τ≤j<τ+W} x_j² − 2 r(τ), and d′ from its running sum.
        // Below this running sum d′ is meaningless (a constant frame, where d is rounding
        // noise): such lags read d′ = 1, i.e. unvoiced, instead of noise/noise.
        let floor = energy * 1e-12;
        let mut cum = 0.0f64;
        self.cmnd[0] = 1.0;
        for tau in 1..=TAU_MAX + 1 {
            let r = self.time[tau] * scale;
            let d = (self.tail[0] + (self.tail[tau] - self.head[tau]) - 2.0 * r).max(0.0);
            cum += d;
            self.cmnd[tau] = if cum > floor * tau as f64 {
                d * tau as f64 / cum
            } else {
                1.0
            };
        }
        let cmnd = &self.cmnd;

        // First lag under the threshold, then down to the local minimum.
        let mut tau = (TAU_MIN..=TAU_MAX).find(|&t| cmnd[t] < THRESHOLD)?;
        while tau < TAU_MAX && cmnd[tau + 1] < cmnd[tau] {
            tau += 1;
        }
        // Parabolic interpolation, only on a convex triple (TAU_MIN ≥ 2 and the d′ array
        // reaches TAU_MAX + 1, so both neighbours exist).
        let (a, b, c) = (cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]);
        let curv = a - 2.0 * b + c;
        let shift = if curv > 0.0 {
            (0.5 * (a - c) / curv).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let f0 = f64::from(SR22) / (tau as f64 + shift);
        f0.is_finite().then_some(f0)
    }
}

impl Extractor for PitchTracker {
    fn name(&self) -> &'static str {
        "pitch"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &["pitch_stability"]
    }

    fn needs(&self) -> Needs {
        Needs {
            mono22: true,
            ..Needs::default()
        }
    }

    fn push_mono22(&mut self, x: &[f32]) {
        self.push(x);
    }

    fn end_segment(&mut self) {
        PitchTracker::end_segment(self);
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        out.set("pitch_stability", PitchTracker::finish(self));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    const SR: f64 = SR22 as f64;

    fn sine(freq: f64, amp: f64, secs: f64) -> Vec<f32> {
        let n = (secs * SR) as usize;
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / SR).sin()) as f32)
            .collect()
    }

    /// xorshift64* with Box–Muller: deterministic Gaussian noise without a dependency.
    fn gaussian_noise(n: usize, sigma: f64, seed: u64) -> Vec<f32> {
        let mut s = seed.max(1);
        let mut uniform = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
            // (0, 1]: never 0, so ln is finite.
            ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let (u1, u2) = (uniform(), uniform());
            let r = (-2.0 * u1.ln()).sqrt();
            out.push((sigma * r * (2.0 * PI * u2).cos()) as f32);
            out.push((sigma * r * (2.0 * PI * u2).sin()) as f32);
        }
        out.truncate(n);
        out
    }

    fn run(samples: &[f32], chunk: usize) -> PitchTracker {
        let mut t = PitchTracker::new();
        for c in samples.chunks(chunk) {
            t.push(c);
        }
        t.end_segment();
        t
    }

    #[test]
    fn difference_function_uses_fixed_window() {
        // d′ from the FFT path equals the direct fixed-window YIN sum.
        let mut x = gaussian_noise(FRAME, 0.1, 7);
        for (i, v) in x.iter_mut().enumerate() {
            *v += (0.3 * (2.0 * PI * 220.0 * i as f64 / SR).sin()) as f32;
        }
        let mut t = PitchTracker::new();
        t.pending.extend_from_slice(&x);
        t.frame_f0();
        let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let mut cum = 0.0;
        for tau in 1..=TAU_MAX + 1 {
            let d: f64 = (0..WINDOW).map(|j| (xs[j] - xs[j + tau]).powi(2)).sum();
            cum += d;
            let want = d * tau as f64 / cum;
            assert!(
                (t.cmnd[tau] - want).abs() < 1e-9,
                "tau {tau}: {} vs {want}",
                t.cmnd[tau]
            );
        }
    }

    #[test]
    fn lag_range() {
        assert_eq!(TAU_MIN, 10);
        assert_eq!(TAU_MAX, 340);
    }

    #[test]
    fn steady_sine_is_stable_and_at_440() {
        let x = sine(440.0, 0.5, 20.0);
        let mut t = PitchTracker::new();
        t.push(&x[..FRAME]);
        let f0 = t.prev_f0.expect("voiced");
        assert!((f0 - 440.0).abs() < 1.0, "f0 {f0}");
        t.push(&x[FRAME..]);
        let v = t.finish();
        println!("steady 440 Hz: f0 {f0:.3} Hz, pitch_stability {v}");
        assert!(v >= 0.95, "pitch_stability {v}");
        assert!(
            t.voiced_frames() + 1 >= t.frames(),
            "{} of {}",
            t.voiced_frames(),
            t.frames()
        );
    }

    #[test]
    fn f0_follows_frequency() {
        for f in [70.0, 110.0, 261.63, 1000.0, 2000.0] {
            let x = sine(f, 0.3, 0.2);
            let mut t = PitchTracker::new();
            t.push(&x[..FRAME]);
            let f0 = t.prev_f0.expect("voiced");
            let cents = (1200.0 * (f0 / f).log2()).abs();
            // Parabolic interpolation on d′ is biased by a few cents at lags near 10.
            assert!(cents < 10.0, "{f} Hz read as {f0}");
        }
    }

    #[test]
    fn white_noise_is_unstable() {
        let x = gaussian_noise(20 * SR22 as usize, 0.1, 0x5eed);
        let t = run(&x, 4096);
        let v = t.finish();
        println!(
            "noise: {} of {} frames voiced, pitch_stability {v}",
            t.voiced_frames(),
            t.frames()
        );
        assert!(v <= 0.1, "pitch_stability {v}");
    }

    #[test]
    fn silence_constant_and_tiny_are_zero() {
        assert_eq!(run(&vec![0.0; 20 * SR22 as usize], 4096).finish(), 0.0);
        // A DC offset has no pitch.
        assert_eq!(run(&vec![0.25; 5 * SR22 as usize], 4096).finish(), 0.0);
        // Below −60 dBFS nothing is active.
        let quiet = sine(440.0, 1e-4, 5.0);
        assert_eq!(run(&quiet, 4096).finish(), 0.0);
        // Subnormals and non-finite values stay finite.
        let mut odd = vec![1e-40f32; 3 * FRAME];
        odd[100] = f32::NAN;
        odd[2000] = f32::INFINITY;
        assert!(run(&odd, 4096).finish().is_finite());
        assert_eq!(PitchTracker::new().finish(), 0.0);
    }

    #[test]
    fn chunk_size_does_not_matter() {
        let mut x = sine(330.0, 0.4, 3.0);
        let noise = gaussian_noise(x.len(), 0.02, 7);
        for (a, b) in x.iter_mut().zip(&noise) {
            *a += b;
        }
        let base = run(&x, 4096);
        for chunk in [1, 333, 2048, 100_000] {
            let t = run(&x, chunk);
            assert_eq!(t.deltas, base.deltas, "chunk {chunk}");
            assert_eq!(t.finish().to_bits(), base.finish().to_bits());
        }
        assert!(base.deltas.len() >= MIN_PAIRS);
    }

    #[test]
    fn glide_is_less_stable_than_steady() {
        // Exponential glide 110 → 880 Hz over 10 s: 3 octaves, ~36 cents per 46 ms frame hop.
        let secs = 10.0;
        let n = (secs * SR) as usize;
        let (f_a, f_b) = (110.0f64, 880.0f64);
        let k = (f_b / f_a).ln() / secs;
        let glide: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / SR;
                let phase = 2.0 * PI * f_a * ((k * t).exp() - 1.0) / k;
                (0.5 * phase.sin()) as f32
            })
            .collect();
        let g = run(&glide, 4096).finish();
        let s = run(&sine(440.0, 0.5, secs), 4096).finish();
        println!("glide {g}, steady {s}");
        assert!(g > 0.0 && g < s - 0.1, "glide {g} steady {s}");
    }

    #[test]
    fn segments_do_not_pair_across_boundaries() {
        let mut t = PitchTracker::new();
        // Many short segments of a single frame each: no pair ever forms.
        let x = sine(440.0, 0.5, 0.1);
        for _ in 0..50 {
            t.push(&x[..FRAME + 10]);
            t.end_segment();
        }
        assert_eq!(t.frames(), 50);
        assert!(t.deltas.is_empty());
        assert_eq!(t.finish(), 0.0);
    }

    /// `cargo test --release -p sonoprint-engine --lib pitch -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing_per_frame() {
        let x = gaussian_noise(240 * SR22 as usize, 0.1, 3);
        let cpu = crate::features::hpss::tests::thread_cpu_secs();
        let start = std::time::Instant::now();
        let t = run(&x, 4096);
        let wall = start.elapsed().as_secs_f64();
        let cpu = crate::features::hpss::tests::thread_cpu_secs()
            .zip(cpu)
            .map(|(b, a)| b - a);
        println!(
            "YIN: {} frames, {:.2} µs/frame CPU ({:.2} wall), result {}",
            t.frames(),
            cpu.unwrap_or(wall) * 1e6 / t.frames() as f64,
            wall * 1e6 / t.frames() as f64,
            t.finish()
        );
    }
}
