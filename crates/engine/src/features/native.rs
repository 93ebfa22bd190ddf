//! Dimensions read from every sample at the file's own rate: crest factor, the per-second block
//! statistics and the stereo image (`docs/fingerprint.md`, rows 9 and 21–25).

use super::{Extractor, Needs, Output, Summary};

/// −60 dBFS as an RMS amplitude.
pub const ACTIVE_RMS: f64 = 1e-3;

/// Peak, RMS, 1 s blocks and the stereo sums, over all samples pushed.
pub struct Native {
    channels: usize,
    rate: usize,
    peak: f32,
    sum_sq: f64,
    samples: u64,
    // Stereo: L = channel 0, R = channel 1 (R = L for mono).
    sum_l: f64,
    sum_r: f64,
    sum_ll: f64,
    sum_rr: f64,
    sum_lr: f64,
    sum_mid: f64,
    sum_side: f64,
    frames: u64,
    // The 1 s block in progress.
    block_len: usize,
    block_peak: f32,
    block_sq: f64,
    /// (crest dB, peak) of every block above −60 dBFS, the last shorter one included.
    blocks: Vec<(f32, f32)>,
}

impl Native {
    pub fn new(rate: u32, channels: usize) -> Native {
        Native {
            channels: channels.max(1),
            rate: rate as usize,
            peak: 0.0,
            sum_sq: 0.0,
            samples: 0,
            sum_l: 0.0,
            sum_r: 0.0,
            sum_ll: 0.0,
            sum_rr: 0.0,
            sum_lr: 0.0,
            sum_mid: 0.0,
            sum_side: 0.0,
            frames: 0,
            block_len: 0,
            block_peak: 0.0,
            block_sq: 0.0,
            blocks: Vec::new(),
        }
    }

    /// Adds interleaved samples (whole frames).
    pub fn push(&mut self, x: &[f32]) {
        let ch = self.channels;
        let mut rest = x;
        while !rest.is_empty() {
            // Work one block-piece at a time so the block bookkeeping stays out of the inner loop.
            let frames = (self.rate - self.block_len).min(rest.len() / ch);
            if frames == 0 {
                break;
            }
            let (now, later) = rest.split_at(frames * ch);
            rest = later;
            let (mut pk, mut sq) = (0f32, 0f64);
            // Eight lanes of f32 partial sums per 4096 samples: they vectorise, and the f64
            // total keeps the precision.
            for part in now.chunks(4096) {
                let (mut lp, mut ls) = ([0f32; 8], [0f32; 8]);
                let it = part.chunks_exact(8);
                for &v in it.remainder() {
                    let a = v.abs();
                    pk = if a > pk { a } else { pk };
                    sq += (v * v) as f64;
                }
                for c in it {
                    for l in 0..8 {
                        let a = c[l].abs();
                        lp[l] = if a > lp[l] { a } else { lp[l] };
                        ls[l] += c[l] * c[l];
                    }
                }
                pk = lp.iter().fold(pk, |m, &v| if v > m { v } else { m });
                sq += ls.iter().map(|&v| v as f64).sum::<f64>();
            }
            self.peak = self.peak.max(pk);
            self.sum_sq += sq;
            self.samples += now.len() as u64;
            self.block_peak = self.block_peak.max(pk);
            self.block_sq += sq;
            self.block_len += frames;
            self.stereo(now);
            if self.block_len == self.rate {
                self.close_block();
            }
        }
    }

    fn stereo(&mut self, x: &[f32]) {
        let ch = self.channels;
        // Sums: L, R, L², R², LR, M², S². Four frames per step in separate lanes so the
        // additions vectorise; f64 totals per 1024 frames.
        let mut tot = [0f64; 7];
        #[inline(always)]
        fn add(lanes: &mut [[f32; 4]; 7], k: usize, l: f32, r: f32) {
            let (m, s) = (0.5 * (l + r), 0.5 * (l - r));
            lanes[0][k] += l;
            lanes[1][k] += r;
            lanes[2][k] += l * l;
            lanes[3][k] += r * r;
            lanes[4][k] += l * r;
            lanes[5][k] += m * m;
            lanes[6][k] += s * s;
        }
        for part in x.chunks(ch * 1024) {
            let mut lanes = [[0f32; 4]; 7];
            // Stereo, four frames at a time with the lane of each fixed (frame `i` still goes
            // to lane `i % 4`, so the sums are the same to the bit): the lanes stay in
            // registers and vectorise, where a lane chosen at run time went through memory.
            let (fours, rest) = if ch == 2 {
                let c = part.chunks_exact(8);
                let rest = c.remainder();
                for f in c {
                    for k in 0..4 {
                        add(&mut lanes, k, f[2 * k], f[2 * k + 1]);
                    }
                }
                (part.len() - rest.len(), rest)
            } else {
                (0, part)
            };
            for (i, fr) in rest.chunks_exact(ch).enumerate() {
                let l = fr[0];
                let r = if ch > 1 { fr[1] } else { l };
                add(&mut lanes, (fours / ch + i) & 3, l, r);
            }
            for (t, l) in tot.iter_mut().zip(&lanes) {
                *t += l.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        self.sum_l += tot[0];
        self.sum_r += tot[1];
        self.sum_ll += tot[2];
        self.sum_rr += tot[3];
        self.sum_lr += tot[4];
        self.sum_mid += tot[5];
        self.sum_side += tot[6];
        self.frames += (x.len() / ch) as u64;
    }

    fn close_block(&mut self) {
        let n = (self.block_len * self.channels) as f64;
        let rms = (self.block_sq / n).sqrt();
        if rms > ACTIVE_RMS {
            let crest = 20.0 * (self.block_peak as f64 / rms).log10();
            self.blocks.push((crest as f32, self.block_peak));
        }
        self.block_len = 0;
        self.block_peak = 0.0;
        self.block_sq = 0.0;
    }

    /// Ends a segment: its last, shorter block is a block too ("split into 1 s blocks" leaves
    /// one), tested and measured like the others (the reference implementation counts it).
    pub fn end_segment(&mut self) {
        if self.block_len > 0 {
            self.close_block();
        }
    }

    pub fn crest_db(&self) -> f64 {
        let rms = (self.sum_sq / self.samples.max(1) as f64).sqrt();
        if self.peak <= 0.0 || rms <= 0.0 {
            return 0.0;
        }
        (20.0 * (self.peak as f64 / rms).log10()).clamp(0.0, 40.0)
    }

    /// `(stereo_width, phase_correlation)`.
    pub fn stereo_image(&self) -> (f64, f64) {
        if self.channels < 2 || self.frames == 0 {
            return (0.0, 1.0);
        }
        let n = self.frames as f64;
        let (rm, rs) = ((self.sum_mid / n).sqrt(), (self.sum_side / n).sqrt());
        let width = if rm + rs > 0.0 { rs / (rm + rs) } else { 0.0 };
        let (ml, mr) = (self.sum_l / n, self.sum_r / n);
        let var_l = (self.sum_ll / n - ml * ml).max(0.0);
        let var_r = (self.sum_rr / n - mr * mr).max(0.0);
        let cov = self.sum_lr / n - ml * mr;
        // A channel counts as constant when its variance is at the rounding level of the f32 sums.
        let tiny = |v: f64, sq: f64| v <= 1e-6 * (sq / n).max(1e-30);
        let corr = match (tiny(var_l, self.sum_ll), tiny(var_r, self.sum_rr)) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.0,
            _ => (cov / (var_l * var_r).sqrt()).clamp(-1.0, 1.0),
        };
        (width.clamp(0.0, 1.0), corr)
    }

    /// `dynamic_range_variation`: population std `v` of the block crest factors, `v / (v + 6)`.
    pub fn dynamic_range_variation(&self) -> f64 {
        if self.blocks.len() < 2 {
            return 0.0;
        }
        let v = pop_std(self.blocks.iter().map(|b| b.0 as f64));
        v / (v + 6.0)
    }

    /// `peak_consistency`: `1 / (1 + CV)` of the block peaks; 1 with fewer than 2 blocks.
    pub fn peak_consistency(&self) -> f64 {
        if self.blocks.len() < 2 {
            return 1.0;
        }
        let mean = self.blocks.iter().map(|b| b.1 as f64).sum::<f64>() / self.blocks.len() as f64;
        if mean <= 0.0 {
            return 1.0;
        }
        let cv = pop_std(self.blocks.iter().map(|b| b.1 as f64)) / mean;
        1.0 / (1.0 + cv)
    }
}

/// Population standard deviation.
pub fn pop_std(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0f64), |(n, s), v| (n + 1, s + v));
    if n == 0 {
        return 0.0;
    }
    let mean = sum / n as f64;
    (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
}

impl Extractor for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &[
            "crest_db",
            "dynamic_range_variation",
            "peak_consistency",
            "stereo_width",
            "phase_correlation",
        ]
    }

    fn needs(&self) -> Needs {
        Needs {
            interleaved: true,
            ..Needs::default()
        }
    }

    fn push_interleaved(&mut self, x: &[f32]) {
        self.push(x);
    }

    fn end_segment(&mut self) {
        Native::end_segment(self);
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        let (stereo_width, phase_correlation) = self.stereo_image();
        out.set("crest_db", self.crest_db());
        out.set("dynamic_range_variation", self.dynamic_range_variation());
        out.set("peak_consistency", self.peak_consistency());
        out.set("stereo_width", stereo_width);
        out.set("phase_correlation", phase_correlation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_short_block_counts() {
        // 2.5 s of square wave, 0.5 for 2 s then 0.25: blocks of 1 s, 1 s and 0.5 s.
        let rate = 1000;
        let mut n = Native::new(rate, 2);
        let x: Vec<f32> = (0..2500)
            .flat_map(|i| {
                let v = if i < 2000 { 0.5 } else { 0.25 };
                let s = if i % 2 == 0 { v } else { -v };
                [s, s]
            })
            .collect();
        n.push(&x);
        n.end_segment();
        assert_eq!(n.blocks.len(), 3);
        let pc = n.peak_consistency();
        let peaks = [0.5f64, 0.5, 0.25];
        let mean = peaks.iter().sum::<f64>() / 3.0;
        let cv = pop_std(peaks.iter().copied()) / mean;
        assert!((pc - 1.0 / (1.0 + cv)).abs() < 1e-9, "{pc}");
    }

    /// The stereo sums as every channel count computes them: frame `i` of each 1024 in lane
    /// `i % 4`, the lanes added in `f64`.
    fn generic_sums(x: &[f32], ch: usize) -> [f64; 7] {
        let mut tot = [0f64; 7];
        for part in x.chunks(ch * 1024) {
            let mut lanes = [[0f32; 4]; 7];
            for (i, fr) in part.chunks_exact(ch).enumerate() {
                let (l, r) = (fr[0], if ch > 1 { fr[1] } else { fr[0] });
                let (m, s) = (0.5 * (l + r), 0.5 * (l - r));
                for (lane, v) in lanes
                    .iter_mut()
                    .zip([l, r, l * l, r * r, l * r, m * m, s * s])
                {
                    lane[i & 3] += v;
                }
            }
            for (t, l) in tot.iter_mut().zip(&lanes) {
                *t += l.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        tot
    }

    #[test]
    fn stereo_fast_path_sums_as_the_generic_loop() {
        let mut seed = 9u64;
        // 2 × 1024 frames and 7 more: whole parts, then a part that ends in 3 lone frames.
        let x: Vec<f32> = (0..2 * 2055)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        for ch in [1usize, 2, 3] {
            let x = &x[..x.len() / ch * ch];
            let mut n = Native::new(44_100, ch);
            n.stereo(x);
            let got = [
                n.sum_l, n.sum_r, n.sum_ll, n.sum_rr, n.sum_lr, n.sum_mid, n.sum_side,
            ];
            let want = generic_sums(x, ch);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{ch} channels: {got:?} vs {want:?}"
                );
            }
        }
    }
}
