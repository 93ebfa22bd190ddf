//! The `22k` STFT: periodic Hann, `N_FFT` 2048, hop 512, frames centred with `N_FFT / 2` zeros
//! of padding at both ends of each segment (librosa's `center=True, pad_mode="constant"`).

use std::sync::Arc;

use realfft::RealToComplex;

use super::{HOP, N_BINS, N_FFT};

/// One STFT frame, as handed to the features.
pub struct Frame<'a> {
    /// `|S|` per bin.
    pub mag: &'a [f32],
    /// `|S|^2` per bin.
    pub power: &'a [f32],
    /// RMS of the frame's 2048 time-domain samples, unwindowed (librosa `feature.rms`).
    pub rms: f32,
}

/// Streaming STFT over segments of a signal.
pub struct Stft {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    buf: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    mag: Vec<f32>,
    power: Vec<f32>,
}

impl Default for Stft {
    fn default() -> Self {
        Self::new()
    }
}

impl Stft {
    pub fn new() -> Stft {
        let fft = super::rfft::plan_forward::<f32>(N_FFT);
        let window = super::hann(N_FFT).into_iter().map(|w| w as f32).collect();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Stft {
            fft,
            window,
            buf: Vec::new(),
            input: vec![0.0; N_FFT],
            spectrum,
            scratch,
            mag: vec![0.0; N_BINS],
            power: vec![0.0; N_BINS],
        }
    }

    /// Starts a segment: the centre padding.
    pub fn begin_segment(&mut self) {
        self.buf.clear();
        self.buf.resize(N_FFT / 2, 0.0);
    }

    /// Adds samples and calls `f` for every frame they complete.
    pub fn push(&mut self, x: &[f32], f: &mut impl FnMut(&Frame<'_>)) {
        self.buf.extend_from_slice(x);
        self.drain(f);
    }

    /// Ends a segment: the trailing centre padding, and the frames it completes. A segment of
    /// `n` samples yields `1 + n / HOP` frames, as librosa does.
    pub fn end_segment(&mut self, f: &mut impl FnMut(&Frame<'_>)) {
        self.buf.extend(std::iter::repeat_n(0.0, N_FFT / 2));
        self.drain(f);
        self.buf.clear();
    }

    fn drain(&mut self, f: &mut impl FnMut(&Frame<'_>)) {
        let mut start = 0;
        while start + N_FFT <= self.buf.len() {
            let frame = &self.buf[start..start + N_FFT];
            let mut sq = 0f64;
            for ((d, &s), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
                sq += (s * s) as f64;
                *d = s * w;
            }
            let rms = (sq / N_FFT as f64).sqrt() as f32;
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
                .expect("buffers come from the FFT's own plan, so their lengths match");
            for ((c, m), p) in self.spectrum.iter().zip(&mut self.mag).zip(&mut self.power) {
                let pw = c.re * c.re + c.im * c.im;
                *p = pw;
                *m = pw.sqrt();
            }
            f(&Frame {
                mag: &self.mag,
                power: &self.power,
                rms,
            });
            start += HOP;
        }
        self.buf.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_librosa() {
        for n in [0usize, 1, 511, 512, 513, 22050, 44100] {
            let mut stft = Stft::new();
            let mut count = 0;
            stft.begin_segment();
            let x = vec![0.1f32; n];
            for c in x.chunks(300) {
                stft.push(c, &mut |_| count += 1);
            }
            stft.end_segment(&mut |_| count += 1);
            assert_eq!(count, 1 + n / HOP, "n = {n}");
        }
    }

    #[test]
    fn sine_peaks_at_its_bin() {
        let mut stft = Stft::new();
        stft.begin_segment();
        let x: Vec<f32> = (0..8192)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 22050.0).sin())
            .collect();
        let mut peak_bins = Vec::new();
        stft.push(&x, &mut |fr| {
            let (k, _) =
                fr.mag
                    .iter()
                    .enumerate()
                    .fold((0, 0.0f32), |a, (i, &m)| if m > a.1 { (i, m) } else { a });
            peak_bins.push(k);
        });
        // 1000 Hz / (22050 / 2048) = bin 92.9
        assert!(peak_bins[4..].iter().all(|&k| k == 93), "{peak_bins:?}");
    }
}
