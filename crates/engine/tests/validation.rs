//! The validation signals of the fingerprint definition (`docs/fingerprint.md`, "How it is
//! checked"; the product definition's section 5): one test per row of the table,
//! every expectation of the row, with the table's tolerances.
//!
//! Signals are generated in code (44 100 Hz and 20 s unless the row says otherwise). Each row
//! runs in full mode, and, where the excerpt plan changes what is analysed (loudness, crest,
//! bands, stereo, tempo of clicks, steady-sine dynamics), also in excerpt mode on a 150 s
//! version of the signal, which excerpt mode reads as three 30 s excerpts: the expectation must
//! hold there too.
//!
//! Run with `-- --nocapture` to see every measured value.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex, OnceLock};

use sonoprint_engine::{analyze_pcm, Fingerprint, Mode};

const SR: u32 = 44_100;
/// The default signal length.
const SECS: f64 = 20.0;
/// Long enough (over 120 s) for excerpt mode to use the three 30 s excerpts.
const LONG_SECS: f64 = 150.0;

// ---------------------------------------------------------------------------------------------
// Deterministic noise: SplitMix64 and Box–Muller.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` standard normal values (Box–Muller, both outputs used).
    fn gaussian(&mut self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
            let u2 = self.uniform();
            let r = (-2.0 * u1.ln()).sqrt();
            out.push(r * (2.0 * PI * u2).cos());
            out.push(r * (2.0 * PI * u2).sin());
        }
        out.truncate(n);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Signal generators. Everything is computed in f64 and stored as f32.

fn frames(rate: u32, secs: f64) -> usize {
    (rate as f64 * secs).round() as usize
}

fn db_to_amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// `amp · sin(2π f t)`, mono.
fn sine(freq: f64, amp: f64, rate: u32, secs: f64) -> Vec<f64> {
    (0..frames(rate, secs))
        .map(|n| amp * (2.0 * PI * freq * n as f64 / rate as f64).sin())
        .collect()
}

fn gaussian_noise(sigma: f64, seed: u64, rate: u32, secs: f64) -> Vec<f64> {
    Rng::new(seed)
        .gaussian(frames(rate, secs))
        .into_iter()
        .map(|v| sigma * v)
        .collect()
}

fn mono(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

fn stereo(l: &[f64], r: &[f64]) -> Vec<f32> {
    assert_eq!(l.len(), r.len());
    l.iter()
        .zip(r)
        .flat_map(|(&a, &b)| [a as f32, b as f32])
        .collect()
}

/// One click: a 50 ms burst `0.8·sin(2π·1000t)·e^(−40t)`.
fn click(rate: u32) -> Vec<f64> {
    (0..frames(rate, 0.05))
        .map(|n| {
            let t = n as f64 / rate as f64;
            0.8 * (2.0 * PI * 1000.0 * t).sin() * (-40.0 * t).exp()
        })
        .collect()
}

/// A click at every beat of `bpm` from t = 0, each moved by a uniform offset in
/// `±jitter` seconds (drawn from `seed`).
fn click_track(bpm: f64, secs: f64, jitter: f64, seed: u64) -> Vec<f64> {
    let mut x = vec![0.0; frames(SR, secs)];
    let burst = click(SR);
    let mut rng = Rng::new(seed);
    let period = 60.0 / bpm;
    let mut k = 0;
    loop {
        let mut t = k as f64 * period;
        if t >= secs {
            break;
        }
        if jitter > 0.0 {
            t = (t + (2.0 * rng.uniform() - 1.0) * jitter).max(0.0);
        }
        let start = (t * SR as f64).round() as usize;
        for (i, &v) in burst.iter().enumerate() {
            if let Some(s) = x.get_mut(start + i) {
                *s += v;
            }
        }
        k += 1;
    }
    x
}

// ---------------------------------------------------------------------------------------------
// Analysis, cached per signal so rows that share a signal analyse it once.

type Cell = Arc<OnceLock<Fingerprint>>;

fn cache() -> &'static Mutex<HashMap<String, Cell>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Cell>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn analyze(samples: Vec<f32>, rate: u32, channels: usize, mode: Mode) -> Fingerprint {
    let a = analyze_pcm(samples, rate, channels, mode)
        .unwrap_or_else(|e| panic!("analysis failed: {e}"));
    assert_eq!(a.metadata.mode, mode);
    a.fingerprint
}

/// The fingerprint of the signal named `key` in `mode`; `make` builds `(samples, rate,
/// channels)` the first time. In excerpt mode the signal must be long enough for the excerpts.
fn fingerprint(
    key: &str,
    mode: Mode,
    make: impl FnOnce() -> (Vec<f32>, u32, usize),
) -> Fingerprint {
    let cell = {
        let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(format!("{key}/{}", mode.as_str()))
            .or_default()
            .clone()
    };
    *cell.get_or_init(|| {
        let (samples, rate, channels) = make();
        let secs = samples.len() as f64 / channels as f64 / rate as f64;
        if mode == Mode::Excerpt {
            assert!(
                secs > 120.0,
                "{key}: {secs} s is analysed whole in excerpt mode"
            );
        }
        let a = analyze_pcm(samples, rate, channels, mode)
            .unwrap_or_else(|e| panic!("{key}: analysis failed: {e}"));
        assert_eq!(a.metadata.mode, mode);
        // Excerpt mode must really have read the three 30 s excerpts, full mode everything.
        let want = if mode == Mode::Excerpt { 90.0 } else { secs };
        assert!(
            (a.metadata.analyzed_sec - want).abs() < 1e-6,
            "{key}: analysed {} s, expected {want} s",
            a.metadata.analyzed_sec
        );
        a.fingerprint
    })
}

/// The full-mode fingerprint of the 20 s signal and the excerpt-mode fingerprint of its 150 s
/// version, labelled.
fn both_modes(
    key: &str,
    make: impl Fn(f64) -> (Vec<f32>, u32, usize),
) -> [(&'static str, Fingerprint); 2] {
    [
        ("full", fingerprint(key, Mode::Full, || make(SECS))),
        (
            "excerpt",
            fingerprint(&format!("{key}-long"), Mode::Excerpt, || make(LONG_SECS)),
        ),
    ]
}

fn full_only(
    key: &str,
    make: impl FnOnce() -> (Vec<f32>, u32, usize),
) -> [(&'static str, Fingerprint); 1] {
    [("full", fingerprint(key, Mode::Full, make))]
}

// Shared signals.

/// Mono 440 Hz sine at −6 dBFS.
fn make_sine_440(secs: f64) -> (Vec<f32>, u32, usize) {
    (mono(&sine(440.0, db_to_amp(-6.0), SR, secs)), SR, 1)
}

/// Mono 1 kHz sine at −20 dBFS peak.
fn make_sine_1k(secs: f64) -> (Vec<f32>, u32, usize) {
    (mono(&sine(1000.0, db_to_amp(-20.0), SR, secs)), SR, 1)
}

fn clicks(bpm: f64, secs: f64) -> (Vec<f32>, u32, usize) {
    (mono(&click_track(bpm, secs, 0.0, 0)), SR, 1)
}

// ---------------------------------------------------------------------------------------------
// Checking: every expectation of a row is checked and printed; the row fails at the end with
// the list of those that did not hold.

/// A number for the report: short, without float noise.
fn num(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:e}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

struct Check {
    row: &'static str,
    failures: Vec<String>,
}

impl Check {
    fn new(row: &'static str) -> Check {
        Check {
            row,
            failures: Vec::new(),
        }
    }

    fn record(&mut self, mode: &str, name: &str, got: f64, expected: String, ok: bool) {
        let line = format!(
            "[{}] {mode:>7} {name:<24} {got:>12.6}  expected {expected}{}",
            self.row,
            if ok { "" } else { "  FAIL" }
        );
        eprintln!("{line}");
        if !ok {
            self.failures.push(line);
        }
    }

    fn within(&mut self, mode: &str, name: &str, got: f64, want: f64, tol: f64) {
        let ok = got.is_finite() && (got - want).abs() <= tol;
        self.record(mode, name, got, format!("{} ± {}", num(want), num(tol)), ok);
    }

    fn at_least(&mut self, mode: &str, name: &str, got: f64, min: f64) {
        self.record(mode, name, got, format!(">= {}", num(min)), got >= min);
    }

    fn at_most(&mut self, mode: &str, name: &str, got: f64, max: f64) {
        self.record(mode, name, got, format!("<= {}", num(max)), got <= max);
    }

    fn exactly(&mut self, mode: &str, name: &str, got: f64, want: f64) {
        self.record(
            mode,
            name,
            got,
            format!("exactly {}", num(want)),
            got == want,
        );
    }

    fn all_finite(&mut self, mode: &str, fp: &Fingerprint) {
        let bad = fp.first_non_finite();
        self.record(
            mode,
            "every value finite",
            bad.map_or(1.0, |_| 0.0),
            "1 (finite)".into(),
            bad.is_none(),
        );
    }

    fn done(self) {
        assert!(
            self.failures.is_empty(),
            "{} expectation(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The rows of the table.

/// Stereo 1 kHz sine at `db` dBFS peak per channel.
fn ebu_sine(db: f64, secs: f64) -> (Vec<f32>, u32, usize) {
    let x = sine(1000.0, db_to_amp(db), SR, secs);
    (stereo(&x, &x), SR, 2)
}

#[test]
fn stereo_1k_sine_minus_23_dbfs_is_minus_23_lufs() {
    let mut c = Check::new("EBU 3341 case 1, -23 dBFS");
    for (mode, fp) in both_modes("ebu-23", |s| ebu_sine(-23.0, s)) {
        c.within(mode, "lufs", fp.lufs, -23.0, 0.1);
    }
    c.done();
}

#[test]
fn stereo_1k_sine_minus_33_dbfs_is_minus_33_lufs() {
    let mut c = Check::new("EBU 3341, -33 dBFS");
    for (mode, fp) in both_modes("ebu-33", |s| ebu_sine(-33.0, s)) {
        c.within(mode, "lufs", fp.lufs, -33.0, 0.1);
    }
    c.done();
}

#[test]
fn mono_1k_sine_minus_20_dbfs_is_dual_mono() {
    let mut c = Check::new("mono 1 kHz -20 dBFS");
    for (mode, fp) in both_modes("sine-1k", make_sine_1k) {
        c.within(mode, "lufs", fp.lufs, -20.0, 0.1);
        c.within(mode, "crest_db", fp.crest_db, 3.01, 0.05);
    }
    c.done();
}

#[test]
fn sine_440() {
    let mut c = Check::new("440 Hz -6 dBFS");
    for (mode, fp) in both_modes("sine-440", make_sine_440) {
        c.at_least(mode, "low_mid_pct", fp.low_mid_pct, 0.99);
        c.within(mode, "chroma_energy", fp.chroma_energy, 0.54, 0.05);
        c.at_least(mode, "pitch_stability", fp.pitch_stability, 0.95);
        c.at_least(mode, "harmonic_ratio", fp.harmonic_ratio, 0.95);
        c.at_most(mode, "spectral_flatness", fp.spectral_flatness, 0.01);
    }
    c.done();
}

#[test]
fn sine_1k() {
    // The table gives no level for this row; the -20 dBFS sine of the dual-mono row is reused.
    let mut c = Check::new("1 kHz sine");
    for (mode, fp) in both_modes("sine-1k", make_sine_1k) {
        c.at_least(mode, "mid_pct", fp.mid_pct, 0.99);
        c.within(
            mode,
            "spectral_centroid",
            fp.spectral_centroid,
            0.125,
            0.003,
        );
        c.within(mode, "spectral_rolloff", fp.spectral_rolloff, 0.101, 0.003);
        c.within(mode, "chroma_energy", fp.chroma_energy, 0.57, 0.05);
    }
    c.done();
}

#[test]
fn sines_100_and_1k_of_equal_amplitude() {
    let mut c = Check::new("100 Hz + 1 kHz");
    let make = |secs| {
        let a = sine(100.0, 0.25, SR, secs);
        let b = sine(1000.0, 0.25, SR, secs);
        let x: Vec<f64> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
        (mono(&x), SR, 1)
    };
    for (mode, fp) in both_modes("sines-100-1k", make) {
        c.within(mode, "bass_mid_ratio", fp.bass_mid_ratio, 0.0, 0.5);
        c.within(mode, "bass_pct", fp.bass_pct, 0.50, 0.01);
        c.within(mode, "mid_pct", fp.mid_pct, 0.50, 0.01);
    }
    c.done();
}

#[test]
fn white_noise_at_22050() {
    let mut c = Check::new("white noise 22 050 Hz");
    let make = || (mono(&gaussian_noise(0.1, 22050, 22_050, SECS)), 22_050, 1);
    for (mode, fp) in full_only("noise-22k", make) {
        c.within(mode, "spectral_flatness", fp.spectral_flatness, 0.56, 0.02);
        c.within(mode, "chroma_energy", fp.chroma_energy, 0.085, 0.01);
        c.at_most(mode, "pitch_stability", fp.pitch_stability, 0.1);
        c.within(mode, "harmonic_ratio", fp.harmonic_ratio, 0.50, 0.05);
    }
    c.done();
}

#[test]
fn white_noise_at_44100_bands_follow_bandwidth() {
    let mut c = Check::new("white noise 44 100 Hz");
    let make = |secs| (mono(&gaussian_noise(0.1, 44100, SR, secs)), SR, 1);
    for (mode, fp) in both_modes("noise-44k", make) {
        c.within(mode, "air_pct", fp.air_pct, 0.60, 0.03);
    }
    c.done();
}

#[test]
fn left_equals_right() {
    let mut c = Check::new("L = R");
    let make = |secs| {
        let x = sine(440.0, db_to_amp(-6.0), SR, secs);
        (stereo(&x, &x), SR, 2)
    };
    for (mode, fp) in both_modes("l-eq-r", make) {
        c.within(mode, "stereo_width", fp.stereo_width, 0.0, 1e-6);
        c.within(mode, "phase_correlation", fp.phase_correlation, 1.0, 1e-6);
    }
    c.done();
}

#[test]
fn right_is_minus_left() {
    let mut c = Check::new("R = -L");
    let make = |secs| {
        let x = sine(440.0, db_to_amp(-6.0), SR, secs);
        let y: Vec<f64> = x.iter().map(|v| -v).collect();
        (stereo(&x, &y), SR, 2)
    };
    for (mode, fp) in both_modes("r-eq-minus-l", make) {
        c.within(mode, "stereo_width", fp.stereo_width, 1.0, 1e-6);
        c.within(mode, "phase_correlation", fp.phase_correlation, -1.0, 1e-6);
        // The mono mix is digital silence: the 22k dimensions read as silence (section 3:
        // statistics over no active frame are 0, silence_ratio is 1, no pulse is tempo 0).
        c.exactly(mode, "tempo_bpm", fp.tempo_bpm, 0.0);
        c.exactly(mode, "rhythm_stability", fp.rhythm_stability, 0.0);
        c.exactly(mode, "transient_density", fp.transient_density, 0.0);
        c.exactly(mode, "silence_ratio", fp.silence_ratio, 1.0);
        c.exactly(mode, "spectral_centroid", fp.spectral_centroid, 0.0);
        c.exactly(mode, "spectral_rolloff", fp.spectral_rolloff, 0.0);
        c.exactly(mode, "spectral_flatness", fp.spectral_flatness, 0.0);
        c.exactly(mode, "harmonic_ratio", fp.harmonic_ratio, 0.0);
        c.exactly(mode, "pitch_stability", fp.pitch_stability, 0.0);
        c.exactly(mode, "chroma_energy", fp.chroma_energy, 0.0);
    }
    c.done();
}

#[test]
fn right_is_half_left() {
    let mut c = Check::new("R = 0.5 L");
    let make = |secs| {
        let x = sine(440.0, db_to_amp(-6.0), SR, secs);
        let y: Vec<f64> = x.iter().map(|v| 0.5 * v).collect();
        (stereo(&x, &y), SR, 2)
    };
    for (mode, fp) in both_modes("r-eq-half-l", make) {
        c.within(mode, "stereo_width", fp.stereo_width, 0.25, 1e-4);
        c.within(mode, "phase_correlation", fp.phase_correlation, 1.0, 1e-6);
    }
    c.done();
}

#[test]
fn independent_equal_level_noises() {
    let mut c = Check::new("independent noises");
    let make = |secs| {
        let l = gaussian_noise(0.1, 1, SR, secs);
        let r = gaussian_noise(0.1, 2, SR, secs);
        (stereo(&l, &r), SR, 2)
    };
    for (mode, fp) in both_modes("indep-noise", make) {
        c.within(mode, "stereo_width", fp.stereo_width, 0.50, 0.02);
        c.within(mode, "phase_correlation", fp.phase_correlation, 0.0, 0.02);
    }
    c.done();
}

fn click_row(bpm: f64) {
    let mut c = Check::new(match bpm as u32 {
        90 => "clicks 90 BPM",
        120 => "clicks 120 BPM",
        _ => "clicks 150 BPM",
    });
    for (mode, fp) in both_modes(&format!("clicks-{bpm}"), |s| clicks(bpm, s)) {
        c.within(mode, "tempo_bpm", fp.tempo_bpm, bpm, 0.03 * bpm);
        c.at_least(mode, "rhythm_stability", fp.rhythm_stability, 0.97);
        c.at_most(mode, "harmonic_ratio", fp.harmonic_ratio, 0.05);
    }
    c.done();
}

#[test]
fn clicks_90_bpm() {
    click_row(90.0);
}

#[test]
fn clicks_120_bpm() {
    click_row(120.0);
}

#[test]
fn clicks_150_bpm() {
    click_row(150.0);
}

#[test]
fn jittered_clicks_are_less_stable() {
    let mut c = Check::new("clicks 120 BPM ±40 ms");
    let clean = fingerprint("clicks-120", Mode::Full, || clicks(120.0, SECS));
    let jittered = fingerprint("clicks-120-jitter", Mode::Full, || {
        (mono(&click_track(120.0, SECS, 0.040, 0x5EED)), SR, 1)
    });
    c.record(
        "full",
        "rhythm_stability (clean)",
        clean.rhythm_stability,
        "reference 0.977".into(),
        true,
    );
    c.at_most(
        "full",
        "rhythm_stability",
        jittered.rhythm_stability,
        clean.rhythm_stability - 0.02,
    );
    c.done();
}

#[test]
fn sine_then_silence() {
    let mut c = Check::new("10 s sine + 10 s silence");
    let make = || {
        let mut x = sine(440.0, db_to_amp(-6.0), SR, 10.0);
        x.resize(frames(SR, 20.0), 0.0);
        (mono(&x), SR, 1)
    };
    for (mode, fp) in full_only("sine-then-silence", make) {
        c.within(mode, "silence_ratio", fp.silence_ratio, 0.50, 0.02);
    }
    c.done();
}

#[test]
fn steady_sine_dynamics() {
    let mut c = Check::new("steady sine");
    for (mode, fp) in both_modes("sine-440", make_sine_440) {
        c.at_most(
            mode,
            "dynamic_range_variation",
            fp.dynamic_range_variation,
            0.01,
        );
        c.at_most(
            mode,
            "loudness_variation_std",
            fp.loudness_variation_std,
            0.1,
        );
        c.at_least(mode, "peak_consistency", fp.peak_consistency, 0.99);
    }
    c.done();
}

#[test]
fn alternating_levels() {
    let mut c = Check::new("1 kHz -10/-25 dBFS every 5 s");
    let make = || {
        let x: Vec<f64> = (0..frames(SR, 60.0))
            .map(|n| {
                let t = n as f64 / SR as f64;
                // Even 5 s sections are loud. (Bit test: `is_multiple_of` is newer than the MSRV.)
                let db = if (n / frames(SR, 5.0)) & 1 == 0 {
                    -10.0
                } else {
                    -25.0
                };
                db_to_amp(db) * (2.0 * PI * 1000.0 * t).sin()
            })
            .collect();
        (mono(&x), SR, 1)
    };
    for (mode, fp) in full_only("alternating", make) {
        c.within(
            mode,
            "loudness_variation_std",
            fp.loudness_variation_std,
            6.3,
            0.7,
        );
        c.within(mode, "peak_consistency", fp.peak_consistency, 0.59, 0.03);
    }
    c.done();
}

fn bands(fp: &Fingerprint) -> [(&'static str, f64); 7] {
    [
        ("sub_bass_pct", fp.sub_bass_pct),
        ("bass_pct", fp.bass_pct),
        ("low_mid_pct", fp.low_mid_pct),
        ("mid_pct", fp.mid_pct),
        ("upper_mid_pct", fp.upper_mid_pct),
        ("presence_pct", fp.presence_pct),
        ("air_pct", fp.air_pct),
    ]
}

#[test]
fn digital_silence_stereo() {
    let mut c = Check::new("digital silence");
    let make = |secs| (vec![0f32; 2 * frames(SR, secs)], SR, 2);
    for (mode, fp) in both_modes("silence", make) {
        c.exactly(mode, "lufs", fp.lufs, -70.0);
        c.exactly(mode, "crest_db", fp.crest_db, 0.0);
        c.exactly(mode, "silence_ratio", fp.silence_ratio, 1.0);
        for (name, v) in bands(&fp) {
            c.within(mode, name, v, 1.0 / 7.0, 1e-12);
        }
        c.exactly(mode, "tempo_bpm", fp.tempo_bpm, 0.0);
        c.exactly(mode, "peak_consistency", fp.peak_consistency, 1.0);
        c.exactly(mode, "phase_correlation", fp.phase_correlation, 1.0);
        c.all_finite(mode, &fp);
    }
    c.done();
}

/// Broadband content for the rate row: Gaussian noise plus a 440 Hz sine, `channels`
/// independent noises.
fn broadband(rate: u32, channels: usize, seed: u64) -> Vec<f64> {
    let n = frames(rate, SECS);
    let tone = sine(440.0, 0.25, rate, SECS);
    let noises: Vec<Vec<f64>> = (0..channels)
        .map(|c| gaussian_noise(0.1, seed + c as u64, rate, SECS))
        .collect();
    (0..n)
        .flat_map(|i| {
            let t = tone[i];
            noises.iter().map(move |ch| t + ch[i])
        })
        .collect()
}

#[test]
fn unusual_rates_and_depths() {
    let mut c = Check::new("8k mono / 96k stereo / 192k 24-bit");
    let cases: [(&'static str, u32, usize, bool); 3] = [
        ("8k-mono", 8_000, 1, false),
        ("96k-stereo", 96_000, 2, false),
        ("192k-24bit", 192_000, 2, true),
    ];
    for (key, rate, channels, quantise) in cases {
        let fp = fingerprint(key, Mode::Full, || {
            let x = broadband(rate, channels, rate as u64);
            let step = 1.0 / (1u64 << 23) as f64;
            let samples = x
                .iter()
                .map(|&v| {
                    if quantise {
                        ((v / step).round() * step) as f32
                    } else {
                        v as f32
                    }
                })
                .collect();
            (samples, rate, channels)
        });
        c.all_finite(key, &fp);
        let nyquist = rate as f64 / 2.0;
        let lower_edges = [20.0, 60.0, 250.0, 500.0, 2000.0, 4000.0, 8000.0];
        for ((name, v), lo) in bands(&fp).into_iter().zip(lower_edges) {
            // At 8 kHz the presence band [4000, 8000) starts at Nyquist: nothing of it is
            // below Nyquist, so it counts as above.
            if lo >= nyquist {
                c.exactly(key, name, v, 0.0);
            }
        }
        let sum: f64 = bands(&fp).iter().map(|b| b.1).sum();
        c.within(key, "bands sum", sum, 1.0, 1e-9);
    }
    c.done();
}

/// Stereo mix of clicks, noise and a tone: every feature has something to read.
fn mixed(secs: f64) -> Vec<f32> {
    let clicks = click_track(120.0, secs, 0.0, 0);
    let noise = gaussian_noise(0.05, 7, SR, secs);
    let tone = sine(330.0, 0.2, SR, secs);
    let l: Vec<f64> = (0..clicks.len())
        .map(|i| clicks[i] + noise[i] + tone[i])
        .collect();
    let r: Vec<f64> = (0..clicks.len())
        .map(|i| clicks[i] - noise[i] + 0.5 * tone[i])
        .collect();
    stereo(&l, &r)
}

#[test]
fn same_input_gives_bit_identical_fingerprints() {
    let bits = |fp: &Fingerprint| fp.to_array().map(f64::to_bits);
    for (mode, secs) in [(Mode::Full, SECS), (Mode::Excerpt, LONG_SECS)] {
        let a = analyze(mixed(secs), SR, 2, mode);
        let b = analyze(mixed(secs), SR, 2, mode);
        for ((name, x), y) in Fingerprint::NAMES.iter().zip(bits(&a)).zip(bits(&b)) {
            assert_eq!(
                x,
                y,
                "{name} differs between two {} runs on the same input",
                mode.as_str()
            );
        }
    }
}
