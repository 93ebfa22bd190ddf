//! The beat tracker of one excerpt (librosa 0.11 `beat.beat_track`) and the regularity of its
//! beats.

use super::FRAME_RATE;
use crate::dsp::stats::median;

/// Beat tracker tightness (`beat_track` default).
const TIGHTNESS: f64 = 100.0;

/// librosa 0.11 `beat.beat_track(onset_envelope=x, bpm=bpm, tightness=100, trim=True)`:
/// the beat frames, ascending.
pub(super) fn track_beats(x: &[f64], bpm: f64) -> Vec<usize> {
    let n = x.len();
    if n == 0 || !(bpm.is_finite() && bpm > 0.0) {
        return Vec::new();
    }
    // Frames per beat, rounded as numpy does. At least 2 so the search range below never
    // includes the frame itself (bpm ≤ 320 gives ≥ 8 anyway).
    let fpb = f64::round_ties_even(FRAME_RATE * 60.0 / bpm).clamp(2.0, 1e6);

    // Onsets divided by their standard deviation (ddof=1). A constant envelope (sd 0) is
    // left as is rather than divided by float32 tiny, which would overflow.
    let sd = std_dev(x, 1);
    let scale = if sd > 0.0 && sd.is_finite() {
        1.0 / sd
    } else {
        1.0
    };
    let onsets: Vec<f64> = x.iter().map(|&v| v * scale).collect();

    let localscore = local_score(&onsets, fpb);
    let (backlink, cumscore) = beat_dp(&localscore, fpb);

    let tail = last_beat(&cumscore);
    let mut is_beat = vec![false; n];
    let mut i = tail as isize;
    while i >= 0 {
        let u = i as usize;
        is_beat[u] = true;
        // Backlinks point strictly backwards, so this terminates.
        i = backlink[u];
    }
    trim_beats(&localscore, &mut is_beat);
    is_beat
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| b.then_some(i))
        .collect()
}

/// Standard deviation with `ddof` degrees of freedom; 0 when undefined.
fn std_dev(x: &[f64], ddof: usize) -> f64 {
    if x.len() <= ddof {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let ss: f64 = x.iter().map(|&v| (v - mean) * (v - mean)).sum();
    (ss / (x.len() - ddof) as f64).sqrt()
}

/// librosa `__beat_local_score`: a same-mode convolution with the Gaussian
/// `exp(-0.5 · (j · 32 / fpb)^2)`, j = −fpb..=fpb. Like librosa's loop it leaves out the
/// term `window[i + K/2] · onsets[0]` for the first `K/2 + 1` frames (its upper bound is
/// `min(i + K/2, K)`, exclusive).
fn local_score(onsets: &[f64], fpb: f64) -> Vec<f64> {
    let n = onsets.len();
    let f = fpb as usize;
    let window: Vec<f64> = (0..=2 * f)
        .map(|k| {
            let j = k as f64 - fpb;
            (-0.5 * (j * 32.0 / fpb).powi(2)).exp()
        })
        .collect();
    let k_len = window.len();
    let h = k_len / 2;
    (0..n)
        .map(|i| {
            let lo = (i + h + 1).saturating_sub(n);
            let hi = (i + h).min(k_len);
            (lo..hi).map(|k| window[k] * onsets[i + h - k]).sum()
        })
        .collect()
}

/// librosa `__beat_track_dp`: cumulative score and backlink (−1 = no predecessor) per frame.
fn beat_dp(localscore: &[f64], fpb: f64) -> (Vec<isize>, Vec<f64>) {
    let n = localscore.len();
    let mut backlink = vec![-1isize; n];
    let mut cumscore = vec![0.0f64; n];
    let score_thresh = 0.01 * localscore.iter().copied().fold(f64::NEG_INFINITY, f64::max);

    // Predecessors lie round(fpb/2) ..= 2·fpb frames back, nearest first; the transition
    // penalty depends only on that distance.
    let d_min = (f64::round_ties_even(fpb / 2.0) as usize).max(1);
    let d_max = (2.0 * fpb) as usize;
    let ln_fpb = fpb.ln();
    let txwt: Vec<f64> = (0..=d_max)
        .map(|d| {
            let l = (d.max(1) as f64).ln() - ln_fpb;
            -TIGHTNESS * l * l
        })
        .collect();

    let mut first_beat = true;
    for (i, &score_i) in localscore.iter().enumerate() {
        let mut best_score = f64::NEG_INFINITY;
        let mut beat_location: isize = -1;
        for (d, &w) in txwt.iter().enumerate().take(d_max + 1).skip(d_min) {
            // Searching past the start: stop.
            if d > i {
                break;
            }
            let score = cumscore[i - d] + w;
            if score > best_score {
                best_score = score;
                beat_location = (i - d) as isize;
            }
        }
        cumscore[i] = if beat_location >= 0 {
            score_i + best_score
        } else {
            score_i
        };
        // Until the first frame with a real onset, nothing links back.
        if first_beat && score_i < score_thresh {
            backlink[i] = -1;
        } else {
            backlink[i] = beat_location;
            first_beat = false;
        }
    }
    (backlink, cumscore)
}

/// librosa `util.localmax`: `x[i] > x[i-1]` and `x[i] >= x[i+1]`, edges padded by
/// repetition (so frame 0 is never a maximum).
fn local_max(x: &[f64]) -> Vec<bool> {
    let n = x.len();
    (0..n)
        .map(|i| {
            let prev = x[i.saturating_sub(1)];
            let next = x[(i + 1).min(n - 1)];
            x[i] > prev && x[i] >= next
        })
        .collect()
}

/// librosa `__last_beat`: the last local maximum of the cumulative score that reaches half
/// the median of all its local maxima; the last frame if there is none.
fn last_beat(cumscore: &[f64]) -> usize {
    let n = cumscore.len();
    let lm = local_max(cumscore);
    let mut peaks: Vec<f64> = cumscore
        .iter()
        .zip(&lm)
        .filter_map(|(&c, &m)| m.then_some(c))
        .collect();
    let Some(median) = median(&mut peaks) else {
        return n.saturating_sub(1);
    };
    let threshold = 0.5 * median;
    (0..n)
        .rev()
        .find(|&i| lm[i] && cumscore[i] >= threshold)
        .unwrap_or(n.saturating_sub(1))
}

/// librosa 0.11 `__trim_beats` with `trim=True`.
///
/// The threshold is half the RMS of the beats' local scores smoothed by `hanning(5)`;
/// librosa's slice `[2 : len(localscore) + 2]` of the full convolution keeps its two
/// trailing samples, reproduced here. Then beats are dropped from every frame at the start,
/// and at the end, whose local score does not exceed the threshold.
fn trim_beats(localscore: &[f64], is_beat: &mut [bool]) {
    let n = localscore.len();
    let vals: Vec<f64> = localscore
        .iter()
        .zip(is_beat.iter())
        .filter_map(|(&s, &b)| b.then_some(s))
        .collect();
    let m = vals.len();
    if m == 0 {
        return;
    }
    const W: [f64; 5] = [0.0, 0.5, 1.0, 0.5, 0.0];
    let full: Vec<f64> = (0..m + 4)
        .map(|j| {
            (0..5)
                .filter(|&k| j >= k && j - k < m)
                .map(|k| vals[j - k] * W[k])
                .sum()
        })
        .collect();
    let smooth = &full[2..(n + 2).min(m + 4)];
    let rms = (smooth.iter().map(|v| v * v).sum::<f64>() / smooth.len() as f64).sqrt();
    let threshold = 0.5 * rms;

    // librosa has no bound on these loops; stop at the ends.
    let mut i = 0;
    while i < n && localscore[i] <= threshold {
        is_beat[i] = false;
        i += 1;
    }
    let mut i = n;
    while i > 0 && localscore[i - 1] <= threshold {
        is_beat[i - 1] = false;
        i -= 1;
    }
}

/// `1 / (1 + CV)` of the inter-beat intervals (population std / mean); 0 below 3 beats.
pub(super) fn stability(beats: &[usize]) -> f64 {
    if beats.len() < 3 {
        return 0.0;
    }
    let ibi: Vec<f64> = beats.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let mean = ibi.iter().sum::<f64>() / ibi.len() as f64;
    if mean <= 0.0 {
        return 0.0;
    }
    1.0 / (1.0 + std_dev(&ibi, 0) / mean)
}
