//! Generated fingerprints for tests and benchmarks: clustered ("albums"), with correlated
//! dimensions (a few latent factors drive them all, band shares sum to 1) and every value
//! inside its dimension's range, so that they behave like a library rather than uniform noise.

use sonoprint_core::{Fingerprint, DIMENSIONS, DIMENSION_COUNT};

use crate::rng::SplitMix64;

/// Latent factors behind every dimension (brightness, energy, rhythm, space, texture).
const LATENT: usize = 5;

/// One generated track.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticTrack {
    /// 1-based, in generation order.
    pub id: i64,
    /// The cluster ("album") it was drawn from, `0..clusters`.
    pub cluster: usize,
    pub fingerprint: Fingerprint,
}

/// Where each non-band dimension usually lies, inside its defined range.
fn typical_range(d: usize) -> (f64, f64) {
    match DIMENSIONS[d].name {
        "lufs" => (-32.0, -6.0),
        "crest_db" => (6.0, 22.0),
        "bass_mid_ratio" => (-20.0, 15.0),
        "tempo_bpm" => (60.0, 190.0),
        "loudness_variation_std" => (0.5, 9.0),
        "phase_correlation" => (-0.1, 1.0),
        "silence_ratio" => (0.0, 0.2),
        "spectral_flatness" => (0.0, 0.3),
        _ => (DIMENSIONS[d].min, DIMENSIONS[d].max),
    }
}

/// `n` tracks in `clusters` clusters (sizes within a factor of about 3 of each other), the
/// same for the same `seed`, with the spread of a real library: clusters overlap.
pub fn generate(n: usize, clusters: usize, seed: u64) -> Vec<SyntheticTrack> {
    generate_with(n, clusters, 0.45, seed)
}

/// [`generate`] with the spread of the tracks around their cluster's centre, in units of the
/// spread of the centres (0.45 in [`generate`]; 0.15 gives well-separated clusters).
pub fn generate_with(n: usize, clusters: usize, spread: f64, seed: u64) -> Vec<SyntheticTrack> {
    let clusters = clusters.max(1);
    // The mixing of latent factors into dimensions is fixed (it is the "physics"); the seed
    // only draws clusters and tracks.
    let mut mix_rng = SplitMix64::new(0x00c0_ffee);
    let mix: Vec<[f64; LATENT]> = (0..DIMENSION_COUNT)
        .map(|_| std::array::from_fn(|_| mix_rng.normal() * 0.8))
        .collect();
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<[f64; LATENT]> = (0..clusters)
        .map(|_| std::array::from_fn(|_| rng.normal()))
        .collect();
    let cluster_weight: Vec<f64> = (0..clusters).map(|_| 0.5 + rng.unit()).collect();
    let total: f64 = cluster_weight.iter().sum();
    (0..n)
        .map(|i| {
            // Draw a cluster proportionally to its weight.
            let mut r = rng.unit() * total;
            let mut cluster = clusters - 1;
            for (c, w) in cluster_weight.iter().enumerate() {
                if r < *w {
                    cluster = c;
                    break;
                }
                r -= w;
            }
            let latent: [f64; LATENT] =
                std::array::from_fn(|j| centres[cluster][j] + spread * rng.normal());
            let mut raw = [0.0; DIMENSION_COUNT];
            for (d, m) in mix.iter().enumerate() {
                let s: f64 = m.iter().zip(latent).map(|(a, b)| a * b).sum();
                raw[d] = s + 0.6 * spread * rng.normal();
            }
            let mut values = [0.0; DIMENSION_COUNT];
            // Bands 0..7: a softmax, so they sum to 1 like the real shares.
            let max = raw[..7].iter().cloned().fold(f64::MIN, f64::max);
            let exp: Vec<f64> = raw[..7].iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = exp.iter().sum();
            for b in 0..7 {
                values[b] = exp[b] / sum;
            }
            for d in 7..DIMENSION_COUNT {
                let (lo, hi) = typical_range(d);
                let u = 1.0 / (1.0 + (-raw[d]).exp());
                let u = if DIMENSIONS[d].name == "silence_ratio" {
                    u.powi(4)
                } else {
                    u
                };
                values[d] = (lo + (hi - lo) * u).clamp(DIMENSIONS[d].min, DIMENSIONS[d].max);
            }
            SyntheticTrack {
                id: i as i64 + 1,
                cluster,
                fingerprint: Fingerprint::from_array(values),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_range_and_deterministic() {
        let a = generate(300, 6, 1);
        assert_eq!(a, generate(300, 6, 1));
        assert_ne!(a, generate(300, 6, 2));
        for t in &a {
            let v = t.fingerprint.to_array();
            let bands: f64 = v[..7].iter().sum();
            assert!((bands - 1.0).abs() < 1e-9);
            for (x, d) in v.iter().zip(DIMENSIONS) {
                assert!(*x >= d.min && *x <= d.max, "{}: {x}", d.name);
            }
        }
        let used: std::collections::BTreeSet<usize> = a.iter().map(|t| t.cluster).collect();
        assert_eq!(used.len(), 6);
    }
}
