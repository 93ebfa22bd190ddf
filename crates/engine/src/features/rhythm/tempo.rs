//! The tempo estimate of one excerpt (librosa `feature.tempo`).

use realfft::num_complex::Complex;

use super::FRAME_RATE;
use crate::dsp::{HOP, SR22};

/// Tempogram window: librosa `time_to_frames(ac_size=8.0)` = floor(8 · 22050) // 512 = 344.
const TEMPO_WIN: usize = (8 * SR22 as usize) / HOP;
/// FFT length for the per-frame autocorrelation: ≥ 2·344 − 1 so it is not circular. 720 =
/// 2⁴·3²·5 is the smallest such length made of rustfft's fast radices (1024 costs ~40 % more).
const AC_FFT: usize = 720;

const _: () = assert!(AC_FFT >= 2 * TEMPO_WIN - 1 && AC_FFT.is_multiple_of(2));
/// Log-normal tempo prior: centre and width in octaves (`start_bpm`, `std_bpm`).
const START_BPM: f64 = 120.0;
const STD_BPM: f64 = 1.0;
/// Only lags whose BPM is below this are candidates (`max_tempo`).
const MAX_TEMPO: f64 = 320.0;
/// numpy `finfo(float32).tiny`: librosa's "too small to normalise" threshold for the
/// float32 tempogram.
const TINY_F32: f64 = f32::MIN_POSITIVE as f64;

/// BPM of tempogram lag `k` (librosa `tempo_frequencies`); lag 0 is infinitely fast.
pub(super) fn lag_bpm(k: usize) -> f64 {
    if k == 0 {
        f64::INFINITY
    } else {
        60.0 * FRAME_RATE / k as f64
    }
}

/// librosa `feature.tempo(onset_envelope=x)` with defaults.
///
/// Autocorrelation tempogram: the envelope is padded by 172 frames on each side with a
/// linear ramp to 0, one 344-frame window (periodic Hann) per envelope frame, its
/// autocorrelation up to lag 343 normalised by its maximum, averaged over frames. The
/// chosen lag maximises `log1p(1e6 · tg) + logprior` among lags below 320 BPM.
pub(super) fn estimate_tempo(x: &[f64]) -> f64 {
    let n = x.len();
    let win = TEMPO_WIN;
    let half = win / 2;
    if n == 0 {
        return 0.0;
    }

    // numpy.pad(mode="linear_ramp", end_values=0): linspace(0, edge, half, endpoint=False)
    // on the left, the mirror image on the right.
    let mut padded = vec![0.0f64; n + 2 * half];
    let (first, last) = (x[0], x[n - 1]);
    for j in 0..half {
        padded[j] = j as f64 * (first / half as f64);
        padded[half + n + half - 1 - j] = j as f64 * (last / half as f64);
    }
    padded[half..half + n].copy_from_slice(x);

    // scipy get_window('hann', 344, fftbins=True): periodic.
    let window = crate::dsp::hann(win);

    let r2c = crate::dsp::rfft::plan_forward::<f64>(AC_FFT);
    let c2r = crate::dsp::rfft::plan_inverse::<f64>(AC_FFT);
    let mut buf = r2c.make_input_vec();
    let mut spec = r2c.make_output_vec();
    let mut scratch_f = r2c.make_scratch_vec();
    let mut scratch_i = c2r.make_scratch_vec();
    let mut ac = c2r.make_output_vec();
    let mut mean_tg = vec![0.0f64; win];

    for t in 0..n {
        let frame = &padded[t..t + win];
        if frame.iter().all(|&v| v == 0.0) {
            // Autocorrelation 0, left unnormalised by librosa: adds nothing to the mean.
            continue;
        }
        for ((b, &v), &w) in buf.iter_mut().zip(frame).zip(&window) {
            *b = v * w;
        }
        buf[win..].fill(0.0);
        r2c.process_with_scratch(&mut buf, &mut spec, &mut scratch_f)
            .expect("buffers come from the FFT's own plan, so their lengths match");
        for c in spec.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        c2r.process_with_scratch(&mut spec, &mut ac, &mut scratch_i)
            .expect("buffers come from the FFT's own plan, and the spectrum is real");
        // Unscaled inverse FFT: divide by the length (irrelevant after normalising, but
        // keeps the "too small to normalise" test on the true values).
        let scale = 1.0 / AC_FFT as f64;
        let peak = ac[..win]
            .iter()
            .fold(0.0f64, |m, &v| m.max((v * scale).abs()));
        // util.normalize(norm=inf): slices whose max is below float32 tiny stay as they are.
        let norm = if peak < TINY_F32 { scale } else { scale / peak };
        for (m, &v) in mean_tg.iter_mut().zip(&ac[..win]) {
            *m += v * norm;
        }
    }

    let log2_start = START_BPM.log2();
    let mut best: Option<(usize, f64)> = None;
    for (k, &sum) in mean_tg.iter().enumerate() {
        let bpm = lag_bpm(k);
        // librosa kills every lag before the first one below max_tempo (lag 0 included).
        if bpm >= MAX_TEMPO {
            continue;
        }
        let logprior = -0.5 * ((bpm.log2() - log2_start) / STD_BPM).powi(2);
        // The envelope is non-negative, so its autocorrelation is too; clamping removes FFT
        // round-off that would otherwise push log1p towards NaN.
        let tg = (sum / n as f64).max(0.0);
        let score = (1e6 * tg).ln_1p() + logprior;
        // np.argmax: the first maximum wins.
        let better = match best {
            None => true,
            Some((_, s)) => score > s,
        };
        if better {
            best = Some((k, score));
        }
    }
    best.map_or(0.0, |(k, _)| lag_bpm(k))
}
