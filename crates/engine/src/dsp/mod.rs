//! Signal-processing building blocks shared by the features.

pub mod chroma;
pub mod mel;
pub mod resample;
pub mod rfft;
pub mod stats;
pub mod stft;

/// Periodic Hann window of length `n` (scipy `get_window('hann', n, fftbins=True)`, librosa's
/// STFT window), in `f64`.
pub fn hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

/// Sample rate of the `22k` dimensions.
pub const SR22: u32 = 22_050;
/// STFT size of the `22k` dimensions (librosa conventions).
pub const N_FFT: usize = 2048;
/// STFT hop of the `22k` dimensions.
pub const HOP: usize = 512;
/// Bins of one STFT frame: `N_FFT / 2 + 1`.
pub const N_BINS: usize = N_FFT / 2 + 1;
