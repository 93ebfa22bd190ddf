//! Dimension 18, `harmonic_ratio`: harmonic/percussive separation by median filtering
//! (Fitzgerald 2010), as librosa `decompose.hpss(S, kernel_size=31, power=2.0, mask=False,
//! margin=1.0)` on the magnitude spectrogram, streamed one STFT frame at a time.
//!
//! - Harmonic enhanced `H`: median over 31 frames (time) per bin; percussive enhanced `P`:
//!   median over 31 bins (frequency) per frame. Both with `scipy.ndimage.median_filter`
//!   `mode='reflect'` boundaries (`d c b a | a b c d | d c b a`, repeated with period `2n` when
//!   the line is shorter than the half kernel) at the ends of each segment and of the spectrum.
//! - Soft masks as librosa `util.softmask(X, X_ref, power=2, split_zeros=False)`.
//! - `E_h = Σ (S·mask_h)²`, `E_p = Σ (S·mask_p)²`, accumulated in `f64`.
//!
//! Speed: both medians are sliding sorted windows of 31 values (32 slots with a `+∞` sentinel).
//! One step replaces the leaving value by the entering one: two rank counts, which compile to
//! branch-free SIMD compares over the 32 slots, then a short shift of the values in between.
//! Memory is bounded: a ring of the last 32 frames and one window per bin.

use crate::dsp::N_BINS;

/// Median kernel length, in frames (harmonic) and in bins (percussive).
const KERNEL: usize = 31;
/// Half the kernel: the median index of a sorted window and the context on each side.
const HALF: usize = KERNEL / 2;
/// Slots of a sorted window: the kernel plus a `+∞` sentinel, a multiple of the SIMD width.
const SLOTS: usize = 32;
/// Frames kept: an output frame `t` needs frames `t−15..=t+15`, and the slide also drops `t−16`.
const RING: usize = 32;

const _: () = assert!(KERNEL % 2 == 1 && SLOTS > KERNEL && RING > KERNEL);
const _: () = assert!(N_BINS > KERNEL);

type Window = [f32; SLOTS];
const EMPTY_WINDOW: Window = [f32::INFINITY; SLOTS];

/// Streaming harmonic/percussive energies of a magnitude spectrogram.
pub struct Hpss {
    /// Magnitudes of the last `RING` frames of the segment; frame `j` at slot `j % RING`.
    ring_s: Vec<f32>,
    /// Percussive enhanced spectra (frequency medians) of the same frames.
    ring_p: Vec<f32>,
    /// Per bin, the sorted 31-frame window centred on the next frame to emit.
    windows: Vec<Window>,
    /// Frames pushed in the current segment.
    n: usize,
    /// Frames of the current segment already turned into energy.
    emitted: usize,
    e_h: f64,
    e_p: f64,
}

impl Default for Hpss {
    fn default() -> Self {
        Self::new()
    }
}

impl Hpss {
    /// An accumulator with no frames yet.
    pub fn new() -> Self {
        Self {
            ring_s: vec![0.0; RING * N_BINS],
            ring_p: vec![0.0; RING * N_BINS],
            windows: vec![EMPTY_WINDOW; N_BINS],
            n: 0,
            emitted: 0,
            e_h: 0.0,
            e_p: 0.0,
        }
    }

    /// Appends one magnitude frame (`N_BINS` values) of the current segment. Values past
    /// `N_BINS` are ignored and missing ones read as 0; negative, NaN and infinite values read
    /// as 0 so that every result stays finite.
    pub fn push_frame(&mut self, mag: &[f32]) {
        let slot = self.n % RING;
        let s = &mut self.ring_s[slot * N_BINS..(slot + 1) * N_BINS];
        for (d, &v) in s.iter_mut().zip(mag.iter().chain(std::iter::repeat(&0.0))) {
            // Also maps −0.0 to +0.0, so that `<` and bit patterns agree in the windows.
            *d = if v > 0.0 && v < f32::INFINITY { v } else { 0.0 };
        }
        let p = &mut self.ring_p[slot * N_BINS..(slot + 1) * N_BINS];
        frequency_median(s, p);
        self.n += 1;

        if self.n == HALF + 1 {
            // Frame 0's window is complete: frames −15..=15 reflect onto 0..=15.
            self.init_windows();
            self.emit(0);
        } else if self.n > HALF + 1 {
            let t = self.n - 1 - HALF;
            self.slide(reflect(t as isize - HALF as isize - 1, self.n), self.n - 1);
            self.emit(t);
        }
    }

    /// The current segment ended: emits its last frames with their future context reflected,
    /// and makes the next frame start a new spectrogram.
    pub fn end_segment(&mut self) {
        let n = self.n;
        if n > HALF {
            // Windows are live: keep sliding, entering frames mirrored back from the end.
            for t in self.emitted..n {
                let old = reflect(t as isize - HALF as isize - 1, n);
                let new = reflect((t + HALF) as isize, n);
                self.slide(old, new);
                self.emit(t);
            }
        } else {
            // Too short to have started (at most 15 frames, all still in the ring): reflection
            // wraps around several times, so gather each window directly.
            let mut buf = [0.0f32; KERNEL];
            for t in 0..n {
                for k in 0..N_BINS {
                    for (j, b) in buf.iter_mut().enumerate() {
                        let f = reflect(t as isize + j as isize - HALF as isize, n);
                        *b = self.ring_s[(f % RING) * N_BINS + k];
                    }
                    let (_, m, _) = buf.select_nth_unstable_by(HALF, f32::total_cmp);
                    // `emit` reads the median from the window's middle slot; these windows
                    // are not live, and are rebuilt when a segment reaches 16 frames.
                    self.windows[k][HALF] = *m;
                }
                self.emit(t);
            }
        }
        self.n = 0;
        self.emitted = 0;
    }

    /// `(E_h, E_p)`: energies of the harmonic and percussive components of every frame emitted
    /// so far (call [`Hpss::end_segment`] first to include the last 15 frames of a segment).
    pub fn energies(&self) -> (f64, f64) {
        (self.e_h, self.e_p)
    }

    fn frame(ring: &[f32], j: usize) -> &[f32] {
        let slot = j % RING;
        &ring[slot * N_BINS..(slot + 1) * N_BINS]
    }

    /// Builds frame 0's window of every bin from frames 0..=15 (16 frames are in the ring).
    fn init_windows(&mut self) {
        for (k, w) in self.windows.iter_mut().enumerate() {
            *w = EMPTY_WINDOW;
            for (j, slot) in w.iter_mut().take(KERNEL).enumerate() {
                let f = reflect(j as isize - HALF as isize, HALF + 1);
                *slot = self.ring_s[(f % RING) * N_BINS + k];
            }
            w[..KERNEL].sort_unstable_by(f32::total_cmp);
        }
    }

    /// Moves every bin's window one frame on: frame `old` leaves, frame `new` enters.
    fn slide(&mut self, old: usize, new: usize) {
        let old = Self::frame(&self.ring_s, old);
        let new = Self::frame(&self.ring_s, new);
        for ((w, &o), &v) in self.windows.iter_mut().zip(old).zip(new) {
            replace(w, o, v);
        }
    }

    /// Adds frame `t`'s masked energies; its harmonic medians are the windows' middles.
    fn emit(&mut self, t: usize) {
        let s = Self::frame(&self.ring_s, t);
        let p = Self::frame(&self.ring_p, t);
        // Four partial sums break the f64 add latency chain.
        let mut acc_h = [0.0f64; 4];
        let mut acc_p = [0.0f64; 4];
        for (k, ((&s, &p), w)) in s.iter().zip(p).zip(&self.windows).enumerate() {
            let (mh, mp) = soft_masks(w[HALF], p);
            let ch = f64::from(s * mh);
            let cp = f64::from(s * mp);
            acc_h[k % 4] += ch * ch;
            acc_p[k % 4] += cp * cp;
        }
        self.e_h += acc_h.iter().sum::<f64>();
        self.e_p += acc_p.iter().sum::<f64>();
        self.emitted = t + 1;
    }
}

/// `√E_h / (√E_h + √E_p)`; 0 when both are 0 (silence).
pub fn harmonic_ratio(e_h: f64, e_p: f64) -> f64 {
    let (h, p) = (e_h.max(0.0).sqrt(), e_p.max(0.0).sqrt());
    let r = h / (h + p);
    if r.is_finite() {
        r
    } else {
        0.0
    }
}

/// librosa `util.softmask` with power 2 and `split_zeros=False`, in `f32` as librosa computes
/// it for an `f32` spectrogram: both sides are divided by `Z = max(H, P)` first so the squares
/// cannot overflow or underflow, and where `Z` is below the smallest normal both masks are 0.
#[inline(always)]
fn soft_masks(h: f32, p: f32) -> (f32, f32) {
    let z = h.max(p);
    if z < f32::MIN_POSITIVE {
        return (0.0, 0.0);
    }
    let (hz, pz) = (h / z, p / z);
    let (a, b) = (hz * hz, pz * pz);
    // One of a, b is 1, so the sum is at least 1.
    (a / (a + b), b / (a + b))
}

/// Index of position `i` of a line of `n ≥ 1` values under scipy `mode='reflect'`: symmetric
/// about the half-sample points, periodic with period `2n`.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period) as usize;
    if m < n {
        m
    } else {
        2 * n - 1 - m
    }
}

/// Replaces one copy of `old` by `new` in the sorted window `w` (31 values and a `+∞`
/// sentinel), keeping it sorted. `old` must be in the window.
#[inline(always)]
fn replace(w: &mut Window, old: f32, new: f32) {
    // Ranks by counting: branch-free, and vectorised over the 32 slots.
    let mut p = 0u32;
    let mut q = 0u32;
    for &x in w.iter() {
        p += u32::from(x < old);
        q += u32::from(x < new);
    }
    // p is the index of (the first copy of) `old`; both are ≤ 31: the sentinel is never
    // below a finite value.
    let (p, q) = (p as usize, q as usize);
    if q > p {
        // `new` lands right of `old`: the values in between move one slot left.
        w.copy_within(p + 1..q, p);
        w[q - 1] = new;
    } else {
        // `new` lands at or left of `old`: the values in between move one slot right.
        w.copy_within(q..p, q + 1);
        w[q] = new;
    }
}

/// Percussive enhancement of one frame: the median of 31 bins around each bin, reflected at
/// the lowest and highest bins.
fn frequency_median(s: &[f32], out: &mut [f32]) {
    let n = s.len().min(out.len());
    if n == 0 {
        return;
    }
    let mut w = EMPTY_WINDOW;
    for (j, slot) in w.iter_mut().take(KERNEL).enumerate() {
        *slot = s[reflect(j as isize - HALF as isize, n)];
    }
    w[..KERNEL].sort_unstable_by(f32::total_cmp);
    out[0] = w[HALF];
    for (k, o) in out.iter_mut().enumerate().take(n).skip(1) {
        // Bin k−16 leaves, bin k+15 enters (reflected near the ends).
        let old = if k > HALF { k - HALF - 1 } else { HALF - k };
        let new = reflect((k + HALF) as isize, n);
        replace(&mut w, s[old], s[new]);
        *o = w[HALF];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{HOP, N_FFT, SR22};
    use realfft::RealFftPlanner;
    use std::f64::consts::PI;

    /// scipy `NI_ExtendLine` for `NI_EXTEND_REFLECT`, transcribed pointer for pointer: the
    /// reference does not share `reflect` with the code under test.
    fn extend_reflect(line: &[f32], before: usize, after: usize) -> Vec<f32> {
        let n = line.len() as isize;
        let mut buf = vec![0.0f32; before + line.len() + after];
        let first = before as isize;
        let last = first + n;
        buf[before..before + line.len()].copy_from_slice(line);
        let (mut src, mut dst, mut size) = (first, first - 1, before);
        while size > 0 && src < last {
            buf[dst as usize] = buf[src as usize];
            dst -= 1;
            src += 1;
            size -= 1;
        }
        src = last - 1;
        while size > 0 {
            buf[dst as usize] = buf[src as usize];
            dst -= 1;
            src -= 1;
            size -= 1;
        }
        let (mut src, mut dst, mut size) = (last - 1, last, after);
        while size > 0 && src >= first {
            buf[dst as usize] = buf[src as usize];
            dst += 1;
            src -= 1;
            size -= 1;
        }
        src = first;
        while size > 0 {
            buf[dst as usize] = buf[src as usize];
            dst += 1;
            src += 1;
            size -= 1;
        }
        buf
    }

    /// `scipy.ndimage.median_filter(line, size=31, mode='reflect')`, naively.
    fn median_filter_ref(line: &[f32]) -> Vec<f32> {
        let padded = extend_reflect(line, HALF, HALF);
        (0..line.len())
            .map(|i| {
                let mut w = padded[i..i + KERNEL].to_vec();
                w.sort_by(|a, b| a.partial_cmp(b).unwrap());
                w[HALF]
            })
            .collect()
    }

    /// librosa `hpss(S, kernel_size=31, power=2, mask=False, margin=1)` energies, naively, on
    /// one segment given as `spec[frame][bin]`.
    fn hpss_ref(spec: &[Vec<f32>]) -> (f64, f64) {
        let frames = spec.len();
        let mut harm = vec![vec![0.0f32; N_BINS]; frames];
        for k in 0..N_BINS {
            let line: Vec<f32> = spec.iter().map(|f| f[k]).collect();
            for (t, v) in median_filter_ref(&line).into_iter().enumerate() {
                harm[t][k] = v;
            }
        }
        let perc: Vec<Vec<f32>> = spec.iter().map(|f| median_filter_ref(f)).collect();
        let (mut e_h, mut e_p) = (0.0f64, 0.0f64);
        for t in 0..frames {
            for k in 0..N_BINS {
                let (h, p, s) = (harm[t][k], perc[t][k], spec[t][k]);
                let mut z = h.max(p);
                let bad = z < f32::MIN_POSITIVE;
                if bad {
                    z = 1.0;
                }
                let (mut mh, mut mp) = ((h / z).powi(2), (p / z).powi(2));
                let (gh, gp) = (mh / (mh + mp), mp / (mp + mh));
                (mh, mp) = if bad { (0.0, 0.0) } else { (gh, gp) };
                e_h += f64::from(s * mh).powi(2);
                e_p += f64::from(s * mp).powi(2);
            }
        }
        (e_h, e_p)
    }

    /// xorshift64*, uniform in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Random magnitudes with ties and zeros (coarse levels in some bins), as they stress the
    /// removal of duplicate values from the sorted windows.
    fn random_spec(frames: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng(seed);
        (0..frames)
            .map(|_| {
                (0..N_BINS)
                    .map(|k| {
                        let u = rng.next();
                        match k % 3 {
                            0 => (-u.max(1e-300).ln() * 2.0) as f32,
                            1 => (u * 4.0).floor() as f32,
                            _ => (u * u * 1e-3) as f32,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn run(segments: &[Vec<Vec<f32>>]) -> (f64, f64) {
        let mut h = Hpss::new();
        for seg in segments {
            for f in seg {
                h.push_frame(f);
            }
            h.end_segment();
        }
        h.energies()
    }

    fn assert_close(got: (f64, f64), want: (f64, f64), what: &str) {
        for (g, w) in [(got.0, want.0), (got.1, want.1)] {
            let tol = 1e-6 * w.abs().max(1e-300);
            assert!((g - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn reflect_matches_scipy_extension() {
        for n in 1..40 {
            let line: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let padded = extend_reflect(&line, 70, 70);
            for (j, &v) in padded.iter().enumerate() {
                let i = j as isize - 70;
                assert_eq!(reflect(i, n) as f32, v, "n {n} i {i}");
            }
        }
    }

    #[test]
    fn frequency_median_matches_reference() {
        for f in random_spec(4, 11) {
            let mut out = vec![0.0; N_BINS];
            frequency_median(&f, &mut out);
            assert_eq!(out, median_filter_ref(&f));
        }
    }

    #[test]
    fn matches_reference_on_random_spectrograms() {
        for (frames, seed) in [(50, 1), (3, 2), (1, 3), (15, 4), (16, 5), (17, 6), (31, 7)] {
            let spec = random_spec(frames, seed);
            assert_close(
                run(std::slice::from_ref(&spec)),
                hpss_ref(&spec),
                &format!("{frames} frames"),
            );
        }
        for frames in [2, 32, 33, 47, 64] {
            let spec = random_spec(frames, 100 + frames as u64);
            assert_close(
                run(std::slice::from_ref(&spec)),
                hpss_ref(&spec),
                &format!("{frames} frames"),
            );
        }
    }

    #[test]
    fn segments_are_independent_spectrograms() {
        let segs = [random_spec(50, 21), random_spec(3, 22), random_spec(1, 23)];
        let mut want = (0.0, 0.0);
        for s in &segs {
            let (h, p) = hpss_ref(s);
            want = (want.0 + h, want.1 + p);
        }
        assert_close(run(&segs), want, "three segments");
        // An empty segment changes nothing.
        let mut h = Hpss::new();
        h.end_segment();
        h.end_segment();
        assert_eq!(h.energies(), (0.0, 0.0));
    }

    #[test]
    fn degenerate_inputs_stay_finite() {
        let zeros = vec![vec![0.0f32; N_BINS]; 40];
        let (h, p) = run(&[zeros]);
        assert_eq!((h, p), (0.0, 0.0));
        assert_eq!(harmonic_ratio(h, p), 0.0);

        // A constant spectrogram: H = P everywhere, each mask is 1/2.
        let ones = vec![vec![1.0f32; N_BINS]; 40];
        let (h, p) = run(&[ones]);
        assert!((harmonic_ratio(h, p) - 0.5).abs() < 1e-12);

        // Subnormal magnitudes (Z below the smallest normal): masks 0, not NaN.
        let tiny = vec![vec![1e-40f32; N_BINS]; 20];
        let (h, p) = run(&[tiny]);
        assert!(h.is_finite() && p.is_finite());
        assert_eq!(harmonic_ratio(h, p), 0.0);

        // Garbage and wrong lengths do not panic and give finite energies.
        let mut hp = Hpss::new();
        let mut odd = vec![f32::NAN; N_BINS];
        odd[3] = f32::INFINITY;
        odd[4] = -1.0;
        odd[5] = f32::MAX;
        for _ in 0..20 {
            hp.push_frame(&odd);
            hp.push_frame(&[1.0; 10]);
            hp.push_frame(&[2.0; 2 * N_BINS]);
        }
        hp.end_segment();
        let (h, p) = hp.energies();
        assert!(h.is_finite() && p.is_finite());
        assert!(harmonic_ratio(h, p).is_finite());
    }

    #[test]
    fn ratio_formula() {
        assert_eq!(harmonic_ratio(0.0, 0.0), 0.0);
        assert_eq!(harmonic_ratio(4.0, 0.0), 1.0);
        assert_eq!(harmonic_ratio(0.0, 4.0), 0.0);
        assert!((harmonic_ratio(4.0, 1.0) - 2.0 / 3.0).abs() < 1e-15);
    }

    /// librosa-style STFT magnitudes: periodic Hann, centred with `N_FFT/2` zeros each side.
    fn stft_mag(x: &[f32]) -> Vec<Vec<f32>> {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let window: Vec<f32> = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let mut padded = vec![0.0f32; x.len() + N_FFT];
        padded[N_FFT / 2..N_FFT / 2 + x.len()].copy_from_slice(x);
        let frames = 1 + x.len() / HOP;
        let mut input = fft.make_input_vec();
        let mut out = fft.make_output_vec();
        (0..frames)
            .map(|t| {
                for (i, v) in input.iter_mut().enumerate() {
                    *v = padded[t * HOP + i] * window[i];
                }
                fft.process(&mut input, &mut out).unwrap();
                out.iter().map(|c| c.norm()).collect()
            })
            .collect()
    }

    fn ratio_of(x: &[f32]) -> f64 {
        let (h, p) = run(&[stft_mag(x)]);
        harmonic_ratio(h, p)
    }

    const SR: f64 = SR22 as f64;

    #[test]
    fn steady_sine_is_harmonic() {
        let x: Vec<f32> = (0..20 * SR22 as usize)
            .map(|i| (0.5 * (2.0 * PI * 440.0 * i as f64 / SR).sin()) as f32)
            .collect();
        let r = ratio_of(&x);
        println!("440 Hz sine: harmonic_ratio {r}");
        assert!(r >= 0.95, "harmonic_ratio {r}");
    }

    #[test]
    fn click_train_is_percussive() {
        // 50 ms bursts 0.8·sin(2π·1000t)·e^(−40t) at 120 BPM.
        let mut x = vec![0.0f32; 20 * SR22 as usize];
        let period = (0.5 * SR) as usize;
        let burst = (0.05 * SR) as usize;
        for start in (0..x.len()).step_by(period) {
            for i in 0..burst.min(x.len() - start) {
                let t = i as f64 / SR;
                x[start + i] = (0.8 * (2.0 * PI * 1000.0 * t).sin() * (-40.0 * t).exp()) as f32;
            }
        }
        let r = ratio_of(&x);
        println!("120 BPM clicks: harmonic_ratio {r}");
        assert!(r <= 0.05, "harmonic_ratio {r}");
    }

    #[test]
    fn white_noise_is_balanced() {
        let mut rng = Rng(0x5eed);
        let mut x = Vec::with_capacity(20 * SR22 as usize);
        while x.len() < 20 * SR22 as usize {
            let (u1, u2) = (1.0 - rng.next(), rng.next());
            let r = (-2.0 * u1.ln()).sqrt();
            x.push((0.1 * r * (2.0 * PI * u2).cos()) as f32);
            x.push((0.1 * r * (2.0 * PI * u2).sin()) as f32);
        }
        let r = ratio_of(&x);
        println!("white noise: harmonic_ratio {r}");
        assert!((r - 0.5).abs() <= 0.05, "harmonic_ratio {r}");
    }

    /// `cargo test --release -p sonoprint-engine --lib hpss -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing_per_frame() {
        // Four minutes of frames; random magnitudes are the slow case for the sorted windows.
        let pool = random_spec(64, 99);
        let frames = 10_336;
        let mut h = Hpss::new();
        let start = std::time::Instant::now();
        for t in 0..frames {
            h.push_frame(&pool[(t * 7) % pool.len()]);
        }
        h.end_segment();
        let el = start.elapsed();
        let (e_h, e_p) = h.energies();
        println!(
            "HPSS: {frames} frames in {:.3} s = {:.2} µs/frame (ratio {})",
            el.as_secs_f64(),
            el.as_secs_f64() * 1e6 / frames as f64,
            harmonic_ratio(e_h, e_p)
        );
    }
}
