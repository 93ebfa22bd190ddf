//! BS.1770-4 / EBU R128 loudness (`docs/fingerprint.md`, rows 8 and 22): integrated loudness
//! with gating blocks pooled over the segments, and short-term loudness every second for its
//! variation.
//!
//! Written here rather than taken from the `ebur128` crate, which computes the same thing (its
//! results are the reference of the tests below) but cost 14 % of a whole full-mode analysis:
//! this meter keeps only what the two dimensions need (100 ms sub-block energies) and filters
//! each channel in a tight loop.

use super::{Extractor, Needs, Output, Summary};

/// K-weighting: the BS.1770 pre-filter (high shelf) and RLB high-pass, as two biquads whose
/// coefficients are derived for any sample rate (the analog prototypes of libebur128).
#[derive(Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

fn k_weighting(rate: f64) -> [Biquad; 2] {
    let (f0, g, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let vh = 10f64.powf(g / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    let (f0, q) = (38.13547087602444, 0.5003270373238773);
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let highpass = Biquad {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    [shelf, highpass]
}

/// Filter state of one channel, two stages in direct form I: the last two inputs and outputs
/// of each.
///
/// Direct form I rather than the transposed form II of libebur128: both compute the same
/// difference equation (to `f64` rounding, ~1e-16 relative), but in form I the only work that
/// waits on the previous output is one multiply and one subtract, so the recurrence runs in
/// about two thirds of the time (this loop is latency-bound: the state cannot be vectorised).
#[derive(Clone, Copy, Default)]
struct State {
    /// Per stage: `x[n-1]`, `x[n-2]`, `y[n-1]`, `y[n-2]`.
    s: [[f64; 4]; 2],
}

impl State {
    #[inline]
    fn step(&mut self, f: &[Biquad; 2], x: f64) -> f64 {
        let mut v = x;
        for (st, bq) in self.s.iter_mut().zip(f) {
            let [x1, x2, y1, y2] = *st;
            // Everything but the `y[n-1]` term is ready before `y[n-1]` is.
            let ahead = bq.b[0] * v + bq.b[1] * x1 + bq.b[2] * x2 - bq.a[1] * y2;
            let y = ahead - bq.a[0] * y1;
            *st = [v, x1, y, y1];
            v = y;
        }
        v
    }
}

/// Two `f64` lanes (left and right) with the arithmetic the filter needs.
trait Pair: Copy {
    fn new(l: f64, r: f64) -> Self;
    fn splat(v: f64) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `self · a + c`, rounded twice unless the type fuses it.
    #[inline(always)]
    fn mul_add(self, a: Self, c: Self) -> Self {
        c.add(self.mul(a))
    }
    /// `c − self · a`, rounded twice unless the type fuses it.
    #[inline(always)]
    fn neg_mul_add(self, a: Self, c: Self) -> Self {
        c.sub(self.mul(a))
    }
    fn lanes(self) -> [f64; 2];
}

/// Plain arrays: compiled and tested on every target, the reference of the vector form.
#[derive(Clone, Copy)]
struct PortablePair([f64; 2]);

impl Pair for PortablePair {
    #[inline(always)]
    fn new(l: f64, r: f64) -> Self {
        PortablePair([l, r])
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        PortablePair([v; 2])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        PortablePair([self.0[0] + o.0[0], self.0[1] + o.0[1]])
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        PortablePair([self.0[0] - o.0[0], self.0[1] - o.0[1]])
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        PortablePair([self.0[0] * o.0[0], self.0[1] * o.0[1]])
    }
    #[inline(always)]
    fn lanes(self) -> [f64; 2] {
        self.0
    }
}

/// One SSE2 register (SSE2 is part of the x86-64 baseline, so always present).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Sse2Pair(std::arch::x86_64::__m128d);

#[cfg(target_arch = "x86_64")]
impl Pair for Sse2Pair {
    #[inline(always)]
    fn new(l: f64, r: f64) -> Self {
        // SAFETY (every `unsafe` of this impl): SSE2 is enabled on every x86-64 target.
        Sse2Pair(unsafe { std::arch::x86_64::_mm_set_pd(r, l) })
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        Sse2Pair(unsafe { std::arch::x86_64::_mm_set1_pd(v) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Sse2Pair(unsafe { std::arch::x86_64::_mm_add_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Sse2Pair(unsafe { std::arch::x86_64::_mm_sub_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Sse2Pair(unsafe { std::arch::x86_64::_mm_mul_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn lanes(self) -> [f64; 2] {
        let mut out = [0.0; 2];
        // SAFETY: as above; `out` has room for the two lanes.
        unsafe { std::arch::x86_64::_mm_storeu_pd(out.as_mut_ptr(), self.0) };
        out
    }
}

/// [`Sse2Pair`] with fused multiply-adds (one rounding instead of two, so the last bits
/// differ from the other pairs; tested within 1e-12). Only used inside
/// [`filter_stereo_fma`], which is only called when the CPU has FMA; these methods are
/// always inlined into it.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct FmaPair(Sse2Pair);

#[cfg(target_arch = "x86_64")]
impl Pair for FmaPair {
    #[inline(always)]
    fn new(l: f64, r: f64) -> Self {
        FmaPair(Sse2Pair::new(l, r))
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        FmaPair(Sse2Pair::splat(v))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        FmaPair(self.0.add(o.0))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        FmaPair(self.0.sub(o.0))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        FmaPair(self.0.mul(o.0))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, c: Self) -> Self {
        // SAFETY: only reached from `filter_stereo_fma`, called after detecting FMA.
        FmaPair(Sse2Pair(unsafe {
            std::arch::x86_64::_mm_fmadd_pd(self.0 .0, a.0 .0, c.0 .0)
        }))
    }
    #[inline(always)]
    fn neg_mul_add(self, a: Self, c: Self) -> Self {
        // SAFETY: as `mul_add`.
        FmaPair(Sse2Pair(unsafe {
            std::arch::x86_64::_mm_fnmadd_pd(self.0 .0, a.0 .0, c.0 .0)
        }))
    }
    #[inline(always)]
    fn lanes(self) -> [f64; 2] {
        self.0.lanes()
    }
}

/// The filter states of two channels side by side (lane 0 left, lane 1 right), for stereo.
///
/// [`State::step`]'s operations lane by lane, in the same order: one two-lane vector
/// instruction per operation, half the instructions of filtering the two channels in turn.
/// With [`PortablePair`] and [`Sse2Pair`] each lane's output is [`State::step`]'s to the bit;
/// with [`FmaPair`] each multiply-add rounds once (tested against both).
#[derive(Clone, Copy)]
struct StatePair<P: Pair> {
    /// Per stage: `x[n-1]`, `x[n-2]`, `y[n-1]`, `y[n-2]`, each for both channels.
    s: [[P; 4]; 2],
    /// Per stage: `b0`, `b1`, `b2`, `a1`, `a2` in both lanes.
    c: [[P; 5]; 2],
}

impl<P: Pair> StatePair<P> {
    fn new(f: &[Biquad; 2], l: &State, r: &State) -> Self {
        StatePair {
            s: std::array::from_fn(|st| std::array::from_fn(|k| P::new(l.s[st][k], r.s[st][k]))),
            c: std::array::from_fn(|st| {
                let [b0, b1, b2] = f[st].b;
                let [a1, a2] = f[st].a;
                [b0, b1, b2, a1, a2].map(P::splat)
            }),
        }
    }

    fn split(&self) -> (State, State) {
        let lane = |c: usize| State {
            s: std::array::from_fn(|st| std::array::from_fn(|k| self.s[st][k].lanes()[c])),
        };
        (lane(0), lane(1))
    }

    /// Filters interleaved stereo frames, returning the sum of the squared outputs per channel.
    #[inline(always)]
    fn run(&mut self, frames: &[f32]) -> [f64; 2] {
        let mut sq = P::splat(0.0);
        for fr in frames.chunks_exact(2) {
            let mut v = P::new(fr[0] as f64, fr[1] as f64);
            for (st, [b0, b1, b2, a1, a2]) in self.s.iter_mut().zip(self.c) {
                let [x1, x2, y1, y2] = *st;
                // `b0·v + b1·x1 + b2·x2 − a2·y2 − a1·y1`, in `State::step`'s order.
                let ahead = a2.neg_mul_add(y2, b2.mul_add(x2, b1.mul_add(x1, b0.mul(v))));
                let y = a1.neg_mul_add(y1, ahead);
                *st = [v, x1, y, y1];
                v = y;
            }
            sq = v.mul_add(v, sq);
        }
        sq.lanes()
    }
}

/// Filters interleaved stereo `frames` from states `l` and `r` on lanes `P`; returns the sums
/// of squared outputs.
#[inline(always)]
fn filter_stereo_on<P: Pair>(
    f: &[Biquad; 2],
    l: &mut State,
    r: &mut State,
    frames: &[f32],
) -> [f64; 2] {
    let mut pair = StatePair::<P>::new(f, l, r);
    let sq = pair.run(frames);
    (*l, *r) = pair.split();
    sq
}

/// [`filter_stereo_on`] with fused multiply-adds.
///
/// # Safety
/// The CPU must support FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn filter_stereo_fma(
    f: &[Biquad; 2],
    l: &mut State,
    r: &mut State,
    frames: &[f32],
) -> [f64; 2] {
    filter_stereo_on::<FmaPair>(f, l, r, frames)
}

/// The pairs, fastest first: FMA where the CPU has it (detected at run time), else SSE2 on
/// x86-64, else portable. The FMA loop is about twice as fast: the filter is bound by the
/// latency of its recurrence, one fused operation per stage instead of a multiply and a
/// subtraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairKind {
    // Chosen on other targets, and tested on every one.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Portable,
    #[cfg(target_arch = "x86_64")]
    Sse2,
    #[cfg(target_arch = "x86_64")]
    Fma,
}

impl PairKind {
    fn best() -> PairKind {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("fma") {
                return PairKind::Fma;
            }
            PairKind::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        PairKind::Portable
    }

    /// Every pair this CPU runs.
    #[cfg(test)]
    fn available() -> Vec<PairKind> {
        let mut v = vec![PairKind::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(PairKind::Sse2);
            if std::arch::is_x86_feature_detected!("fma") {
                v.push(PairKind::Fma);
            }
        }
        v
    }

    fn filter(self, f: &[Biquad; 2], l: &mut State, r: &mut State, x: &[f32]) -> [f64; 2] {
        match self {
            PairKind::Portable => filter_stereo_on::<PortablePair>(f, l, r, x),
            #[cfg(target_arch = "x86_64")]
            PairKind::Sse2 => filter_stereo_on::<Sse2Pair>(f, l, r, x),
            // SAFETY: `Fma` is only chosen by `best` after detecting FMA (and by the tests
            // only when the CPU has it).
            #[cfg(target_arch = "x86_64")]
            PairKind::Fma => unsafe { filter_stereo_fma(f, l, r, x) },
        }
    }
}

fn lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

pub struct Loudness {
    filters: [Biquad; 2],
    /// How stereo is filtered.
    pair: PairKind,
    /// BS.1770 weight of each channel (0 for the LFE, 2 for the one channel of a mono file).
    weights: Vec<f64>,
    states: Vec<State>,
    /// Samples per 100 ms sub-block.
    sub_len: usize,
    /// Weighted mean-square energy of each complete sub-block of the current segment.
    subs: Vec<f64>,
    /// Sum of the weighted squares of the sub-block in progress, and its length.
    acc: Vec<f64>,
    acc_len: usize,
    /// Energies of the 400 ms gating blocks (75 % overlap) of all segments.
    blocks: Vec<f64>,
    short_term: Vec<f64>,
}

impl Loudness {
    /// `lfe` is excluded; a mono file is measured as dual mono (it is heard on two speakers).
    pub fn new(rate: u32, channels: usize, lfe: Option<usize>) -> Loudness {
        let channels = channels.max(1);
        let weights = (0..channels)
            .map(|i| match (channels, i) {
                (1, _) => 2.0,
                _ if Some(i) == lfe => 0.0,
                (_, 0..=2) => 1.0,
                // Surround channels: +1.5 dB.
                _ => 1.41,
            })
            .collect();
        Loudness {
            filters: k_weighting(rate as f64),
            pair: PairKind::best(),
            weights,
            states: vec![State::default(); channels],
            sub_len: (rate as usize / 10).max(1),
            subs: Vec::new(),
            acc: vec![0.0; channels],
            acc_len: 0,
            blocks: Vec::new(),
            short_term: Vec::new(),
        }
    }

    pub fn begin_segment(&mut self) {
        self.states.iter_mut().for_each(|s| *s = State::default());
        self.subs.clear();
        self.acc.iter_mut().for_each(|a| *a = 0.0);
        self.acc_len = 0;
    }

    /// Adds interleaved samples (whole frames).
    pub fn push(&mut self, x: &[f32]) {
        let ch = self.weights.len();
        let mut rest = x;
        while rest.len() >= ch {
            let frames = (self.sub_len - self.acc_len).min(rest.len() / ch);
            let (now, later) = rest.split_at(frames * ch);
            rest = later;
            if ch == 2 {
                // Both channels in the lanes of one vector.
                let (l, r) = self.states.split_at_mut(1);
                let sq = self.pair.filter(&self.filters, &mut l[0], &mut r[0], now);
                self.acc[0] += sq[0];
                self.acc[1] += sq[1];
            } else {
                self.filter_each(now);
            }
            self.acc_len += frames;
            if self.acc_len == self.sub_len {
                self.close_sub_block();
            }
        }
    }

    /// Filters every weighted channel of `now` (interleaved frames) in turn.
    fn filter_each(&mut self, now: &[f32]) {
        let ch = self.weights.len();
        {
            for c in 0..ch {
                if self.weights[c] == 0.0 {
                    continue;
                }
                let (mut st, f) = (self.states[c], &self.filters);
                let mut sq = 0f64;
                for v in now.iter().skip(c).step_by(ch) {
                    let y = st.step(f, *v as f64);
                    sq += y * y;
                }
                self.states[c] = st;
                self.acc[c] += sq;
            }
        }
    }

    fn close_sub_block(&mut self) {
        let n = self.sub_len as f64;
        let e: f64 = self
            .acc
            .iter()
            .zip(&self.weights)
            .map(|(a, w)| w * a / n)
            .sum();
        self.acc.iter_mut().for_each(|a| *a = 0.0);
        self.acc_len = 0;
        self.subs.push(e);
        let k = self.subs.len();
        // A 400 ms gating block ends at every 100 ms step once four sub-blocks exist.
        if k >= 4 {
            self.blocks
                .push(self.subs[k - 4..].iter().sum::<f64>() / 4.0);
        }
        // Short-term loudness (3 s window) at every whole second from 3 s on.
        if k >= 30 && k.is_multiple_of(10) {
            self.short_term
                .push(lufs(self.subs[k - 30..].iter().sum::<f64>() / 30.0));
        }
    }

    /// Ends a segment: an incomplete sub-block is dropped, so no block straddles two excerpts.
    pub fn end_segment(&mut self) {
        self.subs.clear();
        self.acc.iter_mut().for_each(|a| *a = 0.0);
        self.acc_len = 0;
    }

    /// Integrated loudness over all segments: absolute gate −70 LUFS, relative gate −10 LU;
    /// −70 when nothing passes the gate.
    pub fn integrated(&self) -> f64 {
        let abs_gate = 10f64.powf((-70.0 + 0.691) / 10.0);
        let above: Vec<f64> = self
            .blocks
            .iter()
            .copied()
            .filter(|&e| e > abs_gate)
            .collect();
        if above.is_empty() {
            return -70.0;
        }
        let rel_gate = above.iter().sum::<f64>() / above.len() as f64 * 10f64.powf(-10.0 / 10.0);
        let kept: Vec<f64> = above.into_iter().filter(|&e| e > rel_gate).collect();
        if kept.is_empty() {
            return -70.0;
        }
        let l = lufs(kept.iter().sum::<f64>() / kept.len() as f64);
        if l.is_finite() {
            l.clamp(-70.0, 0.0)
        } else {
            -70.0
        }
    }

    /// Population std of the short-term values above −70 LUFS and within 20 LU of the
    /// integrated loudness (EBU Tech 3342 gating), clipped to [0, 20].
    pub fn variation(&self, integrated: f64) -> f64 {
        let kept = self
            .short_term
            .iter()
            .copied()
            .filter(|&v| v.is_finite() && v > -70.0 && v >= integrated - 20.0);
        if kept.clone().count() < 2 {
            return 0.0;
        }
        super::native::pop_std(kept).clamp(0.0, 20.0)
    }
}

impl Extractor for Loudness {
    fn name(&self) -> &'static str {
        "loudness"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &["lufs", "loudness_variation_std"]
    }

    fn needs(&self) -> Needs {
        Needs {
            interleaved: true,
            ..Needs::default()
        }
    }

    fn begin_segment(&mut self) {
        Loudness::begin_segment(self);
    }

    fn push_interleaved(&mut self, x: &[f32]) {
        self.push(x);
    }

    fn end_segment(&mut self) {
        Loudness::end_segment(self);
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        let lufs = self.integrated();
        out.set("lufs", lufs);
        out.set("loudness_variation_std", self.variation(lufs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
            })
            .collect()
    }

    /// Same signal through the `ebur128` crate (a port of libebur128).
    fn reference(x: &[f32], rate: u32, ch: usize) -> (f64, Vec<f64>) {
        use ebur128::{EbuR128, Mode};
        let mut m = EbuR128::new(ch as u32, rate, Mode::I | Mode::S).unwrap();
        let mut st = Vec::new();
        for (i, sec) in x.chunks(rate as usize * ch).enumerate() {
            m.add_frames_f32(sec).unwrap();
            if i >= 2 && sec.len() == rate as usize * ch {
                st.push(m.loudness_shortterm().unwrap());
            }
        }
        (m.loudness_global().unwrap(), st)
    }

    #[test]
    fn matches_libebur128() {
        for (rate, ch) in [(44100u32, 2usize), (48000, 2), (22050, 2), (96000, 2)] {
            // Noise with a level change, so gating and short-term values matter.
            let mut x = noise(rate as usize * ch * 12, 7);
            for v in x[rate as usize * ch * 6..].iter_mut() {
                *v *= 0.2;
            }
            let (want_i, want_st) = reference(&x, rate, ch);
            let mut l = Loudness::new(rate, ch, None);
            l.begin_segment();
            for c in x.chunks(3001 * ch) {
                l.push(c);
            }
            l.end_segment();
            let got = l.integrated();
            assert!((got - want_i).abs() < 0.02, "{rate} Hz: {got} vs {want_i}");
            assert_eq!(l.short_term.len(), want_st.len());
            for (a, b) in l.short_term.iter().zip(&want_st) {
                assert!((a - b).abs() < 0.02, "{rate} Hz short-term {a} vs {b}");
            }
        }
    }

    #[test]
    fn every_pair_filters_as_the_scalar_state() {
        let x = noise(44100 * 2 * 3, 3);
        let f = k_weighting(44100.0);
        // The scalar filter, summing per chunk as the pairs do.
        let (mut l, mut r) = (State::default(), State::default());
        let mut want = Vec::new();
        for c in x.chunks(2 * 1001) {
            let mut sq = [0f64; 2];
            for fr in c.chunks_exact(2) {
                let (a, b) = (l.step(&f, fr[0] as f64), r.step(&f, fr[1] as f64));
                sq[0] += a * a;
                sq[1] += b * b;
            }
            want.push(sq);
        }
        let kinds = PairKind::available();
        assert!(kinds.len() >= 2 || !cfg!(target_arch = "x86_64"));
        for kind in kinds {
            let (mut pl, mut pr) = (State::default(), State::default());
            let got: Vec<[f64; 2]> = x
                .chunks(2 * 1001)
                .map(|c| kind.filter(&f, &mut pl, &mut pr, c))
                .collect();
            let exact = !matches!(kind, PairKind::Fma);
            let close = |a: f64, b: f64| {
                if exact {
                    a.to_bits() == b.to_bits()
                } else {
                    // One rounding less per step: the high-pass's poles near 1 carry the
                    // difference along, ~1e-12 relative after 3 s.
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-6)
                }
            };
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    close(g[0], w[0]) && close(g[1], w[1]),
                    "{kind:?}: {g:?} vs {w:?}"
                );
            }
            for (p, s) in [(pl, l), (pr, r)] {
                for (a, b) in p.s.iter().flatten().zip(s.s.iter().flatten()) {
                    assert!(close(*a, *b), "{kind:?} state {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn silence_reads_minus_70() {
        let mut l = Loudness::new(44100, 2, None);
        l.begin_segment();
        l.push(&vec![0.0; 44100 * 2 * 5]);
        l.end_segment();
        assert_eq!(l.integrated(), -70.0);
        assert_eq!(l.variation(-70.0), 0.0);
    }
}
