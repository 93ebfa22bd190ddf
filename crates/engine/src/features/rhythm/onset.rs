//! The onset strength envelope of one excerpt (librosa `onset.onset_strength`).

use crate::dsp::mel::MelFilterbank;
use crate::dsp::{HOP, N_FFT, SR22};

/// Mel bands of the onset spectrogram (librosa `melspectrogram` default).
pub(super) const N_MELS: usize = 128;
/// `power_to_db` floor on the power and dynamic range kept below the maximum.
const AMIN: f32 = 1e-10;
const TOP_DB: f32 = 80.0;
/// Envelope frames before the first difference: `lag + n_fft // (2 * hop)` (centred STFT).
const CENTER_PAD: usize = 1 + N_FFT / (2 * HOP);
/// Mel dB frames kept before the envelope of a block is computed (see [`OnsetEnvelope`]).
pub(super) const MAX_BUFFERED_FRAMES: usize = 4096;

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
