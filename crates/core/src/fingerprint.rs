//! The fingerprint itself: 25 named dimensions, their definition ([`DIMENSIONS`]), and the
//! metadata returned with them (`docs/fingerprint.md`).

use serde::{Deserialize, Serialize};

/// Version of the fingerprint definition. Bump it whenever a definition or the default excerpt
/// plan changes: stored rows with an older version are stale and get recomputed.
pub const FINGERPRINT_VERSION: u32 = 1;

/// One dimension of the fingerprint as the rest of the program sees it: its column name, unit
/// and range. The store's SQL, the HTTP API's schema and the tests read these; adding a dimension
/// is a line in the `dimensions!` list below plus its extractor in the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dimension {
    /// Column and JSON name.
    pub name: &'static str,
    /// What it measures, in one sentence.
    pub description: &'static str,
    /// `fraction`, `LUFS`, `dB`, `BPM`, `LU`, or `ratio` for a unitless score.
    pub unit: &'static str,
    /// The smallest value the definition allows.
    pub min: f64,
    /// The largest value the definition allows.
    pub max: f64,
}

/// Declares the struct, its name table and [`DIMENSIONS`] from one list, so the order, names
/// and ranges of the dimensions cannot drift apart.
macro_rules! dimensions {
    ($($(#[doc = $doc:literal])+ $name:ident: $unit:literal, [$min:expr, $max:expr];)+) => {
        /// The 25-dimension acoustic fingerprint, in the order and units of the
        /// `track_fingerprints` table.
        #[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
        pub struct Fingerprint {
            $($(#[doc = $doc])+ pub $name: f64,)+
        }

        /// Every dimension, in table order.
        pub const DIMENSIONS: [Dimension; DIMENSION_COUNT] = [$(Dimension {
            name: stringify!($name),
            description: concat!($($doc),+),
            unit: $unit,
            min: $min,
            max: $max,
        }),+];

        impl Fingerprint {
            /// The dimension names, in table order.
            pub const NAMES: [&'static str; DIMENSION_COUNT] = [$(stringify!($name)),+];

            /// The values in table order.
            pub fn to_array(&self) -> [f64; DIMENSION_COUNT] {
                [$(self.$name),+]
            }

            /// Builds a fingerprint from values in table order.
            pub fn from_array(values: [f64; DIMENSION_COUNT]) -> Self {
                let [$($name),+] = values;
                Fingerprint { $($name,)+ }
            }

            /// The value of the dimension called `name`.
            pub fn get(&self, name: &str) -> Option<f64> {
                match name {
                    $(stringify!($name) => Some(self.$name),)+
                    _ => None,
                }
            }

            /// A mutable reference to the dimension called `name`.
            pub fn get_mut(&mut self, name: &str) -> Option<&mut f64> {
                match name {
                    $(stringify!($name) => Some(&mut self.$name),)+
                    _ => None,
                }
            }
        }
    };
}

/// How many dimensions a fingerprint has.
pub const DIMENSION_COUNT: usize = 25;

dimensions! {
    /// Share of power in 20–60 Hz.
    sub_bass_pct: "fraction", [0.0, 1.0];
    /// Share of power in 60–250 Hz.
    bass_pct: "fraction", [0.0, 1.0];
    /// Share of power in 250–500 Hz.
    low_mid_pct: "fraction", [0.0, 1.0];
    /// Share of power in 500–2000 Hz.
    mid_pct: "fraction", [0.0, 1.0];
    /// Share of power in 2–4 kHz.
    upper_mid_pct: "fraction", [0.0, 1.0];
    /// Share of power in 4–8 kHz.
    presence_pct: "fraction", [0.0, 1.0];
    /// Share of power in 8–20 kHz (capped at Nyquist).
    air_pct: "fraction", [0.0, 1.0];
    /// Integrated loudness, BS.1770-4 (LUFS).
    lufs: "LUFS", [-70.0, 0.0];
    /// Peak to RMS ratio (dB).
    crest_db: "dB", [0.0, 40.0];
    /// Bass (60–250 Hz) to mid (250–2000 Hz) power ratio (dB).
    bass_mid_ratio: "dB", [-60.0, 60.0];
    /// Tempo (BPM), 0 when there is no pulse.
    tempo_bpm: "BPM", [0.0, 240.0];
    /// Regularity of the beat intervals, `1 / (1 + CV)`.
    rhythm_stability: "ratio", [0.0, 1.0];
    /// Onsets per second / 10, clipped to [0, 1].
    transient_density: "ratio", [0.0, 1.0];
    /// Share of silent frames.
    silence_ratio: "fraction", [0.0, 1.0];
    /// Median spectral centroid / 8 kHz.
    spectral_centroid: "ratio", [0.0, 1.0];
    /// Median 85 % spectral rolloff / 10 kHz.
    spectral_rolloff: "ratio", [0.0, 1.0];
    /// Median spectral flatness.
    spectral_flatness: "ratio", [0.0, 1.0];
    /// Harmonic share of the HPSS energy (in amplitude terms).
    harmonic_ratio: "ratio", [0.0, 1.0];
    /// Steadiness of the YIN pitch track.
    pitch_stability: "ratio", [0.0, 1.0];
    /// Concentration of the chroma vector, 1/12 (flat) to 1 (one pitch class).
    chroma_energy: "ratio", [0.0, 1.0];
    /// Spread of the per-second crest factor, `v / (v + 6)`.
    dynamic_range_variation: "ratio", [0.0, 1.0];
    /// Std of the short-term loudness (LU).
    loudness_variation_std: "LU", [0.0, 20.0];
    /// Steadiness of the per-second peaks, `1 / (1 + CV)`.
    peak_consistency: "ratio", [0.0, 1.0];
    /// Side share of the mid+side RMS.
    stereo_width: "ratio", [0.0, 1.0];
    /// Pearson correlation of left and right.
    phase_correlation: "ratio", [-1.0, 1.0];
}

impl Fingerprint {
    /// The name of the first dimension that is NaN or infinite, if any. The spec forbids storing
    /// such a value: it is a bug to report, never a value to clamp.
    pub fn first_non_finite(&self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .zip(self.to_array())
            .find(|(_, v)| !v.is_finite())
            .map(|(n, _)| *n)
    }
}

/// Whether the whole track or the excerpt plan was analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Three 30 s excerpts at 25/50/75 % for tracks over 120 s (the default).
    #[default]
    Excerpt,
    /// Every sample.
    Full,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Excerpt => "excerpt",
            Mode::Full => "full",
        }
    }
}

/// What is known about the audio and how it was analysed (spec section 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub duration_sec: f64,
    pub sample_rate: u32,
    pub channels: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u32>,
    /// Container, e.g. `flac`, `mp3`, `mp4`, `ogg`, `wav`, `aiff`.
    pub format: String,
    /// Codec, e.g. `flac`, `mp3`, `aac`, `alac`, `vorbis`, `pcm_s16le`.
    pub codec: String,
    pub analyzed_sec: f64,
    pub mode: Mode,
    /// Which decoding path produced the audio: `symphonia` or `ffmpeg`.
    pub decoder: String,
    pub fingerprint_version: u32,
    /// How excerpts were reached: `seek`, `sequential` (the format cannot seek accurately),
    /// or `whole` (the track was analysed whole).
    pub access: String,
    /// False when the container did not state the duration (then only the first 120 s are
    /// analysed in excerpt mode).
    pub duration_known: bool,
    /// The file ended before the duration its header stated.
    pub truncated: bool,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u32,
}

/// A fingerprint with its metadata: the result of analysing one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub fingerprint: Fingerprint,
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_table_order() {
        assert_eq!(Fingerprint::NAMES[0], "sub_bass_pct");
        assert_eq!(Fingerprint::NAMES[7], "lufs");
        assert_eq!(Fingerprint::NAMES[24], "phase_correlation");
        let mut a = [0.0; 25];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as f64;
        }
        let fp = Fingerprint::from_array(a);
        assert_eq!(fp.to_array(), a);
        assert_eq!(fp.tempo_bpm, 10.0);
    }

    #[test]
    fn dimensions_match_the_struct() {
        assert_eq!(DIMENSIONS.len(), Fingerprint::NAMES.len());
        let mut fp = Fingerprint::default();
        for (i, d) in DIMENSIONS.iter().enumerate() {
            assert_eq!(d.name, Fingerprint::NAMES[i]);
            assert!(d.min < d.max, "{}: empty range", d.name);
            assert!(
                !d.description.trim().is_empty(),
                "{}: no description",
                d.name
            );
            *fp.get_mut(d.name).unwrap() = i as f64 + 0.5;
        }
        for (i, v) in fp.to_array().into_iter().enumerate() {
            assert_eq!(v, i as f64 + 0.5);
        }
        assert_eq!(fp.get("lufs"), Some(7.5));
        assert_eq!(fp.get("no_such_dimension"), None);
    }

    #[test]
    fn non_finite_is_named() {
        let fp = Fingerprint {
            chroma_energy: f64::NAN,
            ..Default::default()
        };
        assert_eq!(fp.first_non_finite(), Some("chroma_energy"));
        assert_eq!(Fingerprint::default().first_non_finite(), None);
    }
}
