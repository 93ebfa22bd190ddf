//! Rows 1–7 and 10 of the fingerprint: the share of power in seven frequency bands and the
//! bass-to-mid ratio, from a Welch power spectrum of the mono mix at the file's own rate
//! (`docs/fingerprint.md`).

use std::sync::Arc;

use realfft::RealToComplex;

use super::{Extractor, Needs, Output, Summary};

/// The band dimensions, lowest band first.
const BAND_NAMES: [&str; 7] = [
    "sub_bass_pct",
    "bass_pct",
    "low_mid_pct",
    "mid_pct",
    "upper_mid_pct",
    "presence_pct",
    "air_pct",
];

/// Welch frame length for the band spectrum.
const WELCH_N: usize = 8192;
const BAND_EDGES: [f64; 8] = [20.0, 60.0, 250.0, 500.0, 2000.0, 4000.0, 8000.0, 20000.0];

/// Welch power spectrum of the mono mix: Hann frames of 8192, 50 % overlap, `|X|^2` summed.
pub struct Welch {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    buf: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    power: Vec<f64>,
    /// Frames taken in the current segment.
    seg_frames: usize,
    rate: f64,
}

impl Welch {
    pub fn new(rate: u32) -> Welch {
        let fft = crate::dsp::rfft::plan_forward::<f32>(WELCH_N);
        let window = crate::dsp::hann(WELCH_N)
            .into_iter()
            .map(|w| w as f32)
            .collect();
        Welch {
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            buf: Vec::with_capacity(2 * WELCH_N),
            input: vec![0.0; WELCH_N],
            power: vec![0.0; WELCH_N / 2 + 1],
            seg_frames: 0,
            rate: rate as f64,
        }
    }

    pub fn push(&mut self, mono: &[f32]) {
        let mut rest = mono;
        while !rest.is_empty() {
            let take = (WELCH_N - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == WELCH_N {
                self.frame();
                self.buf.drain(..WELCH_N / 2);
            }
        }
    }

    fn frame(&mut self) {
        for ((d, &s), &w) in self.input.iter_mut().zip(&self.buf).zip(&self.window) {
            *d = s * w;
        }
        self.input[self.buf.len()..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .expect("buffers come from the FFT's own plan, so their lengths match");
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p += (c.re as f64).powi(2) + (c.im as f64).powi(2);
        }
        self.seg_frames += 1;
    }

    /// Ends a segment. A segment shorter than one frame still counts, zero-padded, so that short
    /// files get a spectrum; otherwise the incomplete last frame is dropped (as scipy's Welch).
    pub fn end_segment(&mut self) {
        if self.seg_frames == 0 && !self.buf.is_empty() {
            self.frame();
        }
        self.buf.clear();
        self.seg_frames = 0;
    }

    /// Power in each of the seven bands (bins whose centre lies in the band, below Nyquist).
    pub fn band_powers(&self) -> [f64; 7] {
        let nyquist = self.rate / 2.0;
        let mut bands = [0f64; 7];
        for (k, &p) in self.power.iter().enumerate() {
            let f = k as f64 * self.rate / WELCH_N as f64;
            if f >= nyquist {
                break;
            }
            if let Some(b) = (0..7).find(|&b| f >= BAND_EDGES[b] && f < BAND_EDGES[b + 1]) {
                bands[b] += p;
            }
        }
        bands
    }
}

/// The seven band fractions (1/7 each for silence) and `bass_mid_ratio` in dB.
pub fn bands_and_ratio(p: [f64; 7]) -> ([f64; 7], f64) {
    let total: f64 = p.iter().sum();
    let fractions = if total > 0.0 {
        p.map(|v| v / total)
    } else {
        [1.0 / 7.0; 7]
    };
    let bass = p[1];
    let mid = p[2] + p[3];
    let ratio = match (bass > 0.0, mid > 0.0) {
        (false, false) => 0.0,
        (true, false) => 60.0,
        (false, true) => -60.0,
        (true, true) => (10.0 * (bass / mid).log10()).clamp(-60.0, 60.0),
    };
    (fractions, ratio)
}

/// The band extractor: [`Welch`] on the mono mix.
pub struct Bands {
    welch: Welch,
}

impl Bands {
    pub fn new(rate: u32) -> Bands {
        Bands {
            welch: Welch::new(rate),
        }
    }
}

impl Extractor for Bands {
    fn name(&self) -> &'static str {
        "bands"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &[
            "sub_bass_pct",
            "bass_pct",
            "low_mid_pct",
            "mid_pct",
            "upper_mid_pct",
            "presence_pct",
            "air_pct",
            "bass_mid_ratio",
        ]
    }

    fn needs(&self) -> Needs {
        Needs {
            mono: true,
            ..Needs::default()
        }
    }

    fn push_mono(&mut self, x: &[f32]) {
        self.welch.push(x);
    }

    fn end_segment(&mut self) {
        self.welch.end_segment();
    }

    fn finish(&mut self, _: &Summary, out: &mut Output) {
        let (fractions, ratio) = bands_and_ratio(self.welch.band_powers());
        for (name, v) in BAND_NAMES.into_iter().zip(fractions) {
            out.set(name, v);
        }
        out.set("bass_mid_ratio", ratio);
    }
}
