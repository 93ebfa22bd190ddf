//! Per-dimension weights: the defaults in one table ([`DEFAULT_WEIGHTS`]), the baselines they
//! were measured against, and user overrides from a name → weight map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sonoprint_core::{Fingerprint, DIMENSION_COUNT};

use crate::Error;

/// The default weight of each dimension, in table order. **This is the one place to change
/// them**; a user overrides any subset by name with [`Weights::with_overrides`] or by
/// deserialising a partial name → weight map (`{ "tempo_bpm": 0.5 }`, JSON or TOML). Weights
/// are relative: they are renormalised to sum 1.
///
/// How they were chosen, by measurement (`examples/quality.rs`; crate docs, "Design, and the
/// measurements behind it"):
/// on the excerpt-mode fingerprints of the real-music corpus, with the album labels of the
/// *tuning* half only (albums asc-music, extremetuxracer-data, hyperrogue-music,
/// planetblupi-music-ogg, supertux-data; 82 tracks), each weight is the dimension's Fisher
/// ratio (between-album over within-album variance of its [`crate::Normalisation::Robust`]
/// values) over the mean ratio, shrunk half-way to equal weights (`0.5 F/mean(F) + 0.5`) and
/// rounded to two decimals. Of the candidates (equal; Fisher raw, shrunk by 0.5 or 0.75,
/// square root) it gave the best precision@5 on the tuning half. The timbre dimensions
/// (presence share, flatness, centroid, rolloff, upper-mid share, chroma energy) separate
/// soundtracks best; tempo, rhythm stability, pitch stability and the loudness-variation
/// dimensions least, as the spec expects of 90 s excerpts.
pub const DEFAULT_WEIGHTS: [(&str, f64); DIMENSION_COUNT] = [
    ("sub_bass_pct", 0.80),
    ("bass_pct", 0.69),
    ("low_mid_pct", 0.65),
    ("mid_pct", 0.84),
    ("upper_mid_pct", 1.55),
    ("presence_pct", 3.18),
    ("air_pct", 0.68),
    ("lufs", 0.78),
    ("crest_db", 0.95),
    ("bass_mid_ratio", 0.62),
    ("tempo_bpm", 0.62),
    ("rhythm_stability", 0.56),
    ("transient_density", 0.73),
    ("silence_ratio", 0.83),
    ("spectral_centroid", 1.51),
    ("spectral_rolloff", 1.31),
    ("spectral_flatness", 2.14),
    ("harmonic_ratio", 1.13),
    ("pitch_stability", 0.65),
    ("chroma_energy", 1.29),
    ("dynamic_range_variation", 0.74),
    ("loudness_variation_std", 0.62),
    ("peak_consistency", 0.63),
    ("stereo_width", 0.79),
    ("phase_correlation", 0.72),
];

/// The Auralis player's own weights (its database doc), kept as a baseline for the quality
/// measurement and for users who want the player's behaviour.
pub const AURALIS_WEIGHTS: [(&str, f64); DIMENSION_COUNT] = [
    ("sub_bass_pct", 0.04),
    ("bass_pct", 0.06),
    ("low_mid_pct", 0.05),
    ("mid_pct", 0.06),
    ("upper_mid_pct", 0.05),
    ("presence_pct", 0.04),
    ("air_pct", 0.03),
    ("lufs", 0.10),
    ("crest_db", 0.08),
    ("bass_mid_ratio", 0.05),
    ("tempo_bpm", 0.08),
    ("rhythm_stability", 0.04),
    ("transient_density", 0.04),
    ("silence_ratio", 0.02),
    ("spectral_centroid", 0.05),
    ("spectral_rolloff", 0.04),
    ("spectral_flatness", 0.03),
    ("harmonic_ratio", 0.04),
    ("pitch_stability", 0.03),
    ("chroma_energy", 0.02),
    ("dynamic_range_variation", 0.02),
    ("loudness_variation_std", 0.02),
    ("peak_consistency", 0.01),
    ("stereo_width", 0.02),
    ("phase_correlation", 0.01),
];

/// Relative weight of each dimension, in table order. Serialised as a name → weight map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "BTreeMap<String, f64>", try_from = "BTreeMap<String, f64>")]
pub struct Weights {
    values: [f64; DIMENSION_COUNT],
}

impl Default for Weights {
    /// [`DEFAULT_WEIGHTS`].
    fn default() -> Self {
        Self::from_table(&DEFAULT_WEIGHTS)
    }
}

impl Weights {
    fn from_table(table: &[(&str, f64); DIMENSION_COUNT]) -> Self {
        debug_assert!(table
            .iter()
            .zip(Fingerprint::NAMES)
            .all(|((a, _), b)| *a == b));
        Weights {
            values: table.map(|(_, w)| w),
        }
    }

    /// Every dimension weighs the same.
    pub fn equal() -> Self {
        Weights {
            values: [1.0; DIMENSION_COUNT],
        }
    }

    /// The Auralis player's weights ([`AURALIS_WEIGHTS`]).
    pub fn auralis() -> Self {
        Self::from_table(&AURALIS_WEIGHTS)
    }

    /// Weights in table order; each must be finite and non-negative, and one positive.
    pub fn from_array(values: [f64; DIMENSION_COUNT]) -> Result<Self, Error> {
        for (name, w) in Fingerprint::NAMES.iter().zip(values) {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::InvalidWeight {
                    name: (*name).to_string(),
                    value: w,
                });
            }
        }
        if values.iter().all(|w| *w == 0.0) {
            return Err(Error::AllWeightsZero);
        }
        Ok(Weights { values })
    }

    /// These weights with some replaced by name (`{"tempo_bpm": 0.5}`); an unknown name or a
    /// negative or non-finite weight is an error, so that a typo in a user's file is not
    /// silently ignored.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Self, Error> {
        let mut values = self.values;
        for (name, w) in overrides {
            let i = Fingerprint::NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| Error::UnknownDimension(name.to_string()))?;
            values[i] = w;
        }
        Self::from_array(values)
    }

    /// The raw (not renormalised) weights, in table order.
    pub fn as_array(&self) -> [f64; DIMENSION_COUNT] {
        self.values
    }

    /// The weights renormalised to sum 1, in table order.
    pub fn normalised(&self) -> [f64; DIMENSION_COUNT] {
        let sum: f64 = self.values.iter().sum();
        self.values.map(|w| w / sum)
    }

    /// The weight of the dimension called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        Fingerprint::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }
}

impl From<Weights> for BTreeMap<String, f64> {
    fn from(w: Weights) -> Self {
        Fingerprint::NAMES
            .iter()
            .zip(w.values)
            .map(|(n, v)| ((*n).to_string(), v))
            .collect()
    }
}

impl TryFrom<BTreeMap<String, f64>> for Weights {
    type Error = Error;

    /// A map naming every dimension, or some of them: the rest keep their default.
    fn try_from(map: BTreeMap<String, f64>) -> Result<Self, Error> {
        Weights::default().with_overrides(map.iter().map(|(k, v)| (k.as_str(), *v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_table_order() {
        for (i, name) in Fingerprint::NAMES.iter().enumerate() {
            assert_eq!(DEFAULT_WEIGHTS[i].0, *name);
            assert_eq!(AURALIS_WEIGHTS[i].0, *name);
        }
        // The player's table sums to 1.03; it is renormalised like any other.
        let w = Weights::auralis().normalised();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn overrides_by_name() {
        let w = Weights::default()
            .with_overrides([("tempo_bpm", 0.0), ("lufs", 3.0)])
            .unwrap();
        assert_eq!(w.get("tempo_bpm"), Some(0.0));
        assert_eq!(w.get("lufs"), Some(3.0));
        assert!((w.normalised().iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(matches!(
            Weights::default().with_overrides([("tempo", 1.0)]),
            Err(Error::UnknownDimension(_))
        ));
        assert!(matches!(
            Weights::default().with_overrides([("lufs", -1.0)]),
            Err(Error::InvalidWeight { .. })
        ));
        assert!(matches!(
            Weights::from_array([0.0; DIMENSION_COUNT]),
            Err(Error::AllWeightsZero)
        ));
    }

    #[test]
    fn json_round_trip_and_partial_maps() {
        let w = Weights::auralis();
        let json = serde_json::to_string(&w).unwrap();
        let back: Weights = serde_json::from_str(&json).unwrap();
        assert_eq!(back, w);
        let partial: Weights = serde_json::from_str(r#"{"stereo_width": 0}"#).unwrap();
        assert_eq!(partial.get("stereo_width"), Some(0.0));
        assert_eq!(partial.get("lufs"), Weights::default().get("lufs"));
        assert!(serde_json::from_str::<Weights>(r#"{"nope": 1}"#).is_err());
    }
}
