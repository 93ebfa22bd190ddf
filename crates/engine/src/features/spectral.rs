//! Frame statistics of the `22k` STFT: silence, centroid, rolloff, flatness and chroma
//! (`docs/fingerprint.md`, rows 14–17 and 20).

use crate::dsp::chroma::ChromaFilterbank;
use crate::dsp::stft::Frame;
use crate::dsp::{N_BINS, N_FFT, SR22};

use super::native::ACTIVE_RMS;
use super::{Extractor, Needs, Output, Summary};
use crate::dsp::stats::median;

pub struct Spectral {
    chroma_fb: ChromaFilterbank,
    freqs: Vec<f32>,
    /// RMS of every frame, for `silence_ratio` (it needs the loudest frame of the track).
    rms: Vec<f32>,
    centroid: Vec<f32>,
    rolloff: Vec<f32>,
    flatness: Vec<f32>,
    chroma_sum: f64,
    chroma_frames: u64,
}

impl Default for Spectral {
    fn default() -> Self {
        Self::new()
    }
}

impl Spectral {
    pub fn new() -> Spectral {
        Spectral {
            chroma_fb: ChromaFilterbank::new(),
            freqs: (0..N_BINS)
                .map(|k| (k as f64 * SR22 as f64 / N_FFT as f64) as f32)
                .collect(),
            rms: Vec::new(),
            centroid: Vec::new(),
            rolloff: Vec::new(),
            flatness: Vec::new(),
            chroma_sum: 0.0,
            chroma_frames: 0,
        }
    }

    pub fn push(&mut self, fr: &Frame<'_>) {
        self.rms.push(fr.rms);
        if (fr.rms as f64) <= ACTIVE_RMS {
            return;
        }
        // One pass over the bins for the four sums (see `frame_sums`).
        let sums = frame_sums(fr.mag, fr.power, &self.freqs);
        // Centroid and rolloff read the magnitude (librosa's default power=1 spectrogram).
        let (total, weighted) = (sums.mag, sums.weighted);
        if total > 0.0 {
            self.centroid.push(weighted / total);
            // The first bin where the cumulative magnitude reaches 85 % of the total.
            let threshold = 0.85 * total;
            let mut acc = 0f32;
            let k = fr.mag.iter().position(|&m| {
                acc += m;
                acc >= threshold
            });
            self.rolloff.push(self.freqs[k.unwrap_or(N_BINS - 1)]);
        }
        // Flatness of max(|S|^2, 1e-10): geometric over arithmetic mean, in the log domain.
        let n = N_BINS as f64;
        self.flatness
            .push((((sums.log as f64) / n).exp() / ((sums.floored as f64) / n)) as f32);
        let mut chroma = [0f32; 12];
        self.chroma_fb.apply(fr.power, &mut chroma);
        let s: f64 = chroma.iter().map(|&c| c as f64).sum();
        if s > 0.0 {
            self.chroma_sum += chroma.iter().map(|&c| (c as f64 / s).powi(2)).sum::<f64>();
            self.chroma_frames += 1;
        }
    }

    /// `silence_ratio`: frames below −60 dBFS or more than 40 dB below the loudest frame.
    /// Digital silence (no frame above 0) reads 1.
    pub fn silence_ratio(&self) -> f64 {
        let loudest = self.rms.iter().fold(0f32, |a, &b| a.max(b)) as f64;
        if self.rms.is_empty() || loudest <= 0.0 {
            return 1.0;
        }
        let floor = ACTIVE_RMS.max(loudest * 0.01);
        let silent = self.rms.iter().filter(|&&r| (r as f64) <= floor).count();
        silent as f64 / self.rms.len() as f64
    }

    pub fn spectral_centroid(&mut self) -> f64 {
        (median(&mut self.centroid).unwrap_or(0.0) / 8000.0).clamp(0.0, 1.0)
    }

    pub fn spectral_rolloff(&mut self) -> f64 {
        (median(&mut self.rolloff).unwrap_or(0.0) / 10_000.0).clamp(0.0, 1.0)
    }

    pub fn spectral_flatness(&mut self) -> f64 {
        median(&mut self.flatness).unwrap_or(0.0).clamp(0.0, 1.0)
    }

    pub fn chroma_energy(&self) -> f64 {
        if self.chroma_frames == 0 {
            0.0
        } else {
            (self.chroma_sum / self.chroma_frames as f64).clamp(0.0, 1.0)
        }
    }
}

/// The sums of one frame that centroid, rolloff and flatness read.
struct FrameSums {
    /// Σ |S|.
    mag: f32,
    /// Σ |S|·f.
    weighted: f32,
    /// Σ max(|S|², 1e-10).
    floored: f32,
    /// Σ ln max(|S|², 1e-10).
    log: f32,
}

/// The four sums in one pass, each in eight interleaved lanes: float addition is not
/// associative, so a plain `sum` stays sequential; eight lanes let the compiler use SIMD (and
/// add less rounding error), and four independent sums hide each other's latency. Element `i`
/// goes to lane `i % 8` in order, and the lanes are added 0 to 7 at the end.
#[inline]
fn frame_sums(mag: &[f32], power: &[f32], freqs: &[f32]) -> FrameSums {
    let (mut m8, mut w8, mut f8, mut l8) = ([0f32; 8], [0f32; 8], [0f32; 8], [0f32; 8]);
    let n = mag.len().min(power.len()).min(freqs.len());
    let (mag, power, freqs) = (&mag[..n], &power[..n], &freqs[..n]);
    let (mc, pc, fc) = (
        mag.chunks_exact(8),
        power.chunks_exact(8),
        freqs.chunks_exact(8),
    );
    let (mr, pr, fr) = (mc.remainder(), pc.remainder(), fc.remainder());
    for ((m, p), f) in mc.zip(pc).zip(fc) {
        for l in 0..8 {
            m8[l] += m[l];
            w8[l] += m[l] * f[l];
            let q = if p[l] > 1e-10 { p[l] } else { 1e-10 };
            f8[l] += q;
            l8[l] += fast_ln(q);
        }
    }
    for (l, ((&m, &p), &f)) in mr.iter().zip(pr).zip(fr).enumerate() {
        m8[l] += m;
        w8[l] += m * f;
        let q = if p > 1e-10 { p } else { 1e-10 };
        f8[l] += q;
        l8[l] += fast_ln(q);
    }
    let add = |v: [f32; 8]| v.iter().sum::<f32>();
    FrameSums {
        mag: add(m8),
        weighted: add(w8),
        floored: add(f8),
        log: add(l8),
    }
}

/// Natural logarithm of a positive normal `f32`, to about 1e-6: exponent from the bits, mantissa
/// through the atanh series. Written here because `f32::ln` does not vectorise and flatness
/// takes 1025 logarithms per frame.
#[inline]
fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let p = t * (2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0)))));
    e as f32 * std::f32::consts::LN_2 + p
}

impl Extractor for Spectral {
    fn name(&self) -> &'static str {
        "spectral"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &[
            "silence_ratio",
            "spectral_centroid",
            "spectral_rolloff",
            "spectral_flatness",
            "chroma_energy",
        ]
    }

    fn needs(&self) -> Needs {
        Needs {
            frames: true,
            ..Needs::default()
        }
    }

    fn push_frame(&mut self, frame: &Frame<'_>) {
        self.push(frame);
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        out.set("silence_ratio", self.silence_ratio());
        out.set("spectral_centroid", self.spectral_centroid());
        out.set("spectral_rolloff", self.spectral_rolloff());
        out.set("spectral_flatness", self.spectral_flatness());
        out.set("chroma_energy", self.chroma_energy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_is_accurate() {
        let mut x = 1e-10f32;
        while x < 1e6 {
            assert!((fast_ln(x) - x.ln()).abs() < 2e-5, "{x}");
            x *= 1.37;
        }
    }
}
