//! The similarity model: per-dimension normalisation fitted on the library, per-dimension
//! weights, the distance, the score and the explanation of a distance.

use serde::{Deserialize, Serialize};
use sonoprint_core::{Fingerprint, DIMENSIONS, DIMENSION_COUNT};

use crate::rng::SplitMix64;
use crate::{Error, Weights};

/// Version of the model's definition (normalisations, distance, score). A stored model of
/// another format is refitted, never reused.
pub const MODEL_FORMAT: u32 = 1;

/// Share of the library (tracks added, changed or removed since the fit, or growth of the
/// library) past which [`Model::needs_refit`] says the model is stale.
pub const REFIT_SHARE: f64 = 0.10;

/// Fewest fingerprints a model is fitted on.
pub const MIN_FIT_ROWS: usize = 10;

/// [`Normalisation::Robust`] values are clipped to ± this many IQRs from the median.
const ROBUST_CLIP: f64 = 3.0;

/// Number of points of the per-dimension quantile table of [`Normalisation::Quantile`].
const QUANTILES: usize = 101;

/// Pairs sampled at fit time to calibrate the score and the typical per-dimension gaps.
const CALIBRATION_PAIRS: usize = 20_000;

/// How each dimension is put on a common scale before weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// The value's position in the library's distribution of that dimension (its empirical
    /// CDF, from a 101-point quantile table), in [0, 1]. Insensitive to units, skew and
    /// outliers; ties (e.g. the many tracks with no silence) share the middle of their run.
    Quantile,
    /// `(x - median) / IQR` (the standard deviation if the IQR is 0), clipped to ±3: the
    /// default, which measured best on the tuning half of the corpus (crate docs).
    #[default]
    Robust,
    /// [`Normalisation::Robust`] after taking the band shares and the spectral flatness in dB,
    /// as [`Normalisation::LogZScore`] does.
    LogRobust,
    /// `(x - mean) / standard deviation`: the plain z-score baseline.
    ZScore,
    /// The z-score after taking the seven band shares and the spectral flatness in dB
    /// (`10 log10(x + 1e-6)`): they are ratios of power whose small values carry the
    /// difference (a 1 % and a 3 % presence share are far apart; a z-score of the raw share
    /// sees them as neighbours).
    LogZScore,
    /// The Auralis player's: min-max between the 5th and 95th percentile, clipped to [0, 1]
    /// (a range under 1e-6 gives 0.5).
    Percentile,
}

impl Normalisation {
    pub const ALL: [Normalisation; 6] = [
        Normalisation::Quantile,
        Normalisation::Robust,
        Normalisation::LogRobust,
        Normalisation::ZScore,
        Normalisation::LogZScore,
        Normalisation::Percentile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Normalisation::Quantile => "quantile",
            Normalisation::Robust => "robust",
            Normalisation::LogRobust => "log-robust",
            Normalisation::ZScore => "zscore",
            Normalisation::LogZScore => "log-zscore",
            Normalisation::Percentile => "percentile",
        }
    }
}

/// What the model was fitted with, besides the fingerprints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitOptions {
    pub normalisation: Normalisation,
    pub weights: Weights,
}

/// A fitted similarity model. Serialisable (serde) so the caller stores it with the graph;
/// every answer can name it by [`Model::id`] and [`Model::generation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// [`MODEL_FORMAT`] of the code that fitted it.
    pub format: u32,
    /// 1 for a first fit, one more at each [`Model::refit`].
    pub generation: u64,
    /// How many fingerprints it was fitted on.
    pub fitted_on: usize,
    pub normalisation: Normalisation,
    /// Per dimension: the centre (mean, median or 5th percentile) of the linear
    /// normalisations; unused by [`Normalisation::Quantile`].
    pub centre: Vec<f64>,
    /// Per dimension: the scale (sd, IQR or 90 % range) of the linear normalisations.
    pub scale: Vec<f64>,
    /// Per dimension, for [`Normalisation::Quantile`]: the 0th..100th percentiles.
    pub quantiles: Vec<Vec<f64>>,
    pub weights: Weights,
    /// The distance at which the score is 0.5: the 1st percentile of the distances between
    /// pairs of fitted tracks.
    pub distance_scale: f64,
    /// Per dimension: the median normalised gap between two fitted tracks, against which
    /// [`Model::explain`] judges a pair's gap.
    pub typical_gap: Vec<f64>,
}

/// One dimension's part in the distance between two tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DimensionGap {
    pub name: &'static str,
    pub a: f64,
    pub b: f64,
    /// |a - b| after normalisation.
    pub gap: f64,
    /// The gap over the library's typical gap in this dimension (0 = identical, 1 = as far
    /// apart as two tracks usually are).
    pub relative_gap: f64,
    /// Share of the squared distance this dimension accounts for (sums to 1 over dimensions
    /// unless the distance is 0).
    pub share: f64,
    /// How much this dimension made the two close: `weight * (1 - min(relative_gap, 1))`,
    /// weights summing to 1.
    pub closeness: f64,
}

/// Why two tracks are as close as they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub distance: f64,
    pub score: f64,
    /// Every dimension, most `closeness` first (ties by table order).
    pub dimensions: Vec<DimensionGap>,
}

impl Explanation {
    /// The names of the `n` dimensions that made the two tracks closest.
    pub fn closest(&self, n: usize) -> Vec<&'static str> {
        self.dimensions
            .iter()
            .filter(|d| d.closeness > 0.0)
            .take(n)
            .map(|d| d.name)
            .collect()
    }
}

/// Dimensions taken in dB by [`Normalisation::LogZScore`]: the band shares and the flatness.
fn is_power_ratio(d: usize) -> bool {
    d < 7 || Fingerprint::NAMES[d] == "spectral_flatness"
}

/// The value as [`Normalisation::LogZScore`] sees it before the z-score.
fn pre_transform(normalisation: Normalisation, d: usize, x: f64) -> f64 {
    let log = matches!(
        normalisation,
        Normalisation::LogZScore | Normalisation::LogRobust
    );
    if log && is_power_ratio(d) {
        10.0 * (x.max(0.0) + 1e-6).log10()
    } else {
        x
    }
}

fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let t = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * t
}

/// Empirical CDF of `x` from a sorted quantile table, in [0, 1].
fn quantile_rank(table: &[f64], x: f64) -> f64 {
    let n = table.len();
    let last = (n - 1) as f64;
    let lo = table.partition_point(|v| *v < x); // first >= x
    let hi_excl = table.partition_point(|v| *v <= x); // first > x
    if hi_excl > lo {
        // x equals a run of entries: the middle of the run.
        return (lo + hi_excl - 1) as f64 / 2.0 / last;
    }
    if lo == 0 {
        return 0.0;
    }
    if lo == n {
        return 1.0;
    }
    let (a, b) = (table[lo - 1], table[lo]);
    ((lo - 1) as f64 + (x - a) / (b - a)) / last
}

impl Model {
    /// Fits the default model ([`Normalisation::Robust`], [`Weights::default`]) on the
    /// library's current fingerprints.
    pub fn fit(fingerprints: &[Fingerprint]) -> Result<Model, Error> {
        Self::fit_with(fingerprints, &FitOptions::default())
    }

    /// Fits with a chosen normalisation and weights.
    pub fn fit_with(fingerprints: &[Fingerprint], options: &FitOptions) -> Result<Model, Error> {
        if fingerprints.len() < MIN_FIT_ROWS {
            return Err(Error::TooFewFingerprints {
                got: fingerprints.len(),
                need: MIN_FIT_ROWS,
            });
        }
        for fp in fingerprints {
            if let Some(name) = fp.first_non_finite() {
                return Err(Error::NonFinite {
                    id: None,
                    dimension: name,
                });
            }
        }
        let n = fingerprints.len();
        let mut centre = vec![0.0; DIMENSION_COUNT];
        let mut scale = vec![1.0; DIMENSION_COUNT];
        let mut quantiles = Vec::new();
        let mut column = Vec::with_capacity(n);
        for (d, dim) in DIMENSIONS.iter().enumerate() {
            column.clear();
            column.extend(
                fingerprints
                    .iter()
                    .map(|f| pre_transform(options.normalisation, d, f.to_array()[d])),
            );
            column.sort_by(f64::total_cmp);
            // A spread this small is a constant dimension: give it a unit scale so that it
            // neither divides by zero nor blows a rounding error up into a distance.
            let logged = matches!(
                options.normalisation,
                Normalisation::LogZScore | Normalisation::LogRobust
            ) && is_power_ratio(d);
            let floor = if logged {
                1e-6
            } else {
                1e-6 * (dim.max - dim.min)
            };
            match options.normalisation {
                Normalisation::Quantile => {
                    quantiles.push(
                        (0..QUANTILES)
                            .map(|i| percentile_sorted(&column, i as f64 / (QUANTILES - 1) as f64))
                            .collect(),
                    );
                }
                Normalisation::Robust | Normalisation::LogRobust => {
                    centre[d] = percentile_sorted(&column, 0.5);
                    let iqr = percentile_sorted(&column, 0.75) - percentile_sorted(&column, 0.25);
                    let sd = std_dev(&column);
                    scale[d] = if iqr > floor {
                        iqr
                    } else if sd > floor {
                        sd
                    } else {
                        1.0
                    };
                }
                Normalisation::ZScore | Normalisation::LogZScore => {
                    centre[d] = column.iter().sum::<f64>() / n as f64;
                    let sd = std_dev(&column);
                    scale[d] = if sd > floor { sd } else { 1.0 };
                }
                Normalisation::Percentile => {
                    centre[d] = percentile_sorted(&column, 0.05);
                    scale[d] = percentile_sorted(&column, 0.95) - centre[d];
                }
            }
        }
        let mut model = Model {
            format: MODEL_FORMAT,
            generation: 1,
            fitted_on: n,
            normalisation: options.normalisation,
            centre,
            scale,
            quantiles,
            weights: options.weights.clone(),
            distance_scale: 1.0,
            typical_gap: vec![1.0; DIMENSION_COUNT],
        };
        model.calibrate(fingerprints);
        Ok(model)
    }

    /// Measures `distance_scale` and `typical_gap` on a deterministic sample of pairs.
    fn calibrate(&mut self, fingerprints: &[Fingerprint]) {
        let n = fingerprints.len();
        let normalised: Vec<[f64; DIMENSION_COUNT]> =
            fingerprints.iter().map(|f| self.normalise(f)).collect();
        let mut rng = SplitMix64::new(0x5eed_0f51);
        let all_pairs = n * (n - 1) / 2;
        let pairs: Vec<(usize, usize)> = if all_pairs <= CALIBRATION_PAIRS {
            (0..n)
                .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
                .collect()
        } else {
            (0..CALIBRATION_PAIRS)
                .map(|_| {
                    let i = rng.below(n);
                    let mut j = rng.below(n - 1);
                    if j >= i {
                        j += 1;
                    }
                    (i, j)
                })
                .collect()
        };
        let w = self.weights.normalised();
        let mut distances: Vec<f64> = pairs
            .iter()
            .map(|&(i, j)| weighted_distance(&w, &normalised[i], &normalised[j]))
            .collect();
        distances.sort_by(f64::total_cmp);
        let scale = percentile_sorted(&distances, 0.01);
        self.distance_scale = if scale > 1e-9 {
            scale
        } else {
            // Over half the library identical: fall back on the median, then on 1.
            let median = percentile_sorted(&distances, 0.5);
            if median > 1e-9 {
                median
            } else {
                1.0
            }
        };
        for d in 0..DIMENSION_COUNT {
            let mut gaps: Vec<f64> = pairs
                .iter()
                .map(|&(i, j)| (normalised[i][d] - normalised[j][d]).abs())
                .collect();
            gaps.sort_by(f64::total_cmp);
            let median = percentile_sorted(&gaps, 0.5);
            self.typical_gap[d] = if median > 1e-9 {
                median
            } else {
                // A dimension in which most pairs agree exactly: judge by the mean gap.
                let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
                if mean > 1e-9 {
                    mean
                } else {
                    1.0
                }
            };
        }
    }

    /// Fits a new model with the same normalisation and weights on the library as it is now,
    /// one generation on.
    pub fn refit(&self, fingerprints: &[Fingerprint]) -> Result<Model, Error> {
        let mut next = Self::fit_with(
            fingerprints,
            &FitOptions {
                normalisation: self.normalisation,
                weights: self.weights.clone(),
            },
        )?;
        next.generation = self.generation + 1;
        Ok(next)
    }

    /// Whether the library has moved enough since the fit for the model to be refitted:
    /// `changed` (tracks added, changed or removed since the fit) or the change in the number
    /// of tracks exceeds [`REFIT_SHARE`] of `fitted_on`, or the model is of an older format.
    pub fn needs_refit(&self, current_count: usize, changed: usize) -> bool {
        if self.format != MODEL_FORMAT {
            return true;
        }
        let base = self.fitted_on.max(1) as f64;
        let growth = current_count.abs_diff(self.fitted_on) as f64;
        changed as f64 > REFIT_SHARE * base || growth > REFIT_SHARE * base
    }

    /// A short stable identifier of the model's parameters (FNV-1a of its serialised
    /// numbers), e.g. for the answer's "model" field: `g3-1a2b3c4d`.
    pub fn id(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: f64| {
            for b in x.to_bits().to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(f64::from(self.format));
        eat(self.fitted_on as f64);
        eat(self.normalisation as u8 as f64);
        self.centre.iter().for_each(|x| eat(*x));
        self.scale.iter().for_each(|x| eat(*x));
        self.quantiles.iter().flatten().for_each(|x| eat(*x));
        self.weights.as_array().iter().for_each(|x| eat(*x));
        format!("g{}-{:08x}", self.generation, h >> 32)
    }

    /// The fingerprint in normalised units (not yet weighted), in table order.
    pub fn normalise(&self, fp: &Fingerprint) -> [f64; DIMENSION_COUNT] {
        let x = fp.to_array();
        let mut out = [0.0; DIMENSION_COUNT];
        for d in 0..DIMENSION_COUNT {
            out[d] = match self.normalisation {
                Normalisation::Quantile => quantile_rank(&self.quantiles[d], x[d]),
                Normalisation::Robust | Normalisation::LogRobust => {
                    ((pre_transform(self.normalisation, d, x[d]) - self.centre[d]) / self.scale[d])
                        .clamp(-ROBUST_CLIP, ROBUST_CLIP)
                }
                Normalisation::ZScore => (x[d] - self.centre[d]) / self.scale[d],
                Normalisation::LogZScore => {
                    (pre_transform(self.normalisation, d, x[d]) - self.centre[d]) / self.scale[d]
                }
                Normalisation::Percentile => {
                    if self.scale[d] < 1e-6 {
                        0.5
                    } else {
                        ((x[d] - self.centre[d]) / self.scale[d]).clamp(0.0, 1.0)
                    }
                }
            };
        }
        out
    }

    /// The normalised fingerprint scaled by the square root of each (renormalised) weight, so
    /// that the plain Euclidean distance between two such vectors is [`Model::distance`]. The
    /// index stores these.
    pub fn embed(&self, fp: &Fingerprint) -> [f32; DIMENSION_COUNT] {
        let z = self.normalise(fp);
        let w = self.weights.normalised();
        let mut out = [0.0f32; DIMENSION_COUNT];
        for d in 0..DIMENSION_COUNT {
            out[d] = (z[d] * w[d].sqrt()) as f32;
        }
        out
    }

    /// Weighted Euclidean distance of the normalised fingerprints (weights summing to 1).
    pub fn distance(&self, a: &Fingerprint, b: &Fingerprint) -> f64 {
        weighted_distance(
            &self.weights.normalised(),
            &self.normalise(a),
            &self.normalise(b),
        )
    }

    /// The similarity score of a distance: `1 / (1 + (distance / distance_scale)^2)`, in
    /// [0, 1]: 1 for identical fingerprints, 0.5 for a pair as close as the closest 1 % of the
    /// library's pairs, falling towards 0 with distance.
    pub fn score(&self, distance: f64) -> f64 {
        let r = distance / self.distance_scale;
        (1.0 / (1.0 + r * r)).clamp(0.0, 1.0)
    }

    /// [`Model::score`] of [`Model::distance`].
    pub fn similarity(&self, a: &Fingerprint, b: &Fingerprint) -> f64 {
        self.score(self.distance(a, b))
    }

    /// The names of the `n` dimensions that made two embedded tracks ([`Model::embed`])
    /// closest, by the `closeness` of [`Model::explain`]; dimensions of weight 0 or farther
    /// apart than usual are never named.
    pub fn closest_dimensions(
        &self,
        a: &[f32; DIMENSION_COUNT],
        b: &[f32; DIMENSION_COUNT],
        n: usize,
    ) -> Vec<&'static str> {
        let w = self.weights.normalised();
        let mut c: Vec<(f64, usize)> = (0..DIMENSION_COUNT)
            .filter(|&d| w[d] > 0.0)
            .map(|d| {
                let gap = f64::from((a[d] - b[d]).abs()) / w[d].sqrt();
                (w[d] * (1.0 - (gap / self.typical_gap[d]).min(1.0)), d)
            })
            .filter(|(closeness, _)| *closeness > 0.0)
            .collect();
        c.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        c.into_iter()
            .take(n)
            .map(|(_, d)| Fingerprint::NAMES[d])
            .collect()
    }

    /// Each dimension's part in the distance between `a` and `b`, the dimensions that made
    /// them close first.
    pub fn explain(&self, a: &Fingerprint, b: &Fingerprint) -> Explanation {
        let (za, zb) = (self.normalise(a), self.normalise(b));
        let (xa, xb) = (a.to_array(), b.to_array());
        let w = self.weights.normalised();
        let distance = weighted_distance(&w, &za, &zb);
        let d2 = distance * distance;
        let mut dimensions: Vec<DimensionGap> = (0..DIMENSION_COUNT)
            .map(|d| {
                let gap = (za[d] - zb[d]).abs();
                let relative_gap = gap / self.typical_gap[d];
                DimensionGap {
                    name: Fingerprint::NAMES[d],
                    a: xa[d],
                    b: xb[d],
                    gap,
                    relative_gap,
                    share: if d2 > 0.0 { w[d] * gap * gap / d2 } else { 0.0 },
                    closeness: w[d] * (1.0 - relative_gap.min(1.0)),
                }
            })
            .collect();
        // Stable sort: ties keep table order.
        dimensions.sort_by(|x, y| y.closeness.total_cmp(&x.closeness));
        Explanation {
            distance,
            score: self.score(distance),
            dimensions,
        }
    }
}

fn std_dev(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

fn weighted_distance(
    w: &[f64; DIMENSION_COUNT],
    a: &[f64; DIMENSION_COUNT],
    b: &[f64; DIMENSION_COUNT],
) -> f64 {
    let mut s = 0.0;
    for d in 0..DIMENSION_COUNT {
        let t = a[d] - b[d];
        s += w[d] * t * t;
    }
    s.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn library() -> Vec<Fingerprint> {
        synthetic::generate(500, 8, 7)
            .into_iter()
            .map(|t| t.fingerprint)
            .collect()
    }

    #[test]
    fn quantile_rank_handles_runs_and_tails() {
        let t = [0.0, 0.0, 0.0, 1.0, 2.0];
        assert_eq!(quantile_rank(&t, -1.0), 0.0);
        assert_eq!(quantile_rank(&t, 0.0), 0.25); // middle of the run 0..=2, over 4
        assert_eq!(quantile_rank(&t, 1.5), 0.875);
        assert_eq!(quantile_rank(&t, 9.0), 1.0);
    }

    #[test]
    fn distance_is_a_metric_with_a_score_in_unit_range() {
        let lib = library();
        for norm in Normalisation::ALL {
            let m = Model::fit_with(
                &lib,
                &FitOptions {
                    normalisation: norm,
                    weights: Weights::default(),
                },
            )
            .unwrap();
            assert_eq!(m.fitted_on, 500);
            for (a, b) in lib.iter().zip(lib.iter().skip(1)).take(50) {
                let d = m.distance(a, b);
                assert!(d >= 0.0 && d.is_finite());
                assert!((d - m.distance(b, a)).abs() < 1e-12);
                let s = m.similarity(a, b);
                assert!((0.0..=1.0).contains(&s));
                assert_eq!(m.distance(a, a), 0.0);
                assert_eq!(m.similarity(a, a), 1.0);
                // The embedding reproduces the distance.
                let (ea, eb) = (m.embed(a), m.embed(b));
                let e: f32 = ea
                    .iter()
                    .zip(eb)
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f32>()
                    .sqrt();
                assert!(
                    (f64::from(e) - d).abs() < 1e-4 * (1.0 + d),
                    "{norm:?} {e} {d}"
                );
            }
        }
    }

    #[test]
    fn fit_refuses_too_few_or_non_finite() {
        let lib = library();
        assert!(matches!(
            Model::fit(&lib[..5]),
            Err(Error::TooFewFingerprints { got: 5, .. })
        ));
        let mut bad = lib[..20].to_vec();
        bad[3].lufs = f64::NAN;
        assert!(matches!(
            Model::fit(&bad),
            Err(Error::NonFinite {
                dimension: "lufs",
                ..
            })
        ));
    }

    #[test]
    fn constant_dimension_does_not_explode() {
        let mut lib = library();
        for f in &mut lib {
            f.silence_ratio = 0.0;
        }
        for norm in Normalisation::ALL {
            let m = Model::fit_with(
                &lib,
                &FitOptions {
                    normalisation: norm,
                    weights: Weights::equal(),
                },
            )
            .unwrap();
            let mut odd = lib[0];
            odd.silence_ratio = 0.5;
            let d = m.distance(&lib[0], &odd);
            assert!(d.is_finite() && d < 10.0, "{norm:?}: {d}");
        }
    }

    #[test]
    fn refit_policy_and_generations() {
        let lib = library();
        let m = Model::fit(&lib).unwrap();
        assert!(!m.needs_refit(500, 0));
        assert!(!m.needs_refit(540, 40));
        assert!(m.needs_refit(500, 51));
        assert!(m.needs_refit(560, 0));
        assert!(m.needs_refit(440, 0));
        let m2 = m.refit(&lib[..400]).unwrap();
        assert_eq!(m2.generation, 2);
        assert_eq!(m2.fitted_on, 400);
        assert_ne!(m.id(), m2.id());
        assert_eq!(m.id(), Model::fit(&lib).unwrap().id());
        let json = serde_json::to_string(&m).unwrap();
        let back: Model = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.generation, back.fitted_on),
            (m.generation, m.fitted_on)
        );
        assert_eq!(back.weights, m.weights);
        let d = (
            m.distance(&lib[0], &lib[1]),
            back.distance(&lib[0], &lib[1]),
        );
        assert!((d.0 - d.1).abs() < 1e-9);
    }

    #[test]
    fn explanation_names_the_shared_dimensions() {
        let lib = library();
        let m = Model::fit(&lib).unwrap();
        let a = lib[0];
        let mut b = lib[1];
        // Make b agree with a exactly on tempo and loudness.
        b.tempo_bpm = a.tempo_bpm;
        b.lufs = a.lufs;
        let e = m.explain(&a, &b);
        let top = e.closest(25);
        assert!(top.contains(&"tempo_bpm") && top.contains(&"lufs"));
        let share: f64 = e.dimensions.iter().map(|d| d.share).sum();
        assert!((share - 1.0).abs() < 1e-9);
        assert!((e.distance - m.distance(&a, &b)).abs() < 1e-12);
    }
}
