//! The 12-class chroma filterbank of librosa `filters.chroma` (A4 = 440 Hz, `ctroct` 5,
//! `octwidth` 2, columns L2-normalised, rows starting at C), for the `22k` STFT.

use super::{N_BINS, N_FFT, SR22};

pub struct ChromaFilterbank {
    /// `weights[c * N_BINS + k]`: weight of bin `k` in pitch class `c`.
    weights: Vec<f32>,
}

impl Default for ChromaFilterbank {
    fn default() -> Self {
        Self::new()
    }
}

impl ChromaFilterbank {
    pub fn new() -> ChromaFilterbank {
        let n_chroma = 12.0f64;
        let sr = SR22 as f64;
        // Bin frequencies of the whole FFT, DC excluded, as octaves above A0/16... (hz_to_octs).
        let a440 = 440.0f64;
        let mut frqbins = vec![0f64; N_FFT];
        for (k, f) in frqbins.iter_mut().enumerate().skip(1) {
            let hz = k as f64 * sr / N_FFT as f64;
            *f = n_chroma * (hz / (a440 / 16.0)).log2();
        }
        // The 0 Hz bin: 1.5 octaves below bin 1.
        frqbins[0] = frqbins[1] - 1.5 * n_chroma;
        let mut binwidth = vec![1f64; N_FFT];
        for k in 0..N_FFT - 1 {
            binwidth[k] = (frqbins[k + 1] - frqbins[k]).max(1.0);
        }
        let half = (n_chroma / 2.0).round();
        let mut w = vec![0f64; 12 * N_FFT];
        for c in 0..12 {
            for k in 0..N_FFT {
                let d = frqbins[k] - c as f64;
                let d = (d + half + 10.0 * n_chroma).rem_euclid(n_chroma) - half;
                w[c * N_FFT + k] = (-0.5 * (2.0 * d / binwidth[k]).powi(2)).exp();
            }
        }
        // Normalise each column (bin) to unit L2 norm, then weight by the octave Gaussian.
        for k in 0..N_FFT {
            let norm = (0..12)
                .map(|c| w[c * N_FFT + k].powi(2))
                .sum::<f64>()
                .sqrt();
            let oct = (-0.5 * ((frqbins[k] / n_chroma - 5.0) / 2.0).powi(2)).exp();
            for c in 0..12 {
                let v = &mut w[c * N_FFT + k];
                *v = if norm > 0.0 { *v / norm } else { 0.0 } * oct;
            }
        }
        // base_c: roll so that row 0 is C (A is row 0 before the roll).
        let mut weights = vec![0f32; 12 * N_BINS];
        for c in 0..12 {
            let src = (c + 3) % 12;
            for k in 0..N_BINS {
                weights[c * N_BINS + k] = w[src * N_FFT + k] as f32;
            }
        }
        ChromaFilterbank { weights }
    }

    /// Chroma of one power spectrum.
    pub fn apply(&self, power: &[f32], out: &mut [f32; 12]) {
        // Bins missing from a short `power` count as 0.
        let n = power.len().min(N_BINS);
        let power = &power[..n];
        for (c, o) in out.iter_mut().enumerate() {
            let row = &self.weights[c * N_BINS..c * N_BINS + n];
            // Sixteen lanes: the dot product vectorises, and its four vectors of partial sums
            // are independent chains of additions instead of one.
            let mut lanes = [0f32; 16];
            let (rw, rp) = (row.chunks_exact(16), power.chunks_exact(16));
            let tail: f32 = rw
                .remainder()
                .iter()
                .zip(rp.remainder())
                .map(|(w, p)| w * p)
                .sum();
            for (w, p) in rw.zip(rp) {
                for l in 0..16 {
                    lanes[l] += w[l] * p[l];
                }
            }
            *o = lanes.iter().sum::<f32>() + tail;
        }
    }
}
