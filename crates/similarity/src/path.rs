//! `sonoprint path A B`: a sequence of tracks from A to B, each step close to the previous one
//! and closer to B than it.

use serde::Serialize;

use crate::index::squared;
use crate::{Error, Index};

/// A step must bring the squared distance to B below this share of the previous track's,
/// so that a track as far from B as the previous one (up to rounding) does not count as
/// progress.
const PROGRESS: f32 = 0.999;

/// One track of a path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathStep {
    pub id: i64,
    /// Distance from the previous track (0 for A).
    pub step_distance: f32,
    /// Distance to B (0 for B).
    pub distance_to_end: f32,
}

/// A path of at most `length` tracks (A and B included) from `a` to `b` among the tracks `keep`
/// accepts: the straight line from A to B in the model's space is cut into `length - 1` equal
/// steps, and each waypoint takes the nearest unused track that is strictly closer to B than
/// the previous track. When no track qualifies the path goes straight on to B, so it can be
/// shorter than asked; it never holds a track twice.
pub fn path(
    index: &Index,
    a: i64,
    b: i64,
    length: usize,
    keep: &dyn Fn(i64) -> bool,
) -> Result<Vec<PathStep>, Error> {
    let ea = index.embedding(a).ok_or(Error::UnknownTrack(a))?;
    let eb = index.embedding(b).ok_or(Error::UnknownTrack(b))?;
    let to_b = |e: &[f32; sonoprint_core::DIMENSION_COUNT]| squared(e, &eb);
    let mut steps = vec![PathStep {
        id: a,
        step_distance: 0.0,
        distance_to_end: to_b(&ea).sqrt(),
    }];
    if a == b {
        return Ok(steps);
    }
    let mut used = vec![a, b];
    let mut prev = ea;
    let legs = length.max(2) - 1;
    for j in 1..legs {
        let t = j as f32 / legs as f32;
        let mut waypoint = ea;
        for (w, (x, y)) in waypoint.iter_mut().zip(ea.iter().zip(eb.iter())) {
            *w = x + (y - x) * t;
        }
        let prev_to_b = to_b(&prev);
        let found = index.nearest_to_embedding(&waypoint, 1, &|id| {
            !used.contains(&id)
                && keep(id)
                && index
                    .embedding(id)
                    .is_some_and(|e| to_b(&e) < prev_to_b * PROGRESS)
        });
        let Some(next) = found.first() else {
            break;
        };
        let Some(e) = index.embedding(next.id) else {
            break;
        };
        steps.push(PathStep {
            id: next.id,
            step_distance: squared(&prev, &e).sqrt(),
            distance_to_end: to_b(&e).sqrt(),
        });
        used.push(next.id);
        prev = e;
    }
    steps.push(PathStep {
        id: b,
        step_distance: squared(&prev, &eb).sqrt(),
        distance_to_end: 0.0,
    });
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;
    use sonoprint_core::{Fingerprint, DIMENSIONS, DIMENSION_COUNT};

    /// 101 tracks evenly spaced on a straight line through the middle of every range, plus
    /// a few far off the line; track id = 1000 + position.
    fn line() -> Vec<(i64, Fingerprint)> {
        let mut lib: Vec<(i64, Fingerprint)> = (0..=100)
            .map(|p| {
                let t = p as f64 / 100.0;
                let v: [f64; DIMENSION_COUNT] = std::array::from_fn(|d| {
                    let (lo, hi) = (DIMENSIONS[d].min, DIMENSIONS[d].max);
                    lo + (hi - lo) * (0.2 + 0.6 * t)
                });
                (1000 + p, Fingerprint::from_array(v))
            })
            .collect();
        for k in 0..5 {
            let v: [f64; DIMENSION_COUNT] = std::array::from_fn(|d| {
                let (lo, hi) = (DIMENSIONS[d].min, DIMENSIONS[d].max);
                if (d + k) % 2 == 0 {
                    lo
                } else {
                    hi
                }
            });
            lib.push((k as i64, Fingerprint::from_array(v)));
        }
        lib
    }

    #[test]
    fn path_follows_the_line() {
        let lib = line();
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        for norm in crate::Normalisation::ALL {
            let model = Model::fit_with(
                &fps,
                &crate::FitOptions {
                    normalisation: norm,
                    weights: crate::Weights::equal(),
                },
            )
            .unwrap();
            let index = Index::build(model, &lib).unwrap();
            let p = path(&index, 1000, 1100, 11, &|_| true).unwrap();
            let ids: Vec<i64> = p.iter().map(|s| s.id).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{norm:?}: {ids:?}");
            use crate::Normalisation::{Quantile, Robust, ZScore};
            if matches!(norm, Quantile | Robust | ZScore) {
                // (The player's percentile clipping flattens both ends of the line, and the
                // log of the band shares bends it: there the path is only monotone.)
                assert_eq!(
                    ids,
                    (0..=10).map(|i| 1000 + 10 * i).collect::<Vec<_>>(),
                    "{norm:?}"
                );
            }
            assert!(p
                .windows(2)
                .all(|w| w[1].distance_to_end < w[0].distance_to_end));
        }
    }

    #[test]
    fn no_track_twice_and_short_when_needed() {
        let lib = line();
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &lib).unwrap();
        // Only 4 tracks lie between 1000 and 1005: a path of 10 cannot be longer than 6.
        let p = path(&index, 1000, 1005, 10, &|_| true).unwrap();
        let ids: Vec<i64> = p.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1000, 1001, 1002, 1003, 1004, 1005]);
        let mut dedup = ids.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), ids.len());
        // Backwards works too, and a filter is obeyed.
        let back = path(&index, 1100, 1000, 6, &|id| id % 2 == 0).unwrap();
        assert!(back.iter().all(|s| s.id % 2 == 0));
        assert_eq!(back.first().unwrap().id, 1100);
        assert_eq!(back.last().unwrap().id, 1000);
        assert!(matches!(
            path(&index, 1000, 7, 5, &|_| true),
            Err(Error::UnknownTrack(7))
        ));
    }
}
