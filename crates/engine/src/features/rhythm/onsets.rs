//! Onset counting of one excerpt (librosa `onset.onset_detect`, i.e. `util.peak_pick`).

/// librosa `onset.onset_detect(onset_envelope=x)` with defaults: the number of onsets.
///
/// The envelope is min-max normalised, then `util.peak_pick` with the integer parameters
/// librosa derives at 22050 Hz / 512: pre_max = 0.03·sr//hop = 1, post_max = 0·sr//hop + 1
/// = 1, pre_avg = 0.10·sr//hop = 4, post_avg = 4 + 1 = 5, wait = 1, delta = 0.07.
pub(super) fn count_onsets(x: &[f64]) -> usize {
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
