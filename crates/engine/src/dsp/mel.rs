//! Slaney mel filterbank, as librosa `filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2,
//! htk=False, norm='slaney')`.
//!
//! The triangles of adjacent bands overlap by half, so every FFT bin has a non-zero weight
//! in at most two bands. The bank is stored sparsely (one contiguous run of bins per band)
//! and applying it costs about `2 * n_bins` multiply-adds instead of `n_mels * n_bins`.

/// Frequency (Hz) below which the Slaney scale is linear.
const MIN_LOG_HZ: f64 = 1000.0;
/// Hz per mel in the linear part of the Slaney scale.
const F_SP: f64 = 200.0 / 3.0;
/// Mel value of `MIN_LOG_HZ`.
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

/// Log step of the Slaney scale above 1 kHz: `ln(6.4) / 27`.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel on the Slaney scale (librosa `hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

/// Mel to Hz on the Slaney scale (librosa `mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n` frequencies equally spaced on the mel scale from `fmin` to `fmax` inclusive
/// (librosa `mel_frequencies`).
pub fn mel_frequencies(n: usize, fmin: f64, fmax: f64) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
    // numpy.linspace: start + i * step, with the last point set exactly to `stop`.
    let step = if n > 1 {
        (hi - lo) / (n - 1) as f64
    } else {
        0.0
    };
    (0..n)
        .map(|i| {
            let m = if n > 1 && i == n - 1 {
                hi
            } else {
                lo + i as f64 * step
            };
            mel_to_hz(m)
        })
        .collect()
}

/// One band: weights for the bins `start .. start + len`, stored at `offset` in the flat
/// weight vector.
#[derive(Debug, Clone, Copy)]
struct Band {
    start: usize,
    offset: usize,
    len: usize,
}

/// Sparse Slaney-normalised mel filterbank over the bins of an `n_fft` real FFT.
#[derive(Debug, Clone)]
pub struct MelFilterbank {
    n_bins: usize,
    bands: Vec<Band>,
    weights: Vec<f32>,
}

impl MelFilterbank {
    /// The bank of librosa `filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)` with the
    /// defaults `fmin=0`, `fmax=sr/2`, Slaney scale and Slaney area normalisation.
    pub fn new(sr: u32, n_fft: usize, n_mels: usize) -> Self {
        let n_bins = n_fft / 2 + 1;
        let sr = f64::from(sr);
        // Bin centre frequencies: numpy.linspace(0, sr/2, n_bins).
        let fft_freq = |k: usize| -> f64 {
            if n_bins > 1 {
                if k == n_bins - 1 {
                    sr / 2.0
                } else {
                    k as f64 * (sr / 2.0 / (n_bins - 1) as f64)
                }
            } else {
                0.0
            }
        };
        let mel_f = mel_frequencies(n_mels + 2, 0.0, sr / 2.0);

        let mut bands = Vec::with_capacity(n_mels);
        let mut weights = Vec::with_capacity(2 * n_bins);
        for i in 0..n_mels {
            let (f_lo, f_c, f_hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let (d_lo, d_hi) = (f_c - f_lo, f_hi - f_c);
            // Slaney normalisation: each triangle has unit area in Hz.
            let enorm = if f_hi > f_lo {
                2.0 / (f_hi - f_lo)
            } else {
                0.0
            };
            let offset = weights.len();
            let mut start = None;
            for k in 0..n_bins {
                let f = fft_freq(k);
                if f <= f_lo || f >= f_hi {
                    // Outside the open support the triangle is exactly 0 (librosa clamps
                    // max(0, min(lower, upper)) to 0 there too).
                    if start.is_some() && f >= f_hi {
                        break;
                    }
                    continue;
                }
                let lower = if d_lo > 0.0 { (f - f_lo) / d_lo } else { 0.0 };
                let upper = if d_hi > 0.0 { (f_hi - f) / d_hi } else { 0.0 };
                let tri = lower.min(upper).max(0.0);
                // librosa stores the triangle in float32, then scales it in float64 and
                // rounds to float32 again; do the same so the weights are bit-identical.
                let w = (f64::from(tri as f32) * enorm) as f32;
                if start.is_none() {
                    start = Some(k);
                }
                weights.push(w);
            }
            let start = start.unwrap_or(0);
            bands.push(Band {
                start,
                offset,
                len: weights.len() - offset,
            });
        }
        Self {
            n_bins,
            bands,
            weights,
        }
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// Number of FFT bins the bank expects (`n_fft / 2 + 1`).
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Weight of `bin` in `band` (0 outside the band's support or out of range).
    pub fn weight(&self, band: usize, bin: usize) -> f32 {
        self.bands
            .get(band)
            .and_then(|b| {
                let k = bin.checked_sub(b.start)?;
                if k < b.len {
                    self.weights.get(b.offset + k).copied()
                } else {
                    None
                }
            })
            .unwrap_or(0.0)
    }

    /// `out[m] = Σ_k weight(m, k) · power[k]` (librosa `melspectrogram` from a power
    /// spectrum). Bins missing from a short `power` count as 0; bands beyond `out.len()`
    /// are skipped. Sums in f64 so 1025-bin frames lose no precision.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (band, o) in self.bands.iter().zip(out.iter_mut()) {
            let w = &self.weights[band.offset..band.offset + band.len];
            let end = (band.start + band.len).min(power.len());
            let p = power.get(band.start..end).unwrap_or(&[]);
            // Four lanes: a single running sum would make every addition wait on the one
            // before (the bands of the top octaves span up to ~40 bins).
            let n = w.len().min(p.len());
            let (w, p) = (&w[..n], &p[..n]);
            let mut acc = [0f64; 4];
            let (wc, pc) = (w.chunks_exact(4), p.chunks_exact(4));
            let (wr, pr) = (wc.remainder(), pc.remainder());
            for (w, p) in wc.zip(pc) {
                for l in 0..4 {
                    acc[l] += f64::from(w[l]) * f64::from(p[l]);
                }
            }
            for (l, (&w, &p)) in wr.iter().zip(pr).enumerate() {
                acc[l] += f64::from(w) * f64::from(p);
            }
            *o = ((acc[0] + acc[1]) + (acc[2] + acc[3])) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{N_BINS, N_FFT, SR22};

    /// Dense librosa formula: `max(0, min(lower, upper))` over every bin, times enorm.
    fn dense(sr: f64, n_fft: usize, n_mels: usize) -> Vec<Vec<f64>> {
        let n_bins = n_fft / 2 + 1;
        let mel_f = mel_frequencies(n_mels + 2, 0.0, sr / 2.0);
        (0..n_mels)
            .map(|i| {
                let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
                (0..n_bins)
                    .map(|k| {
                        let f = k as f64 * sr / n_fft as f64;
                        let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
                        let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
                        lower.min(upper).max(0.0) * enorm
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn slaney_scale_points() {
        // Linear below 1 kHz (200/3 Hz per mel), logarithmic above: 1 kHz is mel 15.
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(200.0 / 3.0) - 1.0).abs() < 1e-12);
        assert!((hz_to_mel(6400.0) - 42.0).abs() < 1e-9); // 15 + 27 mels per factor 6.4
        assert!((hz_to_mel(11025.0) - 49.910594).abs() < 1e-5);
        for &f in &[0.0, 25.0, 999.0, 1000.0, 4321.0, 11025.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9 * (1.0 + f));
        }
        let mf = mel_frequencies(130, 0.0, 11025.0);
        assert_eq!(mf[0], 0.0);
        assert!((mf[129] - 11025.0).abs() < 1e-9);
        // librosa.mel_frequencies(130, fmax=11025)[1] = 49.910594/129 mel * 200/3 Hz.
        assert!((mf[1] - 25.793589).abs() < 1e-5);
    }

    #[test]
    fn matches_dense_formula_and_is_sparse() {
        let fb = MelFilterbank::new(SR22, N_FFT, 128);
        assert_eq!(fb.n_mels(), 128);
        assert_eq!(fb.n_bins(), N_BINS);
        let d = dense(f64::from(SR22), N_FFT, 128);
        for (m, row) in d.iter().enumerate() {
            for (k, &w) in row.iter().enumerate() {
                let got = f64::from(fb.weight(m, k));
                assert!(
                    (got - w).abs() <= 1e-6 * w.abs().max(1e-3),
                    "band {m} bin {k}: {got} vs {w}"
                );
            }
        }
        // Each bin feeds at most two bands.
        for k in 0..N_BINS {
            let n = (0..128).filter(|&m| fb.weight(m, k) > 0.0).count();
            assert!(n <= 2, "bin {k} in {n} bands");
        }
        assert!(fb.weights.len() <= 2 * N_BINS);
    }

    #[test]
    fn slaney_area_normalisation() {
        // Height 2/(f_hi - f_lo) on a base of f_hi - f_lo: unit area in Hz. The Riemann sum
        // over 10.77 Hz bins is close to 1 once a band spans a few bins.
        let fb = MelFilterbank::new(SR22, N_FFT, 128);
        let mel_f = mel_frequencies(130, 0.0, 11025.0);
        let df = f64::from(SR22) / N_FFT as f64;
        for m in 0..128 {
            let width = mel_f[m + 2] - mel_f[m];
            let peak = (0..N_BINS)
                .map(|k| f64::from(fb.weight(m, k)))
                .fold(0.0, f64::max);
            assert!(peak <= 2.0 / width * (1.0 + 1e-6));
            if width > 10.0 * df {
                let area: f64 = (0..N_BINS).map(|k| f64::from(fb.weight(m, k)) * df).sum();
                assert!((area - 1.0).abs() < 0.02, "band {m}: area {area}");
            }
        }
        // Top band: 10 453.79 .. 11 025 Hz, centred on 10 735.60 Hz.
        assert!((mel_f[127] - 10_453.792).abs() < 1e-2, "{}", mel_f[127]);
        assert!((mel_f[128] - 10_735.598).abs() < 1e-2, "{}", mel_f[128]);
    }

    #[test]
    fn apply_matches_weights_and_tolerates_short_input() {
        let fb = MelFilterbank::new(SR22, N_FFT, 128);
        let power: Vec<f32> = (0..N_BINS).map(|k| (k % 7) as f32 + 0.5).collect();
        let mut out = vec![0.0f32; 128];
        fb.apply(&power, &mut out);
        for (m, &o) in out.iter().enumerate() {
            let want: f64 = (0..N_BINS)
                .map(|k| f64::from(fb.weight(m, k)) * f64::from(power[k]))
                .sum();
            assert!((f64::from(o) - want).abs() <= 1e-6 * want.abs().max(1e-9));
        }
        let mut short = vec![1.0f32; 5];
        fb.apply(&power[..10], &mut short);
        assert!(short.iter().all(|v| v.is_finite()));
    }
}
