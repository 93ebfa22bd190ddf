//! Rows 11–13 of the fingerprint (`docs/fingerprint.md`): `tempo_bpm`, `rhythm_stability`, `transient_density`.
//!
//! Everything follows librosa 0.11 with its defaults, so the values agree with the reference
//! implementation the validation table was computed with; one file per algorithm:
//! - [`onset`]: the onset strength envelope, `onset.onset_strength(y, sr=22050)`;
//! - [`tempo`]: `feature.tempo` on that envelope;
//! - [`beats`]: `beat.beat_track(bpm=tempo)` and the regularity of the beats;
//! - [`onsets`]: `onset.onset_detect`, the onset count;
//! - here: [`analyze_envelope`] runs the three on one excerpt's envelope, [`combine`] pools the
//!   excerpts as `docs/fingerprint.md` states, and [`Rhythm`] is the extractor.

pub mod beats;
pub mod onset;
pub mod onsets;
pub mod tempo;
#[cfg(test)]
mod tests;

pub use onset::OnsetEnvelope;

use super::{Extractor, Needs, Output, Summary};
use crate::dsp::stats::median;
use crate::dsp::stft::Frame;
use crate::dsp::{HOP, SR22};

/// Envelope frames per second.
const FRAME_RATE: f64 = SR22 as f64 / HOP as f64;

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
    let onsets = onsets::count_onsets(&x);
    // librosa: "Do we have any onsets to grab?" An all-zero envelope has no pulse.
    if !x.iter().any(|&v| v != 0.0) {
        return ExcerptRhythm {
            tempo_bpm: 0.0,
            beats: 0,
            stability: 0.0,
            onsets,
        };
    }
    let tempo = tempo::estimate_tempo(&x);
    let beats = beats::track_beats(&x, tempo);
    ExcerptRhythm {
        tempo_bpm: if beats.len() < 4 { 0.0 } else { tempo },
        beats: beats.len(),
        stability: beats::stability(&beats),
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
    let tempo = median(&mut tempi).unwrap_or(0.0);

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

/// The rhythm extractor: one onset envelope per segment, analysed when the segment ends.
pub struct Rhythm {
    envelope: Option<OnsetEnvelope>,
    excerpts: Vec<ExcerptRhythm>,
}

impl Default for Rhythm {
    fn default() -> Self {
        Self::new()
    }
}

impl Rhythm {
    pub fn new() -> Rhythm {
        Rhythm {
            envelope: None,
            excerpts: Vec::new(),
        }
    }
}

impl Extractor for Rhythm {
    fn name(&self) -> &'static str {
        "rhythm"
    }

    fn dimensions(&self) -> &'static [&'static str] {
        &["tempo_bpm", "rhythm_stability", "transient_density"]
    }

    fn needs(&self) -> Needs {
        Needs {
            frames: true,
            ..Needs::default()
        }
    }

    fn begin_segment(&mut self) {
        self.envelope = Some(OnsetEnvelope::new());
    }

    fn push_frame(&mut self, frame: &Frame<'_>) {
        if let Some(e) = self.envelope.as_mut() {
            e.push_power_frame(frame.power);
        }
    }

    fn end_segment(&mut self) {
        if let Some(e) = self.envelope.take() {
            self.excerpts.push(analyze_envelope(&e.finish()));
        }
    }

    fn finish(&mut self, summary: &Summary, out: &mut Output) {
        let (tempo, stability, density) = combine(&self.excerpts, summary.analyzed_sec);
        out.set("tempo_bpm", tempo);
        out.set("rhythm_stability", stability);
        out.set("transient_density", density);
    }
}
