//! Rows 11–13 of fingerprint-v1: `tempo_bpm`, `rhythm_stability`, `transient_density`.
//!
//! Everything follows librosa 0.11 with its defaults, so the values agree with the reference
//! implementation the validation table was computed with:
//! - [`OnsetEnvelope`]: `onset.onset_strength(y, sr=22050)`;
//! - [`analyze_envelope`]: `feature.tempo`, `beat.beat_track(bpm=tempo)` and
//!   `onset.onset_detect` on that envelope;
//! - [`combine`]: the per-excerpt results pooled as the document states.

use crate::dsp::mel::MelFilterbank;
use crate::dsp::{HOP, N_FFT, SR22};
use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

/// Mel bands of the onset spectrogram (librosa `melspectrogram` default).
const N_MELS: usize = 128;
/// `power_to_db` floor on the power and dynamic range kept below the maximum.
const AMIN: f32 = 1e-10;
const TOP_DB: f32 = 80.0;
/// Envelope frames before the first difference: `lag + n_fft // (2 * hop)` (centred STFT).
const CENTER_PAD: usize = 1 + N_FFT / (2 * HOP);
/// Mel dB frames kept before the envelope of a block is computed (see [`OnsetEnvelope`]).
const MAX_BUFFERED_FRAMES: usize = 4096;
/// Envelope frames per second.
const FRAME_RATE: f64 = SR22 as f64 / HOP as f64;
/// Tempogram window: librosa `time_to_frames(ac_size=8.0)` = floor(8 · 22050) // 512 = 344.
const TEMPO_WIN: usize = (8 * SR22 as usize) / HOP;
/// FFT length for the per-frame autocorrelation: ≥ 2·344 − 1 so it is not circular.
const AC_FFT: usize = 1024;
/// Log-normal tempo prior: centre and width in octaves (`start_bpm`, `std_bpm`).
const START_BPM: f64 = 120.0;
const STD_BPM: f64 = 1.0;
/// Only lags whose BPM is below this are candidates (`max_tempo`).
const MAX_TEMPO: f64 = 320.0;
/// Beat tracker tightness (`beat_track` default).
const TIGHTNESS: f64 = 100.0;
/// numpy `finfo(float32).tiny`: librosa's "too small to normalise" threshold for the
/// float32 tempogram.
const TINY_F32: f64 = f32::MIN_POSITIVE as f64;

/// Builder of the onset strength envelope of one excerpt, fed with power frames in order.
///
/// Output: librosa `onset.onset_strength(y, sr=22050)`: 128-band Slaney mel power,
/// `power_to_db(ref=1, amin=1e-10, top_db=80)`, mean over bands of the positive first
/// difference (lag 1, no max filter), 3 leading zeros for the centred frames, trimmed to
/// the number of frames.
///
/// Memory is bounded: `top_db` clamps every value to `max - 80` where `max` is taken over
/// the whole excerpt, which would need every mel frame. Up to 4096 frames (~95 s) are kept,
/// so the result is exact for any excerpt up to that length (30 s excerpts, tracks up to
/// ~95 s in full mode). Past that, each block of 4096 frames is turned into envelope values
/// with the floor from the running maximum so far; a later louder passage cannot raise the
/// floor of blocks already done. That only matters for content more than 80 dB below the
/// loudest frame, so longer inputs are nearly exact.
pub struct OnsetEnvelope {
    mel: MelFilterbank,
    mel_frame: Vec<f32>,
    /// Unclamped dB frames not yet differenced, `N_MELS` values each.
    buffered: Vec<f32>,
    /// Last unclamped dB frame of the previous block: the left side of the next difference.
    carry: Option<Vec<f32>>,
    /// Largest dB value seen so far.
    running_max: f32,
    /// Mean positive difference between frame `i + 1` and frame `i`.
    diffs: Vec<f32>,
    n_frames: usize,
}

impl Default for OnsetEnvelope {
    fn default() -> Self {
        Self::new()
    }
}

impl OnsetEnvelope {
    pub fn new() -> Self {
        Self {
            mel: MelFilterbank::new(SR22, N_FFT, N_MELS),
            mel_frame: vec![0.0; N_MELS],
            buffered: Vec::with_capacity(N_MELS * 256),
            carry: None,
            running_max: f32::NEG_INFINITY,
            diffs: Vec::new(),
            n_frames: 0,
        }
    }

    /// Add one frame: the power spectrum `|S|^2` (1025 values) of the next STFT frame.
    pub fn push_power_frame(&mut self, power: &[f32]) {
        if self.buffered.len() >= MAX_BUFFERED_FRAMES * N_MELS {
            self.flush();
        }
        self.mel.apply(power, &mut self.mel_frame);
        for &p in &self.mel_frame {
            // Non-finite power would make every later value NaN; treat +inf as the largest
            // float and NaN as silence so the envelope stays finite.
            let p = if p.is_finite() {
                p.max(AMIN)
            } else if p > 0.0 {
                f32::MAX
            } else {
                AMIN
            };
            let db = 10.0 * p.log10();
            self.running_max = self.running_max.max(db);
            self.buffered.push(db);
        }
        self.n_frames += 1;
    }

    /// Difference the buffered frames with the current `top_db` floor.
    fn flush(&mut self) {
        if self.buffered.is_empty() {
            return;
        }
        let floor = self.running_max - TOP_DB;
        let mut prev = self.carry.take();
        for frame in self.buffered.chunks_exact(N_MELS) {
            if let Some(p) = &prev {
                let sum: f64 = frame
                    .iter()
                    .zip(p)
                    .map(|(&c, &p)| f64::from((c.max(floor) - p.max(floor)).max(0.0)))
                    .sum();
                self.diffs.push((sum / N_MELS as f64) as f32);
            }
            prev = Some(frame.to_vec());
        }
        self.carry = prev;
        self.buffered.clear();
    }

    /// The envelope, one value per pushed frame.
    pub fn finish(mut self) -> Vec<f32> {
        self.flush();
        let n = self.n_frames;
        let mut env = vec![0.0f32; n];
        for (slot, &d) in env.iter_mut().skip(CENTER_PAD).zip(&self.diffs) {
            *slot = d;
        }
        env
    }
}

/// Rhythm of one excerpt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExcerptRhythm {
    /// librosa `feature.tempo`; 0 without a pulse (all-zero envelope or < 4 beats).
    pub tempo_bpm: f64,
    /// Beats found by the tracker (after trimming).
    pub beats: usize,
    /// `1 / (1 + CV)` of the inter-beat intervals; 0 with fewer than 3 beats.
    pub stability: f64,
    /// Onsets from librosa `onset.onset_detect`.
    pub onsets: usize,
}

/// Tempo, beats and onsets of one excerpt's onset envelope (from [`OnsetEnvelope`]).
pub fn analyze_envelope(env: &[f32]) -> ExcerptRhythm {
    // Non-finite input would poison every sum below; such a frame carries no onset.
    let x: Vec<f64> = env
        .iter()
        .map(|&v| if v.is_finite() { f64::from(v) } else { 0.0 })
        .collect();
    let onsets = count_onsets(&x);
    // librosa: "Do we have any onsets to grab?" An all-zero envelope has no pulse.
    if !x.iter().any(|&v| v != 0.0) {
        return ExcerptRhythm {
            tempo_bpm: 0.0,
            beats: 0,
            stability: 0.0,
            onsets,
        };
    }
    let tempo = estimate_tempo(&x);
    let beats = track_beats(&x, tempo);
    ExcerptRhythm {
        tempo_bpm: if beats.len() < 4 { 0.0 } else { tempo },
        beats: beats.len(),
        stability: stability(&beats),
        onsets,
    }
}

/// Pool the excerpts: `(tempo_bpm, rhythm_stability, transient_density)`.
///
/// Tempo is the median of the excerpt tempi, stability the mean weighted by beat count,
/// transient density the onset rate over all analysed seconds, divided by 10 and clipped.
pub fn combine(excerpts: &[ExcerptRhythm], analysed_seconds: f64) -> (f64, f64, f64) {
    let mut tempi: Vec<f64> = excerpts
        .iter()
        .map(|e| {
            if e.tempo_bpm.is_finite() {
                e.tempo_bpm
            } else {
                0.0
            }
        })
        .collect();
    tempi.sort_by(f64::total_cmp);
    let tempo = median_sorted(&tempi).unwrap_or(0.0);

    let beats: usize = excerpts.iter().map(|e| e.beats).sum();
    let stability = if beats == 0 {
        0.0
    } else {
        let weighted: f64 = excerpts
            .iter()
            .filter(|e| e.stability.is_finite())
            .map(|e| e.beats as f64 * e.stability)
            .sum();
        (weighted / beats as f64).clamp(0.0, 1.0)
    };

    let onsets: usize = excerpts.iter().map(|e| e.onsets).sum();
    let density = if analysed_seconds.is_finite() && analysed_seconds > 0.0 {
        (onsets as f64 / analysed_seconds / 10.0).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (tempo, stability, density)
}

/// numpy `median` of sorted values: the middle one, or the mean of the middle two.
fn median_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        None
    } else if n % 2 == 1 {
        Some(v[n / 2])
    } else {
        Some(0.5 * (v[n / 2 - 1] + v[n / 2]))
    }
}

/// Python's `round` and numpy's `round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// BPM of tempogram lag `k` (librosa `tempo_frequencies`); lag 0 is infinitely fast.
fn lag_bpm(k: usize) -> f64 {
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
fn estimate_tempo(x: &[f64]) -> f64 {
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

    let mut planner = RealFftPlanner::<f64>::new();
    let r2c = planner.plan_fft_forward(AC_FFT);
    let c2r = planner.plan_fft_inverse(AC_FFT);
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

/// librosa 0.11 `beat.beat_track(onset_envelope=x, bpm=bpm, tightness=100, trim=True)`:
/// the beat frames, ascending.
fn track_beats(x: &[f64], bpm: f64) -> Vec<usize> {
    let n = x.len();
    if n == 0 || !(bpm.is_finite() && bpm > 0.0) {
        return Vec::new();
    }
    // Frames per beat, rounded as numpy does. At least 2 so the search range below never
    // includes the frame itself (bpm ≤ 320 gives ≥ 8 anyway).
    let fpb = round_half_even(FRAME_RATE * 60.0 / bpm).clamp(2.0, 1e6);

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
    let d_min = (round_half_even(fpb / 2.0) as usize).max(1);
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
    peaks.sort_by(f64::total_cmp);
    let Some(median) = median_sorted(&peaks) else {
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
fn stability(beats: &[usize]) -> f64 {
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

/// librosa `onset.onset_detect(onset_envelope=x)` with defaults: the number of onsets.
///
/// The envelope is min-max normalised, then `util.peak_pick` with the integer parameters
/// librosa derives at 22050 Hz / 512: pre_max = 0.03·sr//hop = 1, post_max = 0·sr//hop + 1
/// = 1, pre_avg = 0.10·sr//hop = 4, post_avg = 4 + 1 = 5, wait = 1, delta = 0.07.
fn count_onsets(x: &[f64]) -> usize {
    const PRE_MAX: usize = 1;
    const POST_MAX: usize = 1;
    const PRE_AVG: usize = 4;
    const POST_AVG: usize = 5;
    const WAIT: usize = 1;
    const DELTA: f64 = 0.07;

    let n = x.len();
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = x.iter().map(|&v| v - min).collect();
    let max = shifted.iter().copied().fold(0.0, f64::max);
    if !(max > 0.0 && max.is_finite()) {
        // Nothing to grab (constant or empty envelope).
        return 0;
    }
    let y: Vec<f64> = shifted.iter().map(|&v| v / max).collect();
    let y_min = y.iter().copied().fold(f64::INFINITY, f64::min);

    // Prefix sums for the moving average.
    let mut prefix = vec![0.0f64; n + 1];
    for (i, &v) in y.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }

    let mut count = 0;
    let mut last_onset: Option<usize> = None;
    for i in 0..n {
        // scipy maximum_filter1d(size=pre_max+post_max=2, origin=ceil((1-1)/2)=0,
        // mode='constant', cval=min): window x[i-1..=i], outside = min.
        let lo = i as isize - PRE_MAX as isize;
        let hi = i + POST_MAX; // exclusive
        let mut mov_max = if lo < 0 { y_min } else { f64::NEG_INFINITY };
        for &v in &y[lo.max(0) as usize..hi.min(n)] {
            mov_max = mov_max.max(v);
        }
        if hi > n {
            mov_max = mov_max.max(y_min);
        }
        // scipy uniform_filter1d(size=9, origin=ceil((4-5)/2)=0, mode='nearest') is the mean
        // of x[i-4..=i+4]; librosa replaces it near both edges by the mean over the
        // truncated window x[max(0, i-4) .. i+5], so it is that mean everywhere.
        let a = i.saturating_sub(PRE_AVG);
        let b = (i + POST_AVG).min(n);
        let mov_avg = (prefix[b] - prefix[a]) / (b - a) as f64;

        let v = y[i];
        // detections = x * (x == mov_max), kept where >= mov_avg + delta; nonzero only.
        let waited = match last_onset {
            None => true,
            Some(l) => i > l + WAIT,
        };
        if v == mov_max && v >= mov_avg + DELTA && v != 0.0 && waited {
            count += 1;
            last_onset = Some(i);
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::N_BINS;
    use realfft::RealFftPlanner;

    /// librosa-style STFT power frames: periodic Hann 2048, centred with 1024 zeros on each
    /// side, hop 512.
    fn power_frames(y: &[f32]) -> Vec<Vec<f32>> {
        let pad = N_FFT / 2;
        let mut padded = vec![0.0f64; y.len() + 2 * pad];
        for (p, &v) in padded[pad..].iter_mut().zip(y) {
            *p = f64::from(v);
        }
        let window = crate::dsp::hann(N_FFT);
        let n_frames = 1 + y.len() / HOP;
        let mut planner = RealFftPlanner::<f64>::new();
        let fft = planner.plan_fft_forward(N_FFT);
        let mut buf = fft.make_input_vec();
        let mut spec = fft.make_output_vec();
        (0..n_frames)
            .map(|t| {
                let frame = &padded[t * HOP..t * HOP + N_FFT];
                for ((b, &v), &w) in buf.iter_mut().zip(frame).zip(&window) {
                    *b = v * w;
                }
                fft.process(&mut buf, &mut spec).unwrap();
                spec.iter().map(|c| c.norm_sqr() as f32).collect()
            })
            .collect()
    }

    fn envelope(y: &[f32]) -> Vec<f32> {
        let mut oe = OnsetEnvelope::new();
        for f in power_frames(y) {
            assert_eq!(f.len(), N_BINS);
            oe.push_power_frame(&f);
        }
        oe.finish()
    }

    /// 50 ms bursts `0.8·sin(2π·1000t)·e^(−40t)` starting at the given times, at 22050 Hz.
    fn clicks_at(times: &[f64], seconds: f64) -> Vec<f32> {
        let sr = f64::from(SR22);
        let mut y = vec![0.0f32; (seconds * sr) as usize];
        let burst = (0.05 * sr) as usize;
        for &t0 in times {
            let s0 = (t0 * sr).round().max(0.0) as usize;
            for j in 0..burst {
                let t = j as f64 / sr;
                if let Some(s) = y.get_mut(s0 + j) {
                    *s += (0.8
                        * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
                        * (-40.0 * t).exp()) as f32;
                }
            }
        }
        y
    }

    fn click_times(bpm: f64, seconds: f64) -> Vec<f64> {
        let period = 60.0 / bpm;
        (0..)
            .map(|k| k as f64 * period)
            .take_while(|&t| t < seconds)
            .collect()
    }

    /// xorshift64*: a fixed-seed generator, uniform in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn analyse(y: &[f32]) -> ExcerptRhythm {
        analyze_envelope(&envelope(y))
    }

    #[test]
    fn click_tracks_tempo_and_stability() {
        // Reference (librosa 0.11): 89.1, 117.5, 152.0.
        for &(bpm, reference) in &[(90.0, 89.1), (120.0, 117.5), (150.0, 152.0)] {
            let r = analyse(&clicks_at(&click_times(bpm, 20.0), 20.0));
            eprintln!("{bpm} BPM clicks: {r:?}");
            assert!(
                (r.tempo_bpm - bpm).abs() <= 0.03 * bpm,
                "{bpm}: tempo {}",
                r.tempo_bpm
            );
            assert!(
                (r.tempo_bpm - reference).abs() < 0.1,
                "{bpm}: {}",
                r.tempo_bpm
            );
            assert!(r.stability >= 0.97, "{bpm}: stability {}", r.stability);
            // One onset per click, roughly.
            let n_clicks = click_times(bpm, 20.0).len();
            assert!(
                r.onsets.abs_diff(n_clicks) <= 2,
                "{bpm}: {} onsets",
                r.onsets
            );
            assert!(r.beats.abs_diff(n_clicks) <= 3, "{bpm}: {} beats", r.beats);
        }
    }

    #[test]
    fn jitter_lowers_stability() {
        let clean = analyse(&clicks_at(&click_times(120.0, 20.0), 20.0));
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        let jittered: Vec<f64> = click_times(120.0, 20.0)
            .into_iter()
            .map(|t| (t + (rng.next_f64() * 2.0 - 1.0) * 0.040).max(0.0))
            .collect();
        let jit = analyse(&clicks_at(&jittered, 20.0));
        eprintln!("clean {clean:?}\njitter {jit:?}");
        assert!(
            jit.stability <= clean.stability - 0.02,
            "clean {} jitter {}",
            clean.stability,
            jit.stability
        );
        assert!(jit.stability > 0.5);
    }

    #[test]
    fn silence_has_no_rhythm() {
        let y = vec![0.0f32; 20 * SR22 as usize];
        let env = envelope(&y);
        assert_eq!(env.len(), 1 + y.len() / HOP);
        assert!(env.iter().all(|&v| v == 0.0));
        let r = analyze_envelope(&env);
        assert_eq!(
            r,
            ExcerptRhythm {
                tempo_bpm: 0.0,
                beats: 0,
                stability: 0.0,
                onsets: 0
            }
        );
        assert_eq!(combine(&[r], 20.0), (0.0, 0.0, 0.0));
    }

    #[test]
    fn white_noise_is_finite() {
        let mut rng = Rng(42);
        let y: Vec<f32> = (0..20 * SR22 as usize)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32 * 0.5)
            .collect();
        let env = envelope(&y);
        assert!(env.iter().all(|v| v.is_finite() && *v >= 0.0));
        let r = analyze_envelope(&env);
        eprintln!("noise: {r:?}");
        assert!(r.tempo_bpm.is_finite() && r.stability.is_finite());
        assert!(r.tempo_bpm == 0.0 || (40.0..320.0).contains(&r.tempo_bpm));
        assert!((0.0..=1.0).contains(&r.stability));
    }

    #[test]
    fn degenerate_envelopes_are_finite() {
        let cases: Vec<Vec<f32>> = vec![
            vec![],
            vec![1.0],
            vec![0.0, 5.0],
            vec![3.0; 500],
            vec![1e-30; 500],
            (0..500)
                .map(|i| if i == 250 { 1e-38 } else { 0.0 })
                .collect(),
            (0..500)
                .map(|i| match i % 3 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    _ => 1.0,
                })
                .collect(),
        ];
        for env in &cases {
            let r = analyze_envelope(env);
            assert!(r.tempo_bpm.is_finite() && r.stability.is_finite(), "{r:?}");
        }
        // Degenerate power frames.
        let mut oe = OnsetEnvelope::new();
        for k in 0..10 {
            let v = match k % 4 {
                0 => 0.0,
                1 => f32::INFINITY,
                2 => f32::NAN,
                _ => 1e-30,
            };
            oe.push_power_frame(&vec![v; N_BINS]);
        }
        oe.push_power_frame(&[]);
        let env = oe.finish();
        assert_eq!(env.len(), 11);
        assert!(env.iter().all(|v| v.is_finite()));
        assert_eq!(OnsetEnvelope::new().finish(), Vec::<f32>::new());
    }

    #[test]
    fn envelope_layout_matches_librosa() {
        // A step from silence to a flat spectrum at frame 5. The difference between frames 4
        // and 5 is difference 4; with the 3 leading frames (lag 1 + n_fft/(2·hop)) it lands
        // at index 7. Silence sits at the top_db floor, so band m rises by
        // 80 − (max_db − db_m) dB, db_m = 10·log10(Σ_k weight(m, k)).
        let mut oe = OnsetEnvelope::new();
        for t in 0..10 {
            let v = if t >= 5 { 1.0 } else { 0.0 };
            oe.push_power_frame(&vec![v; N_BINS]);
        }
        let env = oe.finish();
        assert_eq!(env.len(), 10);
        let fb = MelFilterbank::new(SR22, N_FFT, N_MELS);
        let db: Vec<f64> = (0..N_MELS)
            .map(|m| {
                let s: f64 = (0..N_BINS).map(|k| f64::from(fb.weight(m, k))).sum();
                10.0 * s.log10()
            })
            .collect();
        let max_db = db.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let want = db.iter().map(|d| 80.0 - (max_db - d)).sum::<f64>() / N_MELS as f64;
        for (i, &v) in env.iter().enumerate() {
            if i == 7 {
                assert!((f64::from(v) - want).abs() < 1e-3, "{v} vs {want}");
            } else {
                assert_eq!(v, 0.0, "index {i}");
            }
        }
    }

    #[test]
    fn long_input_is_blocked_and_nearly_exact() {
        // 10 000 frames of a click pattern: exact for the first block, finite throughout.
        let y = clicks_at(&click_times(120.0, 120.0), 120.0);
        let frames = power_frames(&y);
        let mut oe = OnsetEnvelope::new();
        for f in &frames {
            oe.push_power_frame(f);
        }
        let env = oe.finish();
        assert_eq!(env.len(), frames.len());
        let mut short = OnsetEnvelope::new();
        for f in &frames[..MAX_BUFFERED_FRAMES] {
            short.push_power_frame(f);
        }
        let short = short.finish();
        // The first block is differenced with the floor of its own maximum either way.
        assert_eq!(&env[..MAX_BUFFERED_FRAMES], &short[..]);
        let r = analyze_envelope(&env);
        assert!((r.tempo_bpm - 117.45).abs() < 0.1, "{r:?}");
    }

    #[test]
    fn combine_rules() {
        let e = |tempo_bpm, beats, stability, onsets| ExcerptRhythm {
            tempo_bpm,
            beats,
            stability,
            onsets,
        };
        let (t, s, d) = combine(&[e(120.0, 40, 0.9, 40)], 20.0);
        assert_eq!((t, s), (120.0, 0.9));
        assert!((d - 0.2).abs() < 1e-12);
        let (t, s, d) = combine(
            &[
                e(100.0, 10, 1.0, 100),
                e(130.0, 30, 0.5, 200),
                e(90.0, 0, 0.0, 0),
            ],
            90.0,
        );
        assert_eq!(t, 100.0);
        assert!((s - (10.0 + 15.0) / 40.0).abs() < 1e-12);
        assert!((d - 300.0 / 90.0 / 10.0).abs() < 1e-12);
        // Even count: mean of the middle two; density clipped to 1.
        let (t, _, d) = combine(&[e(100.0, 4, 1.0, 1000), e(120.0, 4, 1.0, 0)], 10.0);
        assert_eq!((t, d), (110.0, 1.0));
        assert_eq!(combine(&[], 0.0), (0.0, 0.0, 0.0));
    }

    #[test]
    fn peak_pick_edges() {
        // A single isolated peak in the middle; the shifted ramp has no peak.
        let mut x = vec![0.0f64; 50];
        x[25] = 1.0;
        assert_eq!(count_onsets(&x), 1);
        // Peaks on consecutive frames: `wait` keeps only the first.
        x[26] = 1.0;
        assert_eq!(count_onsets(&x), 1);
        // A peak at frame 0 counts (window truncated at the start).
        let mut y = vec![0.0f64; 50];
        y[0] = 1.0;
        assert_eq!(count_onsets(&y), 1);
        assert_eq!(count_onsets(&[]), 0);
        assert_eq!(count_onsets(&[2.0; 10]), 0);
    }

    #[test]
    fn round_half_even_matches_numpy() {
        assert_eq!(round_half_even(21.5), 22.0);
        assert_eq!(round_half_even(14.5), 14.0);
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }
}
