//! Forward real-to-complex FFT of even length: realfft's algorithm with its last pass on AVX
//! vectors.
//!
//! realfft computes the spectrum of `n` real samples as a complex FFT of `n / 2` points (from
//! rustfft) followed by a pass that untangles the even and odd samples' spectra with one
//! twiddle factor per bin. rustfft's FFT is vectorised; realfft's pass is a scalar loop, and it
//! was 7-10 % of a full-mode analysis (`perf`; the STFT, the Welch spectra, the resampler and
//! YIN all go through it). [`RealFft`] plans the same rustfft FFT and computes the same pass with
//! the same IEEE operations per bin, eight (`f32`) or four (`f64`) bins at a time, so its output
//! is bit for bit realfft's: the tests hold it to realfft (kept as the oracle) on every path.
//! It implements realfft's [`RealToComplex`] trait, so the callers' code is the same.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{FftError, FftNum, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// A forward FFT of `len` (even) real samples into `len / 2 + 1` bins.
pub struct RealFft<T: Untangle> {
    len: usize,
    fft: Arc<dyn Fft<T>>,
    /// `exp(-2 pi i k / len) / 2` for `k` in `1..len / 4` (rounded up), as realfft computes it.
    twiddles: Vec<Complex<T>>,
    scratch_len: usize,
}

impl<T: Untangle> RealFft<T> {
    /// Plans the FFT of `len` real samples. `len` must be even and non-zero (a constant of the
    /// caller's in every use).
    pub fn new(len: usize) -> Self {
        assert!(
            len > 0 && len.is_multiple_of(2),
            "RealFft needs an even, non-zero length, got {len}"
        );
        let twiddle_count = len / 4 + usize::from(!len.is_multiple_of(4));
        let half = T::from_f64(0.5).unwrap_or_else(T::zero);
        let twiddles = (1..twiddle_count)
            .map(|k| {
                // realfft's `compute_twiddle`: the angle in f64, then converted.
                let angle = -2f64 * std::f64::consts::PI / len as f64 * k as f64;
                let c = Complex {
                    re: T::from_f64(angle.cos()).unwrap_or_else(T::zero),
                    im: T::from_f64(angle.sin()).unwrap_or_else(T::zero),
                };
                c * half
            })
            .collect();
        let fft = FftPlanner::<T>::new().plan_fft_forward(len / 2);
        let scratch_len = fft.get_outofplace_scratch_len();
        RealFft {
            len,
            fft,
            twiddles,
            scratch_len,
        }
    }
}

/// The forward FFT of `len` real samples behind realfft's trait: ours for an even `len`,
/// realfft's own for an odd one (a different algorithm, not on any hot path).
pub fn plan_forward<T: Untangle>(len: usize) -> Arc<dyn RealToComplex<T>> {
    if len > 0 && len.is_multiple_of(2) {
        Arc::new(RealFft::<T>::new(len))
    } else {
        realfft::RealFftPlanner::<T>::new().plan_fft_forward(len)
    }
}

impl<T: Untangle> RealToComplex<T> for RealFft<T> {
    fn process(&self, input: &mut [T], output: &mut [Complex<T>]) -> Result<(), FftError> {
        let mut scratch = self.make_scratch_vec();
        self.process_with_scratch(input, output, &mut scratch)
    }

    fn process_with_scratch(
        &self,
        input: &mut [T],
        output: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
    ) -> Result<(), FftError> {
        if input.len() != self.len {
            return Err(FftError::InputBuffer(self.len, input.len()));
        }
        if output.len() != self.complex_len() {
            return Err(FftError::OutputBuffer(self.complex_len(), output.len()));
        }
        if scratch.len() < self.scratch_len {
            return Err(FftError::ScratchBuffer(self.scratch_len, scratch.len()));
        }
        let half = self.len / 2;
        // SAFETY: `Complex<T>` is `#[repr(C)]` with two `T` fields (`re`, `im`), so `half`
        // complex values occupy exactly the `2 * half == input.len()` values of `input`, with
        // the same alignment; the new slice borrows `input` mutably for its whole life.
        let packed: &mut [Complex<T>] = unsafe {
            std::slice::from_raw_parts_mut(input.as_mut_ptr().cast::<Complex<T>>(), half)
        };
        self.fft
            .process_outofplace_with_scratch(packed, &mut output[..half], scratch);
        T::untangle(&self.twiddles, output);
        Ok(())
    }

    fn get_scratch_len(&self) -> usize {
        self.scratch_len
    }

    fn len(&self) -> usize {
        self.len
    }

    fn make_input_vec(&self) -> Vec<T> {
        vec![T::zero(); self.len]
    }

    fn make_output_vec(&self) -> Vec<Complex<T>> {
        vec![Complex::new(T::zero(), T::zero()); self.complex_len()]
    }

    fn make_scratch_vec(&self) -> Vec<Complex<T>> {
        vec![Complex::new(T::zero(), T::zero()); self.scratch_len]
    }
}

/// The untangling pass for one float type: its vector kernel where the CPU has one, else
/// [`untangle_scalar`].
pub trait Untangle: FftNum {
    /// `out` holds the complex FFT of the packed samples in `out[..n]` (`n = out.len() - 1`);
    /// turns it into the real input's spectrum, in place.
    fn untangle(twiddles: &[Complex<Self>], out: &mut [Complex<Self>]);
}

impl Untangle for f32 {
    fn untangle(twiddles: &[Complex<f32>], out: &mut [Complex<f32>]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected on this CPU just above.
            unsafe { avx::untangle_f32(twiddles, out) };
            return;
        }
        untangle_scalar(twiddles, out);
    }
}

impl Untangle for f64 {
    fn untangle(twiddles: &[Complex<f64>], out: &mut [Complex<f64>]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected on this CPU just above.
            unsafe { avx::untangle_f64(twiddles, out) };
            return;
        }
        untangle_scalar(twiddles, out);
    }
}

/// The pass as realfft writes it, one bin pair at a time: the portable path, and the vector
/// kernels' tail. Bins `1..` pair with bins `..n` from the top, `twiddles[k - 1]` with bin `k`.
pub fn untangle_scalar<T: FftNum>(twiddles: &[Complex<T>], out: &mut [Complex<T>]) {
    untangle_edges(out);
    untangle_from(1, twiddles, out);
}

/// Bin 0, bin `n` and (for an even `n`) the middle bin, which need no twiddle.
fn untangle_edges<T: FftNum>(out: &mut [Complex<T>]) {
    let n = out.len() - 1;
    let first = out[0];
    out[0] = Complex::new(first.re + first.im, T::zero());
    out[n] = Complex::new(first.re - first.im, T::zero());
    if !out.len().is_multiple_of(2) {
        let mid = &mut out[n / 2];
        mid.im = -mid.im;
    }
}

/// The scalar pass over the bin pairs `(k, n - k)` from `k = from` on.
fn untangle_from<T: FftNum>(from: usize, twiddles: &[Complex<T>], out: &mut [Complex<T>]) {
    let n = out.len() - 1;
    let half = T::from_f64(0.5).unwrap_or_else(T::zero);
    // realfft's loop runs over the shortest of the twiddles, the bins below the middle and the
    // bins above it (all the same length for the lengths used here).
    let pairs = twiddles.len().min(n.div_ceil(2) - 1);
    for k in from..=pairs {
        let tw = twiddles[k - 1];
        let (a, b) = (out[k], out[n - k]);
        let sum = a + b;
        let diff = a - b;
        let half_sum_re = half * sum.re;
        let half_diff_im = half * diff.im;
        let twiddled_real = sum.im * tw.re + diff.re * tw.im;
        let twiddled_im = sum.im * tw.im - diff.re * tw.re;
        out[k] = Complex::new(half_sum_re + twiddled_real, half_diff_im + twiddled_im);
        out[n - k] = Complex::new(half_sum_re - twiddled_real, twiddled_im - half_diff_im);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    //! The pass on 256-bit vectors: the same operations as [`super::untangle_from`] per bin, in
    //! the same order (no fused multiply-add), so the same bits. Bins are split into a vector of
    //! real parts and one of imaginary parts; the upper bins are loaded and reversed so that
    //! each lane holds a pair `(k, n - k)`.

    use std::arch::x86_64::*;

    use realfft::num_complex::Complex;

    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn untangle_f32(twiddles: &[Complex<f32>], out: &mut [Complex<f32>]) {
        super::untangle_edges(out);
        let n = out.len() - 1;
        let pairs = twiddles.len().min(n.div_ceil(2) - 1);
        let half = _mm256_set1_ps(0.5);
        // Reverses the four complex values of a vector.
        let reverse =
            |v: __m256| _mm256_permute_ps::<0b01_00_11_10>(_mm256_permute2f128_ps::<1>(v, v));
        // One pointer for all the bins, so that the two blocks of a step are both derived from it.
        let bins = out.as_mut_ptr().cast::<f32>();
        let mut k = 1;
        // Eight bins per step: `out[k..k + 8]` with `out[n - k - 7..=n - k]`.
        while k + 7 <= pairs {
            let tw = twiddles[k - 1..k + 7].as_ptr().cast::<f32>();
            // SAFETY: `Complex<f32>` is two `f32`s (`repr(C)`). Bins `k..k + 8` and
            // `n - k - 7..=n - k` are inside `out` (`1 <= k`, `k + 7 <= pairs < n`), and
            // `tw` points at eight twiddles, so every 8-float load below stays inside a slice.
            let (lo, hi) = unsafe { (bins.add(2 * k), bins.add(2 * (n - k - 7))) };
            // SAFETY: as above.
            let (a0, a1, b1, b0, t0, t1) = unsafe {
                (
                    _mm256_loadu_ps(lo),
                    _mm256_loadu_ps(lo.add(8)),
                    _mm256_loadu_ps(hi),
                    _mm256_loadu_ps(hi.add(8)),
                    _mm256_loadu_ps(tw),
                    _mm256_loadu_ps(tw.add(8)),
                )
            };
            // The upper bins in the lower bins' order: `b0` holds bins n-k-3..=n-k, reversed it
            // is bins n-k..n-k-3, paired with k..k+3.
            let (b0, b1) = (reverse(b0), reverse(b1));
            // Lanes [k, k+1, k+4, k+5 | k+2, k+3, k+6, k+7] of the real and imaginary parts.
            let re = |x: __m256, y: __m256| _mm256_shuffle_ps::<0b10_00_10_00>(x, y);
            let im = |x: __m256, y: __m256| _mm256_shuffle_ps::<0b11_01_11_01>(x, y);
            let (a_re, a_im) = (re(a0, a1), im(a0, a1));
            let (b_re, b_im) = (re(b0, b1), im(b0, b1));
            let (t_re, t_im) = (re(t0, t1), im(t0, t1));
            let sum_re = _mm256_add_ps(a_re, b_re);
            let sum_im = _mm256_add_ps(a_im, b_im);
            let diff_re = _mm256_sub_ps(a_re, b_re);
            let diff_im = _mm256_sub_ps(a_im, b_im);
            let half_sum_re = _mm256_mul_ps(half, sum_re);
            let half_diff_im = _mm256_mul_ps(half, diff_im);
            let twiddled_real =
                _mm256_add_ps(_mm256_mul_ps(sum_im, t_re), _mm256_mul_ps(diff_re, t_im));
            let twiddled_im =
                _mm256_sub_ps(_mm256_mul_ps(sum_im, t_im), _mm256_mul_ps(diff_re, t_re));
            let lo_re = _mm256_add_ps(half_sum_re, twiddled_real);
            let lo_im = _mm256_add_ps(half_diff_im, twiddled_im);
            let hi_re = _mm256_sub_ps(half_sum_re, twiddled_real);
            let hi_im = _mm256_sub_ps(twiddled_im, half_diff_im);
            // Back to interleaved complex values (the inverse of `re`/`im` above).
            let (lo0, lo1) = (
                _mm256_unpacklo_ps(lo_re, lo_im),
                _mm256_unpackhi_ps(lo_re, lo_im),
            );
            let (hi0, hi1) = (
                reverse(_mm256_unpacklo_ps(hi_re, hi_im)),
                reverse(_mm256_unpackhi_ps(hi_re, hi_im)),
            );
            // SAFETY: as for the loads; `lo` and `hi` cover disjoint bins (`k + 7 < n - k - 7`
            // since `k + 7 <= pairs < n / 2`).
            unsafe {
                _mm256_storeu_ps(lo, lo0);
                _mm256_storeu_ps(lo.add(8), lo1);
                _mm256_storeu_ps(hi.add(8), hi0);
                _mm256_storeu_ps(hi, hi1);
            }
            k += 8;
        }
        super::untangle_from(k, twiddles, out);
    }

    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn untangle_f64(twiddles: &[Complex<f64>], out: &mut [Complex<f64>]) {
        super::untangle_edges(out);
        let n = out.len() - 1;
        let pairs = twiddles.len().min(n.div_ceil(2) - 1);
        let half = _mm256_set1_pd(0.5);
        // Swaps the two complex values of a vector.
        let reverse = |v: __m256d| _mm256_permute2f128_pd::<1>(v, v);
        let bins = out.as_mut_ptr().cast::<f64>();
        let mut k = 1;
        // Four bins per step: `out[k..k + 4]` with `out[n - k - 3..=n - k]`.
        while k + 3 <= pairs {
            let tw = twiddles[k - 1..k + 3].as_ptr().cast::<f64>();
            // SAFETY: `Complex<f64>` is two `f64`s (`repr(C)`). Bins `k..k + 4` and
            // `n - k - 3..=n - k` are inside `out` (`1 <= k`, `k + 3 <= pairs < n`), and `tw`
            // points at four twiddles, so every 4-double load below stays inside a slice.
            let (lo, hi) = unsafe { (bins.add(2 * k), bins.add(2 * (n - k - 3))) };
            // SAFETY: as above.
            let (a0, a1, b1, b0, t0, t1) = unsafe {
                (
                    _mm256_loadu_pd(lo),
                    _mm256_loadu_pd(lo.add(4)),
                    _mm256_loadu_pd(hi),
                    _mm256_loadu_pd(hi.add(4)),
                    _mm256_loadu_pd(tw),
                    _mm256_loadu_pd(tw.add(4)),
                )
            };
            let (b0, b1) = (reverse(b0), reverse(b1));
            // Lanes [k, k+2 | k+1, k+3] of the real and imaginary parts.
            let (a_re, a_im) = (_mm256_unpacklo_pd(a0, a1), _mm256_unpackhi_pd(a0, a1));
            let (b_re, b_im) = (_mm256_unpacklo_pd(b0, b1), _mm256_unpackhi_pd(b0, b1));
            let (t_re, t_im) = (_mm256_unpacklo_pd(t0, t1), _mm256_unpackhi_pd(t0, t1));
            let sum_re = _mm256_add_pd(a_re, b_re);
            let sum_im = _mm256_add_pd(a_im, b_im);
            let diff_re = _mm256_sub_pd(a_re, b_re);
            let diff_im = _mm256_sub_pd(a_im, b_im);
            let half_sum_re = _mm256_mul_pd(half, sum_re);
            let half_diff_im = _mm256_mul_pd(half, diff_im);
            let twiddled_real =
                _mm256_add_pd(_mm256_mul_pd(sum_im, t_re), _mm256_mul_pd(diff_re, t_im));
            let twiddled_im =
                _mm256_sub_pd(_mm256_mul_pd(sum_im, t_im), _mm256_mul_pd(diff_re, t_re));
            let lo_re = _mm256_add_pd(half_sum_re, twiddled_real);
            let lo_im = _mm256_add_pd(half_diff_im, twiddled_im);
            let hi_re = _mm256_sub_pd(half_sum_re, twiddled_real);
            let hi_im = _mm256_sub_pd(twiddled_im, half_diff_im);
            let (lo0, lo1) = (
                _mm256_unpacklo_pd(lo_re, lo_im),
                _mm256_unpackhi_pd(lo_re, lo_im),
            );
            let (hi0, hi1) = (
                reverse(_mm256_unpacklo_pd(hi_re, hi_im)),
                reverse(_mm256_unpackhi_pd(hi_re, hi_im)),
            );
            // SAFETY: as for the loads; `lo` and `hi` cover disjoint bins.
            unsafe {
                _mm256_storeu_pd(lo, lo0);
                _mm256_storeu_pd(lo.add(4), lo1);
                _mm256_storeu_pd(hi.add(4), hi0);
                _mm256_storeu_pd(hi, hi1);
            }
            k += 4;
        }
        super::untangle_from(k, twiddles, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::RealFftPlanner;

    /// A deterministic signal with every bin busy.
    fn signal<T: FftNum>(len: usize, seed: u64) -> Vec<T> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                T::from_f64((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
                    .unwrap_or_else(T::zero)
            })
            .collect()
    }

    fn bits32(v: &[Complex<f32>]) -> Vec<(u32, u32)> {
        v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
    }

    fn bits64(v: &[Complex<f64>]) -> Vec<(u64, u64)> {
        v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
    }

    /// Every length class: below one vector step, odd and even halves, the tails of both
    /// kernels, and the lengths the analysis plans.
    const LENGTHS: [usize; 22] = [
        2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 30, 34, 36, 62, 64, 66, 98, 720, 1024, 2048, 2050, 8192,
    ];

    #[test]
    fn f32_spectrum_is_realfft_s_bit_for_bit() {
        let mut planner = RealFftPlanner::<f32>::new();
        for len in LENGTHS {
            let oracle = planner.plan_fft_forward(len);
            let ours = RealFft::<f32>::new(len);
            for seed in 1..4 {
                let x = signal::<f32>(len, seed);
                let (mut xa, mut xb) = (x.clone(), x);
                let mut want = oracle.make_output_vec();
                let mut got = ours.make_output_vec();
                oracle.process(&mut xa, &mut want).unwrap();
                ours.process(&mut xb, &mut got).unwrap();
                assert_eq!(bits32(&got), bits32(&want), "len {len}, seed {seed}");
            }
        }
    }

    #[test]
    fn f64_spectrum_is_realfft_s_bit_for_bit() {
        let mut planner = RealFftPlanner::<f64>::new();
        for len in LENGTHS {
            let oracle = planner.plan_fft_forward(len);
            let ours = RealFft::<f64>::new(len);
            for seed in 1..4 {
                let x = signal::<f64>(len, seed);
                let (mut xa, mut xb) = (x.clone(), x);
                let mut want = oracle.make_output_vec();
                let mut got = ours.make_output_vec();
                oracle.process(&mut xa, &mut want).unwrap();
                ours.process(&mut xb, &mut got).unwrap();
                assert_eq!(bits64(&got), bits64(&want), "len {len}, seed {seed}");
            }
        }
    }

    /// The portable pass on its own (the vector kernels above are what the dispatch picks on a
    /// machine with AVX): same bits as realfft too.
    #[test]
    fn scalar_pass_is_realfft_s_bit_for_bit() {
        let mut p32 = RealFftPlanner::<f32>::new();
        let mut p64 = RealFftPlanner::<f64>::new();
        for len in LENGTHS {
            let ours = RealFft::<f32>::new(len);
            let x = signal::<f32>(len, 7);
            let mut want = ours.make_output_vec();
            p32.plan_fft_forward(len)
                .process(&mut x.clone(), &mut want)
                .unwrap();
            let mut got = ours.make_output_vec();
            let mut scratch = ours.make_scratch_vec();
            let half = len / 2;
            let mut packed: Vec<Complex<f32>> = x
                .chunks_exact(2)
                .map(|p| Complex::new(p[0], p[1]))
                .collect();
            ours.fft
                .process_outofplace_with_scratch(&mut packed, &mut got[..half], &mut scratch);
            untangle_scalar(&ours.twiddles, &mut got);
            assert_eq!(bits32(&got), bits32(&want), "f32 len {len}");

            let ours = RealFft::<f64>::new(len);
            let x = signal::<f64>(len, 7);
            let mut want = ours.make_output_vec();
            p64.plan_fft_forward(len)
                .process(&mut x.clone(), &mut want)
                .unwrap();
            let mut got = ours.make_output_vec();
            let mut scratch = ours.make_scratch_vec();
            let mut packed: Vec<Complex<f64>> = x
                .chunks_exact(2)
                .map(|p| Complex::new(p[0], p[1]))
                .collect();
            ours.fft
                .process_outofplace_with_scratch(&mut packed, &mut got[..half], &mut scratch);
            untangle_scalar(&ours.twiddles, &mut got);
            assert_eq!(bits64(&got), bits64(&want), "f64 len {len}");
        }
    }

    #[test]
    fn wrong_buffers_are_errors_not_panics() {
        let fft = RealFft::<f32>::new(16);
        let mut out = fft.make_output_vec();
        assert!(matches!(
            fft.process(&mut [0.0; 15], &mut out),
            Err(FftError::InputBuffer(16, 15))
        ));
        assert!(matches!(
            fft.process(&mut [0.0; 16], &mut out[..8]),
            Err(FftError::OutputBuffer(9, 8))
        ));
    }
}
