//! Dimension 18, `harmonic_ratio` (`docs/fingerprint.md`): harmonic/percussive separation by median filtering
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
//! Speed (a 4-minute track is ~10 000 frames, each needing 2 × 1025 medians of 31): medians
//! come in runs of 4 neighbours, whose windows share 28 values. A branch-free selection network
//! (Batcher's odd–even merge sort pruned to ranks 12..=15 of those 28) runs on 4 SSE lanes with
//! `min`/`max` only, and each of the 4 medians then merges its own 3 other values in with 12
//! more `min`/`max`: ~19 per median, no data-dependent branch. Lanes are W neighbouring bins
//! for the time medians (4 neighbouring frames at once), and W runs of 4 bins, read from copies
//! of the spectrum split by bin phase mod 4, for the frequency medians. The kernel is generic
//! over the lanes ([`MedianKernel`]): 8 AVX2 lanes when the CPU has AVX2 (detected at run
//! time), else 4 SSE lanes on x86-64, else 4 portable lanes; all give the same medians bit for
//! bit and are tested against each other. Memory is bounded: a ring of the last 34 frames.

use super::{Extractor, Needs, Output, Summary};
use crate::dsp::stft::Frame;
use crate::dsp::N_BINS;

/// Median kernel length, in frames (harmonic) and in bins (percussive).
const KERNEL: usize = 31;
/// Half the kernel: the context on each side of a median.
const HALF: usize = KERNEL / 2;
/// Frames kept: four output frames `t..=t+3` read frames `t−15..=t+18`.
const RING: usize = 34;
/// Widest SIMD vector, in `f32` lanes (AVX2).
const MAX_W: usize = 8;
/// Floats per frame in the rings: `N_BINS` rounded up to whole groups of the widest kernel
/// (`4·MAX_W` outputs of a percussive group), plus 16 so frames 4 KiB apart do not alias.
const STRIDE: usize = 4 * MAX_W * N_BINS.div_ceil(4 * MAX_W) + 16;
/// Reflected bins before bin 0 in the padded spectrum (a multiple of 4, so phases are kept).
const FREQ_PAD: usize = 16;
/// Length of each of the 4 phases (bins ≡ 0, 1, 2, 3 mod 4) of the padded spectrum.
const PHASE_LEN: usize = 272;

/// Groups of `w`-lane vectors that cover the bins, for the time medians.
const fn time_groups(w: usize) -> usize {
    N_BINS.div_ceil(w)
}

/// Groups of the frequency medians: `w` lanes × 4 neighbouring bins.
const fn freq_groups(w: usize) -> usize {
    N_BINS.div_ceil(4 * w)
}

const _: () = assert!(KERNEL == 31 && RING >= KERNEL + 3);
const _: () = assert!(time_groups(4) * 4 <= STRIDE && time_groups(MAX_W) * MAX_W <= STRIDE);
const _: () = assert!(freq_groups(4) * 16 <= STRIDE && freq_groups(MAX_W) * 4 * MAX_W <= STRIDE);
// Highest padded position read by a lane group: `w·(groups − 1) + 34/4 + w − 1` in a phase.
const _: () = assert!(4 * (freq_groups(4) - 1) + 8 + 3 < PHASE_LEN);
const _: () = assert!(MAX_W * (freq_groups(MAX_W) - 1) + 8 + MAX_W - 1 < PHASE_LEN);
const _: () = assert!(N_BINS > KERNEL);
const _: () = assert!(FREQ_PAD.is_multiple_of(4) && FREQ_PAD / 4 + N_BINS / 4 < PHASE_LEN);

/// The median kernels, all computing the same medians bit for bit: `Portable` everywhere,
/// `Sse` (4 lanes) on every x86-64, `Avx2` (8 lanes) on x86-64 CPUs that have it, chosen at
/// run time. Tests compare every kernel the machine runs against the portable one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedianKernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Sse,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl MedianKernel {
    /// The fastest kernel this CPU runs.
    pub fn best() -> MedianKernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return MedianKernel::Avx2;
            }
            MedianKernel::Sse
        }
        #[cfg(not(target_arch = "x86_64"))]
        MedianKernel::Portable
    }

    /// Every kernel this CPU runs.
    pub fn available() -> Vec<MedianKernel> {
        let mut v = vec![MedianKernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(MedianKernel::Sse);
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(MedianKernel::Avx2);
            }
        }
        v
    }
}

/// A vector of `W` `f32` lanes with lane-wise `min`/`max` (`a < b ? a : b`, `a > b ? a : b`;
/// the magnitudes are never NaN).
trait Lanes: Copy {
    const W: usize;
    fn load(s: &[f32], i: usize) -> Self;
    fn store(self, s: &mut [f32], i: usize);
    fn min(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `then` in the lanes below `t`, the lane's own value elsewhere.
    fn below_to(self, t: f32, then: f32) -> Self;
}

/// Four lanes in plain arrays: compiled and tested on every target.
#[derive(Clone, Copy)]
struct Portable4([f32; 4]);

impl Lanes for Portable4 {
    const W: usize = 4;

    #[inline(always)]
    fn load(s: &[f32], i: usize) -> Self {
        let mut v = [0.0; 4];
        v.copy_from_slice(&s[i..i + 4]);
        Portable4(v)
    }

    #[inline(always)]
    fn store(self, s: &mut [f32], i: usize) {
        s[i..i + 4].copy_from_slice(&self.0);
    }

    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Portable4(std::array::from_fn(|l| {
            if self.0[l] < o.0[l] {
                self.0[l]
            } else {
                o.0[l]
            }
        }))
    }

    #[inline(always)]
    fn max(self, o: Self) -> Self {
        Portable4(std::array::from_fn(|l| {
            if self.0[l] > o.0[l] {
                self.0[l]
            } else {
                o.0[l]
            }
        }))
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Portable4([v; 4])
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Portable4(std::array::from_fn(|l| self.0[l] + o.0[l]))
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Portable4(std::array::from_fn(|l| self.0[l] * o.0[l]))
    }

    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Portable4(std::array::from_fn(|l| self.0[l] / o.0[l]))
    }

    #[inline(always)]
    fn below_to(self, t: f32, then: f32) -> Self {
        Portable4(std::array::from_fn(|l| {
            if self.0[l] < t {
                then
            } else {
                self.0[l]
            }
        }))
    }
}

/// Four SSE lanes (SSE is part of the x86-64 baseline, so always present).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Sse4(std::arch::x86_64::__m128);

#[cfg(target_arch = "x86_64")]
impl Lanes for Sse4 {
    const W: usize = 4;

    #[inline(always)]
    fn load(s: &[f32], i: usize) -> Self {
        let s = &s[i..i + 4];
        // SAFETY: SSE is enabled on every x86-64 target, and `s` holds the 4 floats read.
        Sse4(unsafe { std::arch::x86_64::_mm_loadu_ps(s.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, s: &mut [f32], i: usize) {
        let s = &mut s[i..i + 4];
        // SAFETY: SSE is enabled on every x86-64 target, and `s` has room for the 4 floats.
        unsafe { std::arch::x86_64::_mm_storeu_ps(s.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn min(self, o: Self) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_min_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_max_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_set1_ps(v) })
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_add_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_mul_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn div(self, o: Self) -> Self {
        // SAFETY: SSE is enabled on every x86-64 target.
        Sse4(unsafe { std::arch::x86_64::_mm_div_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn below_to(self, t: f32, then: f32) -> Self {
        use std::arch::x86_64::*;
        // SAFETY: SSE is enabled on every x86-64 target (no blend before SSE4.1: and/andnot/or).
        Sse4(unsafe {
            let below = _mm_cmplt_ps(self.0, _mm_set1_ps(t));
            _mm_or_ps(
                _mm_and_ps(below, _mm_set1_ps(then)),
                _mm_andnot_ps(below, self.0),
            )
        })
    }
}

/// Eight AVX lanes. Only used inside the `#[target_feature(enable = "avx2")]` entry points
/// below, which are only called when the CPU has AVX2 ([`MedianKernel::best`]); these methods
/// are always inlined into them.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx8(std::arch::x86_64::__m256);

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx8 {
    const W: usize = 8;

    #[inline(always)]
    fn load(s: &[f32], i: usize) -> Self {
        let s = &s[i..i + 8];
        // SAFETY: only reached from AVX2-enabled functions called after detecting AVX2, and `s`
        // holds the 8 floats read.
        Avx8(unsafe { std::arch::x86_64::_mm256_loadu_ps(s.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, s: &mut [f32], i: usize) {
        let s = &mut s[i..i + 8];
        // SAFETY: as `load`; `s` has room for the 8 floats.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(s.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn min(self, o: Self) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_min_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_max_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_set1_ps(v) })
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_add_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_mul_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn div(self, o: Self) -> Self {
        // SAFETY: as `load`.
        Avx8(unsafe { std::arch::x86_64::_mm256_div_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn below_to(self, t: f32, then: f32) -> Self {
        use std::arch::x86_64::*;
        // SAFETY: as `load`.
        Avx8(unsafe {
            let below = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, _mm256_set1_ps(t));
            _mm256_blendv_ps(self.0, _mm256_set1_ps(then), below)
        })
    }
}

macro_rules! compare_exchange {
    ($v:ident; $(($a:literal, $b:literal)),* $(,)?) => {
        $(
            let (x, y) = ($v[$a], $v[$b]);
            $v[$a] = x.min(y);
            $v[$b] = x.max(y);
        )*
    };
}

/// Ranks 12 to 15 (0-based) of 28 values per lane. The comparators are those of Batcher's
/// odd–even merge sort of 32 wires that influence wires 12 to 15 when wires 28 to 31 hold
/// `+∞` (generated, and checked against sorting by the tests); the compiler drops the half of
/// a comparator whose result is never read.
#[inline(always)]
fn ranks_12_15<V: Lanes>(mut v: [V; 28]) -> [V; 4] {
    compare_exchange!(v;
        (0, 16), (1, 17), (2, 18), (3, 19), (4, 20), (5, 21), (6, 22), (7, 23), (8, 24), (9, 25),
        (10, 26), (11, 27), (0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14), (7, 15),
        (16, 24), (17, 25), (18, 26), (19, 27), (8, 16), (9, 17), (10, 18), (11, 19), (12, 20), (13, 21),
        (14, 22), (15, 23), (0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13), (10, 14), (11, 15),
        (16, 20), (17, 21), (18, 22), (19, 23), (4, 16), (5, 17), (6, 18), (7, 19), (12, 24), (13, 25),
        (14, 26), (15, 27), (4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19),
        (20, 24), (21, 25), (22, 26), (23, 27), (0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11),
        (12, 14), (13, 15), (16, 18), (17, 19), (20, 22), (21, 23), (24, 26), (25, 27), (2, 16), (3, 17),
        (6, 20), (7, 21), (10, 24), (11, 25), (2, 8), (3, 9), (6, 12), (7, 13), (10, 16), (11, 17),
        (14, 20), (15, 21), (18, 24), (19, 25), (2, 4), (3, 5), (6, 8), (7, 9), (10, 12), (11, 13),
        (14, 16), (15, 17), (18, 20), (19, 21), (22, 24), (23, 25), (0, 1), (2, 3), (4, 5), (6, 7),
        (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19), (20, 21), (22, 23), (24, 25), (26, 27),
        (1, 16), (3, 18), (5, 20), (7, 22), (9, 24), (11, 26), (5, 12), (7, 14), (9, 16), (11, 18),
        (13, 20), (15, 22), (9, 12), (11, 14), (13, 16), (15, 18), (11, 12), (13, 14), (15, 16),
    );
    [v[12], v[13], v[14], v[15]]
}

/// The median of 31 values per lane, given ranks 12 to 15 of 28 of them (`c`, sorted) and the
/// other 3 (`e`): the 4th smallest of `c ∪ e`, since the 12 values below `c[0]` and the 12
/// above `c[3]` cannot be it. With `e` sorted, the 4th smallest of two sorted lists is
/// `min over i + j = 4 of max(c_i, e_j)` (1-based, `x_0 = −∞`).
#[inline(always)]
fn median_of_ranks_and_3<V: Lanes>(c: &[V; 4], e: [V; 3]) -> V {
    let (a, b) = (e[0].min(e[1]), e[0].max(e[1]));
    let (b, e3) = (b.min(e[2]), b.max(e[2]));
    let (e1, e2) = (a.min(b), a.max(b));
    c[3].min(c[2].max(e1)).min(c[1].max(e2)).min(c[0].max(e3))
}

/// Streaming harmonic/percussive energies of a magnitude spectrogram.
pub struct Hpss {
    /// Magnitudes of the last `RING` frames of the segment; frame `j` at slot `j % RING`, each
    /// `STRIDE` floats of which those past `N_BINS` stay 0.
    ring_s: Vec<f32>,
    /// Percussive enhanced spectra (frequency medians) of the same frames.
    ring_p: Vec<f32>,
    /// The reflect-padded frame split by bin phase mod 4 (phase m at `m·PHASE_LEN`), so that
    /// the values lane l needs are contiguous across lanes.
    phases: Vec<f32>,
    /// Frequency medians of bins ≡ j mod 4 at `j·W·freq_groups(W)`, before interleaving.
    p_phases: Vec<f32>,
    /// The median kernel in use.
    kernel: MedianKernel,
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
    /// An accumulator with no frames yet, on the fastest kernel of this CPU.
    pub fn new() -> Self {
        Self::with_kernel(MedianKernel::best())
    }

    /// An accumulator with no frames yet, on `kernel`, which must be one of
    /// [`MedianKernel::available`] (otherwise the best one is used).
    pub fn with_kernel(kernel: MedianKernel) -> Self {
        let kernel = if MedianKernel::available().contains(&kernel) {
            kernel
        } else {
            MedianKernel::best()
        };
        Self {
            ring_s: vec![0.0; RING * STRIDE],
            ring_p: vec![0.0; RING * STRIDE],
            phases: vec![0.0; 4 * PHASE_LEN],
            p_phases: vec![0.0; STRIDE],
            kernel,
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
        let slot = (self.n % RING) * STRIDE;
        let s = &mut self.ring_s[slot..slot + N_BINS];
        let given = mag.len().min(N_BINS);
        for (d, &v) in s.iter_mut().zip(&mag[..given]) {
            // Non-short-circuit `&`: a branch-free, vectorised select.
            *d = if (v > 0.0) & (v < f32::INFINITY) {
                v
            } else {
                0.0
            };
        }
        s[given..].fill(0.0);
        self.percussive(slot);
        self.n += 1;
        // Frames t..=t+3 are ready once frame t+18 is in; until the segment ends, no index
        // they read is past the end, so the reflection does not depend on the final length.
        while self.emitted + HALF + 4 <= self.n {
            self.emit_quad(self.emitted, self.n);
        }
    }

    /// The current segment ended: emits its last frames with their future context reflected,
    /// and makes the next frame start a new spectrogram.
    pub fn end_segment(&mut self) {
        while self.emitted < self.n {
            self.emit_quad(self.emitted, self.n);
        }
        self.n = 0;
        self.emitted = 0;
    }

    /// `(E_h, E_p)`: energies of the harmonic and percussive components of every frame emitted
    /// so far (call [`Hpss::end_segment`] first to include the last 18 frames of a segment).
    pub fn energies(&self) -> (f64, f64) {
        (self.e_h, self.e_p)
    }

    /// Frequency medians of the frame at ring offset `slot`, into `ring_p`.
    fn percussive(&mut self, slot: usize) {
        let s = &self.ring_s[slot..slot + N_BINS];
        // Bin b sits at padded index b + FREQ_PAD (a multiple of 4): phase b % 4, position
        // FREQ_PAD / 4 + b / 4. Four bins at a time, one into each phase.
        let (ph0, rest) = self.phases.split_at_mut(PHASE_LEN);
        let (ph1, rest) = rest.split_at_mut(PHASE_LEN);
        let (ph2, ph3) = rest.split_at_mut(PHASE_LEN);
        let at = FREQ_PAD / 4;
        let quads = s.chunks_exact(4);
        let last = quads.remainder();
        for (c, q) in quads.enumerate() {
            ph0[at + c] = q[0];
            ph1[at + c] = q[1];
            ph2[at + c] = q[2];
            ph3[at + c] = q[3];
        }
        let c = N_BINS / 4;
        for (m, &v) in last.iter().enumerate() {
            [&mut *ph0, &mut *ph1, &mut *ph2, &mut *ph3][m][at + c] = v;
        }
        let edges = (0..FREQ_PAD).chain(FREQ_PAD + N_BINS..4 * PHASE_LEN);
        for i in edges {
            let v = s[reflect(i as isize - FREQ_PAD as isize, N_BINS)];
            self.phases[(i % 4) * PHASE_LEN + i / 4] = v;
        }
        let (ph, out) = (&self.phases, &mut self.p_phases);
        let dst = &mut self.ring_p[slot..slot + STRIDE];
        match self.kernel {
            MedianKernel::Portable => percussive_medians::<Portable4>(ph, out, dst),
            #[cfg(target_arch = "x86_64")]
            MedianKernel::Sse => percussive_medians::<Sse4>(ph, out, dst),
            // SAFETY: `Avx2` is only selected when the CPU has AVX2 (`with_kernel`).
            #[cfg(target_arch = "x86_64")]
            MedianKernel::Avx2 => unsafe { percussive_medians_avx2(ph, out, dst) },
        }
    }

    /// Time medians of frames `t..=t+3` (those below `len`) of a segment of `len` frames, and
    /// their masked energies. Their windows share the 28 frames `t−12..=t+15`.
    fn emit_quad(&mut self, t: usize, len: usize) {
        let offsets: [usize; 34] = std::array::from_fn(|j| {
            (reflect(t as isize + j as isize - HALF as isize, len) % RING) * STRIDE
        });
        let count = len.saturating_sub(t).min(4);
        let (ring_s, ring_p) = (&self.ring_s[..], &self.ring_p[..]);
        let (h, p) = match self.kernel {
            MedianKernel::Portable => time_medians::<Portable4>(ring_s, ring_p, &offsets, count),
            #[cfg(target_arch = "x86_64")]
            MedianKernel::Sse => time_medians::<Sse4>(ring_s, ring_p, &offsets, count),
            // SAFETY: `Avx2` is only selected when the CPU has AVX2 (`with_kernel`).
            #[cfg(target_arch = "x86_64")]
            MedianKernel::Avx2 => unsafe { time_medians_avx2(ring_s, ring_p, &offsets, count) },
        };
        self.e_h += h;
        self.e_p += p;
        self.emitted = t + 4;
    }
}

/// Frequency medians of one reflect-padded frame split by phase (`ph`), into `dst` in bin
/// order (`out`: scratch). Lane l of group g computes bins `k+4l ..= k+4l+3` (`k = 4·W·g`),
/// whose windows share bins `k+4l−12 ..= k+4l+15`. Bin `k+4l+c` sits at padded index
/// `k+4l+u` with `u = c+16 ≥ 0`: phase `u mod 4`, position `(k+u)/4 + l`.
#[inline(always)]
fn percussive_medians<V: Lanes>(ph: &[f32], out: &mut [f32], dst: &mut [f32]) {
    let groups = freq_groups(V::W);
    let per_phase = V::W * groups;
    for g in 0..groups {
        let k = 4 * V::W * g;
        let at = |u: usize| V::load(&ph[(u % 4) * PHASE_LEN..], k / 4 + u / 4);
        let c = ranks_12_15(std::array::from_fn(|j| at(j + 4)));
        // Bins k+4l−15, −14, −13 and k+4l+16, +17, +18.
        let (l, r) = ([at(1), at(2), at(3)], [at(32), at(33), at(34)]);
        let extras = [
            [l[0], l[1], l[2]],
            [l[1], l[2], r[0]],
            [l[2], r[0], r[1]],
            [r[0], r[1], r[2]],
        ];
        for (j, e) in extras.into_iter().enumerate() {
            median_of_ranks_and_3(&c, e).store(out, j * per_phase + V::W * g);
        }
    }
    // Bin 4c + j = 4·(W·g + l) + j is median j of lane l of group g.
    let (o0, rest) = out.split_at(per_phase);
    let (o1, rest) = rest.split_at(per_phase);
    let (o2, o3) = rest.split_at(per_phase);
    for ((((d, a), b), c), e) in dst[..4 * per_phase]
        .chunks_exact_mut(4)
        .zip(o0)
        .zip(o1)
        .zip(o2)
        .zip(o3)
    {
        d.copy_from_slice(&[*a, *b, *c, *e]);
    }
}

/// [`percussive_medians`] on 8 AVX lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn percussive_medians_avx2(ph: &[f32], out: &mut [f32], dst: &mut [f32]) {
    percussive_medians::<Avx8>(ph, out, dst)
}

/// Time medians of 4 consecutive frames (the first `count` of them) whose 34 context frames
/// sit at `offsets` in `ring_s`, and their masked energies `(E_h, E_p)`. The windows of the 4
/// share the 28 frames `t−12..=t+15`.
#[inline(always)]
fn time_medians<V: Lanes>(
    ring_s: &[f32],
    ring_p: &[f32],
    offsets: &[usize; 34],
    count: usize,
) -> (f64, f64) {
    let mut acc = Energy::default();
    for g in 0..time_groups(V::W) {
        let k = V::W * g;
        let core: [V; 28] = std::array::from_fn(|j| V::load(ring_s, offsets[j + 3] + k));
        let c = ranks_12_15(core);
        // Frames t−15, t−14, t−13 and t+16, t+17, t+18.
        let l: [V; 3] = std::array::from_fn(|i| V::load(ring_s, offsets[i] + k));
        let r: [V; 3] = std::array::from_fn(|i| V::load(ring_s, offsets[31 + i] + k));
        let extras = [
            [l[0], l[1], l[2]],
            [l[1], l[2], r[0]],
            [l[2], r[0], r[1]],
            [r[0], r[1], r[2]],
        ];
        for (j, e) in extras.into_iter().enumerate().take(count) {
            let h = median_of_ranks_and_3(&c, e);
            let o = offsets[HALF + j];
            acc.add(V::load(ring_s, o + k), h, V::load(ring_p, o + k));
        }
    }
    (acc.h.iter().sum(), acc.p.iter().sum())
}

/// [`time_medians`] on 8 AVX lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn time_medians_avx2(
    ring_s: &[f32],
    ring_p: &[f32],
    offsets: &[usize; 34],
    count: usize,
) -> (f64, f64) {
    time_medians::<Avx8>(ring_s, ring_p, offsets, count)
}

/// Per-lane `f64` sums of the masked energies (lanes past `N_BINS` hold `S = 0`). Lane `l`
/// of a `W`-lane kernel sums into slot `l`; the 4-lane kernels use the first 4 slots.
#[derive(Default)]
struct Energy {
    h: [f64; MAX_W],
    p: [f64; MAX_W],
}

impl Energy {
    /// Adds the masked energies of `W` bins: magnitudes `s`, enhanced spectra `h` and `p`.
    /// The masks are computed on the vectors (the same IEEE operations as [`soft_masks`], lane
    /// by lane, so the same bits); only the `f64` sums go through the lanes one by one.
    #[inline(always)]
    fn add<V: Lanes>(&mut self, s: V, h: V, p: V) {
        let (mh, mp) = soft_masks_lanes(h, p, h.max(p));
        let (mut ca, mut cp) = ([0f32; MAX_W], [0f32; MAX_W]);
        s.mul(mh).store(&mut ca, 0);
        s.mul(mp).store(&mut cp, 0);
        for l in 0..V::W {
            let (ch, cp) = (f64::from(ca[l]), f64::from(cp[l]));
            self.h[l] += ch * ch;
            self.p[l] += cp * cp;
        }
    }
}

/// [`soft_masks`] on every lane.
#[inline(always)]
fn soft_masks_lanes<V: Lanes>(h: V, p: V, z: V) -> (V, V) {
    let z = z.below_to(f32::MIN_POSITIVE, 1.0);
    let (hz, pz) = (h.div(z), p.div(z));
    let (a, b) = (hz.mul(hz), pz.mul(pz));
    let d = a.add(b).max(V::splat(1.0));
    (a.div(d), b.div(d))
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
/// it for an `f32` spectrogram, given `z = max(h, p)`: both sides are divided by `z` first so
/// the squares cannot overflow or underflow; where `z` is below the smallest normal librosa
/// divides by 1 and sets both masks to 0. Written without branches so it vectorises.
#[cfg(test)]
fn soft_masks(h: f32, p: f32, z: f32) -> (f32, f32) {
    let z = if z < f32::MIN_POSITIVE { 1.0 } else { z };
    let (hz, pz) = (h / z, p / z);
    let (a, b) = (hz * hz, pz * pz);
    // A normal z equals h or p, so one of a, b is exactly 1 and the sum is at least 1: the
    // `max` with 1 changes nothing there. Below it, h and p are subnormal or 0, their squares
    // are 0, and the masks come out 0 as librosa's.
    let sum = a + b;
    let d = if sum > 1.0 { sum } else { 1.0 };
    (a / d, b / d)
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

impl Extractor for Hpss {
    fn name(&self) -> &'static str {
        "hpss"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &["harmonic_ratio"]
    }

    fn needs(&self) -> Needs {
        Needs {
            frames: true,
            ..Needs::default()
        }
    }

    fn push_frame(&mut self, frame: &Frame<'_>) {
        self.push_frame(frame.mag);
    }

    fn end_segment(&mut self) {
        Hpss::end_segment(self);
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        let (e_h, e_p) = self.energies();
        out.set("harmonic_ratio", harmonic_ratio(e_h, e_p));
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Random magnitudes with ties and zeros (coarse levels in some bins).
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
        run_on(MedianKernel::best(), segments)
    }

    fn run_on(kernel: MedianKernel, segments: &[Vec<Vec<f32>>]) -> (f64, f64) {
        let mut h = Hpss::with_kernel(kernel);
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
    fn percussive_matches_reference() {
        for kernel in MedianKernel::available() {
            for f in random_spec(4, 11) {
                let mut h = Hpss::with_kernel(kernel);
                h.push_frame(&f);
                assert_eq!(h.ring_p[..N_BINS], median_filter_ref(&f)[..], "{kernel:?}");
            }
        }
    }

    /// Ranks 12..=15 of 28 values and the median of 31, lane by lane, on lanes of type `V`.
    fn check_network<V: Lanes>() {
        let mut rng = Rng(78);
        let w = V::W;
        for _ in 0..1000 {
            let vals: Vec<Vec<f32>> = (0..31)
                .map(|_| {
                    (0..w)
                        .map(|l| match l % 4 {
                            0 => (rng.next() * 3.0).floor() as f32,
                            1 => rng.next() as f32,
                            2 if rng.next() < 0.7 => 0.0,
                            2 => rng.next() as f32,
                            _ => (rng.next() * 40.0).floor() as f32,
                        })
                        .collect()
                })
                .collect();
            let v: [V; 28] = std::array::from_fn(|j| V::load(&vals[j], 0));
            let c = ranks_12_15(v);
            let e: [V; 3] = std::array::from_fn(|j| V::load(&vals[28 + j], 0));
            let mut m = vec![0.0; w];
            median_of_ranks_and_3(&c, e).store(&mut m, 0);
            let c: Vec<Vec<f32>> = c
                .iter()
                .map(|x| {
                    let mut a = vec![0.0; w];
                    x.store(&mut a, 0);
                    a
                })
                .collect();
            for l in 0..w {
                let mut col: Vec<f32> = vals[..28].iter().map(|x| x[l]).collect();
                col.sort_by(f32::total_cmp);
                let got: Vec<f32> = c.iter().map(|x| x[l]).collect();
                assert_eq!(got, col[12..16]);
                let mut all: Vec<f32> = vals.iter().map(|x| x[l]).collect();
                all.sort_by(f32::total_cmp);
                assert_eq!(m[l], all[HALF]);
            }
        }
    }

    #[test]
    fn network_selects_ranks_12_to_15_and_median() {
        check_network::<Portable4>();
        #[cfg(target_arch = "x86_64")]
        check_network::<Sse4>();
        // The AVX2 lanes only run inside an AVX2-enabled function, on a CPU that has it.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn avx2() {
                check_network::<Avx8>();
            }
            // SAFETY: the CPU has AVX2.
            unsafe { avx2() }
        }
    }

    /// The masks of every kernel's lanes, bit for bit those of the scalar definition, on
    /// ordinary, equal, zero, subnormal and huge values.
    #[test]
    fn vector_masks_match_the_scalar_ones() {
        let vals = [
            0.0f32, 1e-45, 1e-39, 1.2e-38, 1e-30, 1e-6, 0.1, 0.5, 1.0, 3.7, 1e20, 3e38,
        ];
        let pairs: Vec<(f32, f32)> = vals
            .iter()
            .flat_map(|&h| vals.iter().map(move |&p| (h, p)))
            .collect();
        fn check<V: Lanes>(pairs: &[(f32, f32)]) {
            for chunk in pairs.chunks(V::W) {
                let (mut h, mut p) = ([0f32; MAX_W], [0f32; MAX_W]);
                for (l, &(a, b)) in chunk.iter().enumerate() {
                    (h[l], p[l]) = (a, b);
                }
                let (hv, pv) = (V::load(&h, 0), V::load(&p, 0));
                let (mh, mp) = soft_masks_lanes(hv, pv, hv.max(pv));
                let (mut gh, mut gp) = ([0f32; MAX_W], [0f32; MAX_W]);
                mh.store(&mut gh, 0);
                mp.store(&mut gp, 0);
                for l in 0..chunk.len() {
                    let (wh, wp) = soft_masks(h[l], p[l], h[l].max(p[l]));
                    assert_eq!(gh[l].to_bits(), wh.to_bits(), "h={} p={}", h[l], p[l]);
                    assert_eq!(gp[l].to_bits(), wp.to_bits(), "h={} p={}", h[l], p[l]);
                }
            }
        }
        check::<Portable4>(&pairs);
        #[cfg(target_arch = "x86_64")]
        {
            check::<Sse4>(&pairs);
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2(pairs: &[(f32, f32)]) {
                    check::<Avx8>(pairs)
                }
                // SAFETY: the CPU has AVX2 (checked just above).
                unsafe { avx2(&pairs) }
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_portable_one() {
        let kernels = MedianKernel::available();
        println!("kernels on this CPU: {kernels:?}");
        #[cfg(target_arch = "x86_64")]
        assert!(kernels.contains(&MedianKernel::Sse));
        let cases: Vec<Vec<Vec<Vec<f32>>>> = vec![
            vec![random_spec(50, 31)],
            vec![random_spec(3, 32), random_spec(40, 33), random_spec(1, 34)],
            vec![vec![vec![0.0; N_BINS]; 20], vec![vec![1e-40; N_BINS]; 20]],
        ];
        for segs in &cases {
            let mut want = Hpss::with_kernel(MedianKernel::Portable);
            let mut got: Vec<Hpss> = kernels.iter().map(|&k| Hpss::with_kernel(k)).collect();
            for seg in segs {
                for f in seg {
                    want.push_frame(f);
                    for h in &mut got {
                        h.push_frame(f);
                        // The frequency medians are the same bit for bit.
                        let slot = ((h.n - 1) % RING) * STRIDE;
                        assert_eq!(
                            h.ring_p[slot..slot + N_BINS],
                            want.ring_p[slot..slot + N_BINS],
                            "{:?}",
                            h.kernel
                        );
                    }
                }
                want.end_segment();
                got.iter_mut().for_each(Hpss::end_segment);
            }
            // The energies differ only by the order of the f64 sums.
            for h in &got {
                let (a, b) = (h.energies(), want.energies());
                for (x, y) in [(a.0, b.0), (a.1, b.1)] {
                    assert!(
                        (x - y).abs() <= 1e-12 * y.abs(),
                        "{:?}: {a:?} vs {b:?}",
                        h.kernel
                    );
                }
            }
        }
    }

    #[test]
    fn matches_reference_on_random_spectrograms() {
        for (frames, seed) in [(50, 1), (3, 2), (1, 3), (15, 4), (16, 5), (17, 6), (31, 7)] {
            let spec = random_spec(frames, seed);
            for kernel in MedianKernel::available() {
                assert_close(
                    run_on(kernel, std::slice::from_ref(&spec)),
                    hpss_ref(&spec),
                    &format!("{kernel:?}, {frames} frames"),
                );
            }
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
        let window: Vec<f32> = crate::dsp::hann(N_FFT)
            .into_iter()
            .map(|w| w as f32)
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

    /// CPU time of this thread in seconds (the machine is shared: wall time overstates),
    /// from the scheduler's statistics; falls back to wall time elsewhere.
    pub(crate) fn thread_cpu_secs() -> Option<f64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
        Some(ns * 1e-9)
    }

    /// `cargo test --release -p sonoprint-engine --lib hpss -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing_per_frame() {
        // Four minutes of frames; random magnitudes; every kernel of this CPU.
        let pool = random_spec(64, 99);
        let frames = 10_336;
        for kernel in MedianKernel::available() {
            let mut h = Hpss::with_kernel(kernel);
            let wall = std::time::Instant::now();
            let cpu = thread_cpu_secs();
            for t in 0..frames {
                h.push_frame(&pool[(t * 7) % pool.len()]);
            }
            h.end_segment();
            let wall = wall.elapsed().as_secs_f64();
            let cpu = thread_cpu_secs().zip(cpu).map(|(b, a)| b - a);
            let (e_h, e_p) = h.energies();
            println!(
                "HPSS {kernel:?}: {frames} frames, {:.2} µs/frame CPU ({:.2} wall), ratio {}",
                cpu.unwrap_or(wall) * 1e6 / frames as f64,
                wall * 1e6 / frames as f64,
                harmonic_ratio(e_h, e_p)
            );
            // The parts: frequency medians alone.
            let cpu0 = thread_cpu_secs().unwrap_or(0.0);
            for t in 0..frames {
                let slot = (t % RING) * STRIDE;
                h.percussive(slot);
            }
            let cpu1 = thread_cpu_secs().unwrap_or(0.0);
            println!(
                "  of which frequency medians {:.2} µs/frame",
                (cpu1 - cpu0) * 1e6 / frames as f64
            );
        }
    }
}
