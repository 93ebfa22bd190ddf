//! Real FFTs of even length, forward and inverse: realfft's algorithms with their bin-pair pass
//! on AVX vectors.
//!
//! realfft computes the spectrum of `n` real samples as a complex FFT of `n / 2` points (from
//! rustfft) followed by a pass that untangles the even and odd samples' spectra, one twiddle
//! factor per pair of bins `(k, n/2 - k)`; its inverse runs the mirror pass before a complex
//! inverse FFT. rustfft's FFTs are vectorised; realfft's passes are scalar loops, and they were
//! 7-10 % of a full-mode analysis (`perf`: the STFT, the Welch spectra, the resampler and YIN
//! all go through them). [`RealFft`] and [`RealIfft`] plan the same rustfft FFTs and compute the
//! same passes with the same IEEE operations per bin (no fused multiply-add), eight (`f32`) or
//! four (`f64`) pairs at a time, so their output is bit for bit realfft's: the tests hold them
//! to realfft, kept as the oracle, on the vector and the portable paths. They implement
//! realfft's traits, so the callers' code is the same.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, FftError, FftNum, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// The forward FFT of `len` real samples behind realfft's trait: ours for an even `len`,
/// realfft's own for an odd one (a different algorithm, not on any hot path).
pub fn plan_forward<T: Untangle>(len: usize) -> Arc<dyn RealToComplex<T>> {
    if len > 0 && len.is_multiple_of(2) {
        Arc::new(RealFft::<T>::new(len))
    } else {
        realfft::RealFftPlanner::<T>::new().plan_fft_forward(len)
    }
}

/// The inverse FFT to `len` real samples behind realfft's trait: ours for an even `len`,
/// realfft's own for an odd one.
pub fn plan_inverse<T: Untangle>(len: usize) -> Arc<dyn ComplexToReal<T>> {
    if len > 0 && len.is_multiple_of(2) {
        Arc::new(RealIfft::<T>::new(len))
    } else {
        realfft::RealFftPlanner::<T>::new().plan_fft_inverse(len)
    }
}

/// A forward FFT of `len` (even) real samples into `len / 2 + 1` bins.
pub struct RealFft<T: Untangle> {
    len: usize,
    fft: Arc<dyn Fft<T>>,
    /// `exp(-2 pi i k / len) / 2` for `k` in `1..len / 4` (rounded up), as realfft computes it.
    twiddles: Vec<Complex<T>>,
    scratch_len: usize,
}

/// An inverse FFT of `len / 2 + 1` bins into `len` (even) real samples, unnormalised.
pub struct RealIfft<T: Untangle> {
    len: usize,
    fft: Arc<dyn Fft<T>>,
    /// `exp(2 pi i k / len)` for `k` in `1..len / 4` (rounded up), as realfft computes it.
    twiddles: Vec<Complex<T>>,
    scratch_len: usize,
}

/// realfft's `compute_twiddle(k, len)`: the angle in `f64`, then converted.
fn twiddle<T: FftNum>(k: usize, len: usize) -> Complex<T> {
    let angle = -2f64 * std::f64::consts::PI / len as f64 * k as f64;
    Complex::new(float(angle.cos()), float(angle.sin()))
}

/// `v` as `T`: a twiddle in [-1, 1] or 0.5, never input data. Every `FftNum` here is `f32` or
/// `f64`, which convert from any finite `f64`; a type that could not would give wrong spectra,
/// so it stops here rather than using a stand-in value.
fn float<T: FftNum>(v: f64) -> T {
    T::from_f64(v).expect("f32 and f64 convert from any finite f64")
}

/// Twiddles `1..len / 4` (rounded up), as realfft numbers them.
fn twiddles<T: FftNum>(len: usize, each: impl Fn(Complex<T>) -> Complex<T>) -> Vec<Complex<T>> {
    let count = len / 4 + usize::from(!len.is_multiple_of(4));
    (1..count).map(|k| each(twiddle(k, len))).collect()
}

fn check_len(len: usize) {
    assert!(
        len > 0 && len.is_multiple_of(2),
        "a real FFT of our own needs an even, non-zero length, got {len}"
    );
}

impl<T: Untangle> RealFft<T> {
    /// Plans the FFT of `len` real samples. `len` must be even and non-zero (a constant of the
    /// caller's in every use; [`plan_forward`] takes any length).
    pub fn new(len: usize) -> Self {
        check_len(len);
        let half: T = float(0.5);
        let fft = FftPlanner::<T>::new().plan_fft_forward(len / 2);
        RealFft {
            len,
            twiddles: twiddles(len, |t| t * half),
            scratch_len: fft.get_outofplace_scratch_len(),
            fft,
        }
    }
}

impl<T: Untangle> RealIfft<T> {
    /// Plans the inverse FFT to `len` real samples. `len` must be even and non-zero.
    pub fn new(len: usize) -> Self {
        check_len(len);
        let fft = FftPlanner::<T>::new().plan_fft_inverse(len / 2);
        RealIfft {
            len,
            twiddles: twiddles(len, |t| t.conj()),
            scratch_len: fft.get_outofplace_scratch_len(),
            fft,
        }
    }
}

fn zeros<T: FftNum>(n: usize) -> Vec<Complex<T>> {
    vec![Complex::new(T::zero(), T::zero()); n]
}

/// `n` complex values over the `2 * n` reals of `reals`.
fn as_complex<T: FftNum>(reals: &mut [T]) -> &mut [Complex<T>] {
    let n = reals.len() / 2;
    // SAFETY: `Complex<T>` is `#[repr(C)]` with two `T` fields (`re`, `im`), so `n` complex
    // values occupy the first `2 * n` values of `reals`, with the same alignment; the new slice
    // borrows `reals` mutably for its whole life.
    unsafe { std::slice::from_raw_parts_mut(reals.as_mut_ptr().cast::<Complex<T>>(), n) }
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
        let n = self.len / 2;
        self.fft
            .process_outofplace_with_scratch(as_complex(input), &mut output[..n], scratch);
        // Bins 0 and n need no twiddle; nor does the middle one, for an even n.
        let first = output[0];
        output[0] = Complex::new(first.re + first.im, T::zero());
        output[n] = Complex::new(first.re - first.im, T::zero());
        T::pairs(Pass::Forward, &self.twiddles, output);
        if !output.len().is_multiple_of(2) {
            let mid = &mut output[n / 2];
            mid.im = -mid.im;
        }
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
        zeros(self.complex_len())
    }

    fn make_scratch_vec(&self) -> Vec<Complex<T>> {
        zeros(self.scratch_len)
    }
}

impl<T: Untangle> ComplexToReal<T> for RealIfft<T> {
    fn process(&self, input: &mut [Complex<T>], output: &mut [T]) -> Result<(), FftError> {
        let mut scratch = self.make_scratch_vec();
        self.process_with_scratch(input, output, &mut scratch)
    }

    fn process_with_scratch(
        &self,
        input: &mut [Complex<T>],
        output: &mut [T],
        scratch: &mut [Complex<T>],
    ) -> Result<(), FftError> {
        if input.len() != self.complex_len() {
            return Err(FftError::InputBuffer(self.complex_len(), input.len()));
        }
        if output.len() != self.len {
            return Err(FftError::OutputBuffer(self.len, output.len()));
        }
        if scratch.len() < self.scratch_len {
            return Err(FftError::ScratchBuffer(self.scratch_len, scratch.len()));
        }
        let n = self.len / 2;
        // As realfft: imaginary parts in bins 0 and n are an error, reported after the
        // transform, which treats them as zero.
        let first_invalid = input[0].im != T::zero();
        let last_invalid = input[n].im != T::zero();
        input[0].im = T::zero();
        input[n].im = T::zero();
        let (first, last) = (input[0], input[n]);
        let (sum, diff) = (first + last, first - last);
        input[0] = Complex::new(sum.re - sum.im, diff.re - diff.im);
        T::pairs(Pass::Inverse, &self.twiddles, input);
        if !input.len().is_multiple_of(2) {
            let mid = input[n / 2];
            input[n / 2] = (mid + mid).conj();
        }
        self.fft
            .process_outofplace_with_scratch(&mut input[..n], as_complex(output), scratch);
        if first_invalid || last_invalid {
            return Err(FftError::InputValues(first_invalid, last_invalid));
        }
        Ok(())
    }

    fn get_scratch_len(&self) -> usize {
        self.scratch_len
    }

    fn len(&self) -> usize {
        self.len
    }

    fn make_input_vec(&self) -> Vec<Complex<T>> {
        zeros(self.complex_len())
    }

    fn make_output_vec(&self) -> Vec<T> {
        vec![T::zero(); self.len]
    }

    fn make_scratch_vec(&self) -> Vec<Complex<T>> {
        zeros(self.scratch_len)
    }
}

/// Which of realfft's two bin-pair passes.
#[derive(Clone, Copy, Debug)]
pub enum Pass {
    /// After the forward complex FFT (twiddles halved).
    Forward,
    /// Before the inverse complex FFT (twiddles conjugated).
    Inverse,
}

/// The bin-pair pass for one float type: its vector kernel where the CPU has one, else
/// [`pairs_scalar`].
pub trait Untangle: FftNum {
    /// Runs `pass` over the pairs `(k, n - k)`, `k >= 1`, of `bins` (`n = bins.len() - 1`),
    /// `twiddles[k - 1]` for pair `k`, as far as realfft's loop goes.
    fn pairs(pass: Pass, twiddles: &[Complex<Self>], bins: &mut [Complex<Self>]);
}

impl Untangle for f32 {
    fn pairs(pass: Pass, twiddles: &[Complex<f32>], bins: &mut [Complex<f32>]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected on this CPU just above.
            unsafe { avx::pairs_f32(pass, twiddles, bins) };
            return;
        }
        pairs_scalar(pass, twiddles, bins);
    }
}

impl Untangle for f64 {
    fn pairs(pass: Pass, twiddles: &[Complex<f64>], bins: &mut [Complex<f64>]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected on this CPU just above.
            unsafe { avx::pairs_f64(pass, twiddles, bins) };
            return;
        }
        pairs_scalar(pass, twiddles, bins);
    }
}

/// Number of pairs realfft's loop processes: the shortest of the twiddles, the bins below the
/// middle and the bins above it.
fn pair_count<T>(twiddles: &[Complex<T>], bins: &[Complex<T>]) -> usize {
    twiddles.len().min((bins.len() - 1).div_ceil(2) - 1)
}

/// The passes one pair at a time: the portable path.
pub fn pairs_scalar<T: FftNum>(pass: Pass, twiddles: &[Complex<T>], bins: &mut [Complex<T>]) {
    pairs_from(1, pass, twiddles, bins);
}

/// The scalar passes over the pairs from `k = from` on: the portable path and the vector
/// kernels' tail.
fn pairs_from<T: FftNum>(
    from: usize,
    pass: Pass,
    twiddles: &[Complex<T>],
    bins: &mut [Complex<T>],
) {
    let n = bins.len() - 1;
    let half = Scalar(float::<T>(0.5));
    for k in from..=pair_count(twiddles, bins) {
        let (t, a, b) = (twiddles[k - 1], bins[k], bins[n - k]);
        let [lo_re, lo_im, hi_re, hi_im] =
            pair(pass, half, [a.re, a.im, b.re, b.im, t.re, t.im].map(Scalar));
        bins[k] = Complex::new(lo_re.0, lo_im.0);
        bins[n - k] = Complex::new(hi_re.0, hi_im.0);
    }
}

/// The arithmetic of the passes, on one number or on a vector of them.
trait Arith: Copy {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn neg(self) -> Self;
}

#[derive(Clone, Copy)]
struct Scalar<T>(T);

impl<T: FftNum> Arith for Scalar<T> {
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Scalar(-self.0)
    }
}

/// One pair `(a, b) = (bin k, bin n - k)` with twiddle `t`, given as
/// `[a.re, a.im, b.re, b.im, t.re, t.im]`: the new `[a.re, a.im, b.re, b.im]`, by realfft's
/// operations in realfft's order.
#[inline(always)]
fn pair<A: Arith>(pass: Pass, half: A, [a_re, a_im, b_re, b_im, t_re, t_im]: [A; 6]) -> [A; 4] {
    let sum_re = a_re.add(b_re);
    let sum_im = a_im.add(b_im);
    let diff_re = a_re.sub(b_re);
    let diff_im = a_im.sub(b_im);
    let twiddled_re = sum_im.mul(t_re).add(diff_re.mul(t_im));
    let twiddled_im = sum_im.mul(t_im).sub(diff_re.mul(t_re));
    match pass {
        Pass::Forward => {
            let half_sum_re = half.mul(sum_re);
            let half_diff_im = half.mul(diff_im);
            [
                half_sum_re.add(twiddled_re),
                half_diff_im.add(twiddled_im),
                half_sum_re.sub(twiddled_re),
                twiddled_im.sub(half_diff_im),
            ]
        }
        Pass::Inverse => [
            sum_re.sub(twiddled_re),
            diff_im.sub(twiddled_im),
            sum_re.add(twiddled_re),
            twiddled_im.neg().sub(diff_im),
        ],
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    //! The passes on 256-bit vectors. A step loads `STEP` pairs: the lower bins, the upper bins
    //! reversed (so that each lane holds a pair `(k, n - k)`) and the twiddles, each split into a
    //! vector of real parts and one of imaginary parts; [`super::pair`] does the rest, lane by
    //! lane. The methods below are always inlined into the `#[target_feature(enable = "avx")]`
    //! entry points, which are only called once AVX was detected.

    use std::arch::x86_64::*;

    use realfft::num_complex::Complex;

    use super::{pair, pair_count, pairs_from, Arith, Pass};

    /// `STEP` bins of one float type in two vectors, split or interleaved.
    trait Bins: Arith {
        type F;
        const STEP: usize;
        fn half() -> Self;
        /// `STEP / 2` complex values (one vector) from `p`.
        ///
        /// # Safety
        /// AVX, and `p` points at `STEP / 2` complex values.
        unsafe fn load_raw(p: *const Self::F) -> Self;
        /// # Safety
        /// AVX, and `p` points at room for `STEP / 2` complex values.
        unsafe fn store_raw(p: *mut Self::F, v: Self);
        /// The complex values of one vector in reverse order.
        fn reverse(self) -> Self;
        /// Two vectors of interleaved complex values as (real parts, imaginary parts).
        fn split(x: Self, y: Self) -> [Self; 2];
        /// The inverse of [`Bins::split`].
        fn join(re: Self, im: Self) -> [Self; 2];

        /// `STEP` complex values from `p`, as (real parts, imaginary parts).
        ///
        /// # Safety
        /// AVX, and `p` points at `STEP` complex values.
        #[inline(always)]
        unsafe fn load(p: *const Self::F) -> [Self; 2] {
            Self::split(Self::load_raw(p), Self::load_raw(p.add(Self::STEP)))
        }
        /// As [`Bins::load`], the values in reverse order.
        #[inline(always)]
        unsafe fn load_rev(p: *const Self::F) -> [Self; 2] {
            Self::split(
                Self::load_raw(p.add(Self::STEP)).reverse(),
                Self::load_raw(p).reverse(),
            )
        }
        /// The inverse of [`Bins::load`].
        #[inline(always)]
        unsafe fn store(p: *mut Self::F, [re, im]: [Self; 2]) {
            let [x, y] = Self::join(re, im);
            Self::store_raw(p, x);
            Self::store_raw(p.add(Self::STEP), y);
        }
        /// The inverse of [`Bins::load_rev`].
        #[inline(always)]
        unsafe fn store_rev(p: *mut Self::F, [re, im]: [Self; 2]) {
            let [x, y] = Self::join(re, im);
            Self::store_raw(p.add(Self::STEP), x.reverse());
            Self::store_raw(p, y.reverse());
        }
    }

    #[derive(Clone, Copy)]
    struct F32x8(__m256);

    #[derive(Clone, Copy)]
    struct F64x4(__m256d);

    macro_rules! arith {
        ($t:ident, $add:ident, $sub:ident, $mul:ident, $xor:ident, $splat:ident) => {
            impl Arith for $t {
                #[inline(always)]
                fn add(self, o: Self) -> Self {
                    // SAFETY: AVX (see the module's doc).
                    $t(unsafe { $add(self.0, o.0) })
                }
                #[inline(always)]
                fn sub(self, o: Self) -> Self {
                    // SAFETY: AVX.
                    $t(unsafe { $sub(self.0, o.0) })
                }
                #[inline(always)]
                fn mul(self, o: Self) -> Self {
                    // SAFETY: AVX.
                    $t(unsafe { $mul(self.0, o.0) })
                }
                #[inline(always)]
                fn neg(self) -> Self {
                    // Flipping the sign bit, as `-x` does.
                    // SAFETY: AVX.
                    $t(unsafe { $xor(self.0, $splat(-0.0)) })
                }
            }
        };
    }
    arith!(
        F32x8,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_mul_ps,
        _mm256_xor_ps,
        _mm256_set1_ps
    );
    arith!(
        F64x4,
        _mm256_add_pd,
        _mm256_sub_pd,
        _mm256_mul_pd,
        _mm256_xor_pd,
        _mm256_set1_pd
    );

    // The methods call AVX intrinsics: they are only reached from the AVX entry points below
    // (SAFETY of every `unsafe` block here: AVX, and the pointers as each method's contract).
    impl Bins for F32x8 {
        type F = f32;
        const STEP: usize = 8;

        #[inline(always)]
        fn half() -> Self {
            F32x8(unsafe { _mm256_set1_ps(0.5) })
        }
        #[inline(always)]
        unsafe fn load_raw(p: *const f32) -> Self {
            F32x8(_mm256_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn store_raw(p: *mut f32, v: Self) {
            _mm256_storeu_ps(p, v.0)
        }
        #[inline(always)]
        fn reverse(self) -> Self {
            F32x8(unsafe {
                _mm256_permute_ps::<0b01_00_11_10>(_mm256_permute2f128_ps::<1>(self.0, self.0))
            })
        }
        // Lanes hold bins [0, 1, 4, 5 | 2, 3, 6, 7] of the step.
        #[inline(always)]
        fn split(x: Self, y: Self) -> [Self; 2] {
            unsafe {
                [
                    F32x8(_mm256_shuffle_ps::<0b10_00_10_00>(x.0, y.0)),
                    F32x8(_mm256_shuffle_ps::<0b11_01_11_01>(x.0, y.0)),
                ]
            }
        }
        #[inline(always)]
        fn join(re: Self, im: Self) -> [Self; 2] {
            unsafe {
                [
                    F32x8(_mm256_unpacklo_ps(re.0, im.0)),
                    F32x8(_mm256_unpackhi_ps(re.0, im.0)),
                ]
            }
        }
    }

    impl Bins for F64x4 {
        type F = f64;
        const STEP: usize = 4;

        #[inline(always)]
        fn half() -> Self {
            F64x4(unsafe { _mm256_set1_pd(0.5) })
        }
        #[inline(always)]
        unsafe fn load_raw(p: *const f64) -> Self {
            F64x4(_mm256_loadu_pd(p))
        }
        #[inline(always)]
        unsafe fn store_raw(p: *mut f64, v: Self) {
            _mm256_storeu_pd(p, v.0)
        }
        #[inline(always)]
        fn reverse(self) -> Self {
            F64x4(unsafe { _mm256_permute2f128_pd::<1>(self.0, self.0) })
        }
        // Lanes hold bins [0, 2 | 1, 3] of the step.
        #[inline(always)]
        fn split(x: Self, y: Self) -> [Self; 2] {
            unsafe {
                [
                    F64x4(_mm256_unpacklo_pd(x.0, y.0)),
                    F64x4(_mm256_unpackhi_pd(x.0, y.0)),
                ]
            }
        }
        #[inline(always)]
        fn join(re: Self, im: Self) -> [Self; 2] {
            unsafe {
                [
                    F64x4(_mm256_unpacklo_pd(re.0, im.0)),
                    F64x4(_mm256_unpackhi_pd(re.0, im.0)),
                ]
            }
        }
    }

    /// The pairs in steps of `V::STEP`; returns the first pair left to the scalar tail.
    ///
    /// # Safety
    /// AVX.
    #[inline(always)]
    unsafe fn steps<V: Bins>(
        pass: Pass,
        twiddles: &[Complex<V::F>],
        bins: &mut [Complex<V::F>],
    ) -> usize {
        let n = bins.len() - 1;
        let pairs = pair_count(twiddles, bins);
        // One pointer for all the bins, so that both blocks of a step derive from it.
        let base = bins.as_mut_ptr().cast::<V::F>();
        let half = V::half();
        let mut k = 1;
        while k + V::STEP - 1 <= pairs {
            let tw = twiddles[k - 1..k - 1 + V::STEP].as_ptr().cast::<V::F>();
            // SAFETY: `Complex<F>` is two `F`s (`repr(C)`). Bins `k..k + STEP` and
            // `n + 1 - k - STEP..=n - k` lie inside `bins` (`1 <= k`, `k + STEP - 1 <= pairs <
            // n / 2`) and do not overlap; `tw` points at `STEP` twiddles.
            unsafe {
                let (lo, hi) = (base.add(2 * k), base.add(2 * (n + 1 - k - V::STEP)));
                let [a_re, a_im] = V::load(lo);
                let [b_re, b_im] = V::load_rev(hi);
                let [t_re, t_im] = V::load(tw);
                let [lo_re, lo_im, hi_re, hi_im] =
                    pair(pass, half, [a_re, a_im, b_re, b_im, t_re, t_im]);
                V::store(lo, [lo_re, lo_im]);
                V::store_rev(hi, [hi_re, hi_im]);
            }
            k += V::STEP;
        }
        k
    }

    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn pairs_f32(
        pass: Pass,
        twiddles: &[Complex<f32>],
        bins: &mut [Complex<f32>],
    ) {
        // SAFETY: AVX, by this function's contract.
        let k = unsafe { steps::<F32x8>(pass, twiddles, bins) };
        pairs_from(k, pass, twiddles, bins);
    }

    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn pairs_f64(
        pass: Pass,
        twiddles: &[Complex<f64>],
        bins: &mut [Complex<f64>],
    ) {
        // SAFETY: AVX, by this function's contract.
        let k = unsafe { steps::<F64x4>(pass, twiddles, bins) };
        pairs_from(k, pass, twiddles, bins);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;
    use realfft::RealFftPlanner;

    /// A deterministic signal with every bin busy.
    fn signal<T: FftNum>(len: usize, seed: u64) -> Vec<T> {
        let mut rng = XorShift::new(seed);
        (0..len).map(|_| float(rng.unit())).collect()
    }

    /// Exact comparison: each value's debug form is its shortest round-trip decimal, distinct
    /// for distinct floats (and `-0.0` apart from `0.0`).
    fn bits<T: FftNum>(v: &[T]) -> Vec<String> {
        v.iter().map(|x| format!("{x:?}")).collect()
    }

    fn cbits<T: FftNum>(v: &[Complex<T>]) -> Vec<String> {
        bits(&v.iter().flat_map(|c| [c.re, c.im]).collect::<Vec<T>>())
    }

    /// Every length class: below one vector step, odd and even halves, the tails of both
    /// kernels, and the lengths the analysis plans.
    const LENGTHS: [usize; 22] = [
        2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 30, 34, 36, 62, 64, 66, 98, 720, 1024, 2048, 2050, 8192,
    ];

    /// Our forward FFT against realfft's: through `process` (the dispatched pass), or with the
    /// same steps around the portable pass.
    fn forward_matches<T: Untangle>(portable: bool) {
        let mut planner = RealFftPlanner::<T>::new();
        for len in LENGTHS {
            let oracle = planner.plan_fft_forward(len);
            let ours = RealFft::<T>::new(len);
            for seed in 1..4 {
                let x = signal::<T>(len, seed);
                let mut want = oracle.make_output_vec();
                oracle.process(&mut x.clone(), &mut want).unwrap();
                let mut got = ours.make_output_vec();
                if portable {
                    let n = len / 2;
                    let mut scratch = ours.make_scratch_vec();
                    ours.fft.process_outofplace_with_scratch(
                        as_complex(&mut x.clone()),
                        &mut got[..n],
                        &mut scratch,
                    );
                    let first = got[0];
                    got[0] = Complex::new(first.re + first.im, T::zero());
                    got[n] = Complex::new(first.re - first.im, T::zero());
                    pairs_scalar(Pass::Forward, &ours.twiddles, &mut got);
                    if !got.len().is_multiple_of(2) {
                        got[n / 2].im = -got[n / 2].im;
                    }
                } else {
                    ours.process(&mut x.clone(), &mut got).unwrap();
                }
                assert_eq!(cbits(&got), cbits(&want), "len {len}, seed {seed}");
            }
        }
    }

    /// Our inverse FFT against realfft's, on spectra with real and (invalid) imaginary edges.
    fn inverse_matches<T: Untangle>() {
        let mut planner = RealFftPlanner::<T>::new();
        for len in LENGTHS {
            let oracle = planner.plan_fft_inverse(len);
            let ours = RealIfft::<T>::new(len);
            for seed in 1..4 {
                let mut spec = ours.make_input_vec();
                for (c, v) in spec
                    .iter_mut()
                    .zip(signal::<T>(2 * (len / 2 + 1), seed).chunks(2))
                {
                    *c = Complex::new(v[0], v[1]);
                }
                if seed != 3 {
                    // Seed 3 keeps the imaginary edges: both report InputValues.
                    spec[0].im = T::zero();
                    spec[len / 2].im = T::zero();
                }
                let (mut want, mut got) = (oracle.make_output_vec(), ours.make_output_vec());
                let want_err = oracle.process(&mut spec.clone(), &mut want).err();
                let got_err = ours.process(&mut spec.clone(), &mut got).err();
                assert_eq!(format!("{got_err:?}"), format!("{want_err:?}"), "len {len}");
                assert_eq!(bits(&got), bits(&want), "len {len}, seed {seed}");
            }
        }
    }

    #[test]
    fn f32_forward_is_realfft_s_bit_for_bit() {
        forward_matches::<f32>(false);
    }

    #[test]
    fn f64_forward_is_realfft_s_bit_for_bit() {
        forward_matches::<f64>(false);
    }

    /// The portable pass, whatever this machine's CPU: the same bits too.
    #[test]
    fn portable_forward_is_realfft_s_bit_for_bit() {
        forward_matches::<f32>(true);
        forward_matches::<f64>(true);
    }

    #[test]
    fn inverse_is_realfft_s_bit_for_bit() {
        inverse_matches::<f32>();
        inverse_matches::<f64>();
    }

    #[test]
    fn portable_inverse_pass_is_the_vector_one() {
        for len in LENGTHS {
            let ours = RealIfft::<f64>::new(len);
            let mut spec = ours.make_input_vec();
            for (c, v) in spec.iter_mut().zip(signal::<f64>(len + 2, 5).chunks(2)) {
                *c = Complex::new(v[0], v[1]);
            }
            let mut portable = spec.clone();
            <f64 as Untangle>::pairs(Pass::Inverse, &ours.twiddles, &mut spec);
            pairs_scalar(Pass::Inverse, &ours.twiddles, &mut portable);
            assert_eq!(cbits(&spec), cbits(&portable), "len {len}");
            let ours = RealIfft::<f32>::new(len);
            let mut spec = ours.make_input_vec();
            for (c, v) in spec.iter_mut().zip(signal::<f32>(len + 2, 5).chunks(2)) {
                *c = Complex::new(v[0], v[1]);
            }
            let mut portable = spec.clone();
            <f32 as Untangle>::pairs(Pass::Inverse, &ours.twiddles, &mut spec);
            pairs_scalar(Pass::Inverse, &ours.twiddles, &mut portable);
            assert_eq!(cbits(&spec), cbits(&portable), "len {len}");
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
        let ifft = RealIfft::<f32>::new(16);
        let mut spec = ifft.make_input_vec();
        assert!(matches!(
            ifft.process(&mut spec, &mut [0.0; 15]),
            Err(FftError::OutputBuffer(16, 15))
        ));
    }
}
