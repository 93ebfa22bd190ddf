//! `sonoprint similar`: the nearest tracks to one track, the same audio shown once and flagged,
//! each with the dimensions that made it close.

use serde::Serialize;

use crate::index::squared;
use crate::{Error, Index};

/// Distance under which two tracks count as the same audio, as a share of the model's
/// `distance_scale` (the distance of a pair as close as the closest 1 % of the library). The
/// same file under two paths has distance 0; a re-encode of it is typically further than this.
pub const DUPLICATE_SHARE: f64 = 1e-3;

/// Options of [`similar`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarOptions {
    /// How many distinct recordings to return.
    pub n: usize,
    /// Leave out results scoring below this.
    pub min_score: f32,
    /// How many of the dimensions that made each result close to name.
    pub dimensions: usize,
}

impl Default for SimilarOptions {
    fn default() -> Self {
        SimilarOptions {
            n: 20,
            min_score: 0.0,
            dimensions: 3,
        }
    }
}

/// One recording near the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarTrack {
    /// The smallest id among the tracks with this audio.
    pub id: i64,
    pub distance: f32,
    pub score: f32,
    /// The other tracks with the same audio (other paths), ascending.
    pub duplicates: Vec<i64>,
    /// This is the query's own audio under another path.
    pub same_audio_as_query: bool,
    /// The dimensions that made it close, closest first ([`crate::Model::explain`]).
    pub closest_dimensions: Vec<&'static str>,
}

/// The answer of [`similar`], naming the model it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarAnswer {
    pub query: i64,
    pub model_id: String,
    pub results: Vec<SimilarTrack>,
}

/// Tracks within the duplicate tolerance of each other count as one audio.
pub fn duplicate_tolerance(index: &Index) -> f32 {
    (index.model().distance_scale * DUPLICATE_SHARE) as f32
}

/// The `options.n` recordings nearest to track `id` among those `keep` accepts (e.g. not the
/// query's folder or album), nearest first, ties by id.
pub fn similar(
    index: &Index,
    id: i64,
    options: &SimilarOptions,
    keep: &dyn Fn(i64) -> bool,
) -> Result<SimilarAnswer, Error> {
    let q = index.embedding(id).ok_or(Error::UnknownTrack(id))?;
    let tol = duplicate_tolerance(index);
    let tol2 = tol * tol;
    let model = index.model();
    let mut fetch = options.n * 2 + 16;
    loop {
        let candidates = index.nearest_to_embedding(&q, fetch, &|o| o != id && keep(o));
        let exhausted = candidates.len() < fetch;
        let mut groups: Vec<(SimilarTrack, [f32; sonoprint_core::DIMENSION_COUNT])> = Vec::new();
        let mut complete = false;
        for c in candidates {
            let Some(e) = index.embedding(c.id) else {
                continue;
            };
            if let Some((g, _)) = groups.iter_mut().find(|(_, rep)| squared(rep, &e) <= tol2) {
                g.duplicates.push(c.id);
                continue;
            }
            if complete {
                // Past the n-th recording only duplicates of the shown ones matter, and they
                // are within the tolerance of it, so close behind.
                if c.distance > groups.last().map_or(0.0, |(g, _)| g.distance) + 2.0 * tol {
                    break;
                }
                continue;
            }
            if c.score < options.min_score {
                complete = true;
                continue;
            }
            groups.push((
                SimilarTrack {
                    id: c.id,
                    distance: c.distance,
                    score: c.score,
                    duplicates: Vec::new(),
                    same_audio_as_query: c.distance <= tol,
                    closest_dimensions: model.closest_dimensions(&q, &e, options.dimensions),
                },
                e,
            ));
            complete = groups.len() >= options.n;
        }
        if complete || exhausted {
            let results = groups
                .into_iter()
                .map(|(mut g, _)| {
                    g.duplicates.sort_unstable();
                    g
                })
                .collect();
            return Ok(SimilarAnswer {
                query: id,
                model_id: model.id(),
                results,
            });
        }
        fetch *= 2;
    }
}

/// Groups of tracks with the same audio (two or more ids, ascending), from a built graph: a
/// duplicate is among the nearest neighbours at a distance within the tolerance.
pub fn duplicate_groups(index: &Index, graph: &crate::Graph) -> Vec<Vec<i64>> {
    let tol = duplicate_tolerance(index);
    // Union-find over the duplicate edges.
    let ids = index.ids();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for e in graph.edges().filter(|e| e.distance <= tol) {
        if let (Some(a), Some(b)) = (
            index.position(e.track_id),
            index.position(e.similar_track_id),
        ) {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<i64>> = Default::default();
    for i in 0..ids.len() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(ids[i]);
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{synthetic, Graph, Model};
    use sonoprint_core::Fingerprint;

    fn setup() -> (Index, Vec<(i64, Fingerprint)>) {
        let mut lib: Vec<(i64, Fingerprint)> = synthetic::generate(300, 6, 11)
            .into_iter()
            .map(|t| (t.id, t.fingerprint))
            .collect();
        // Track 1's audio under two more paths, track 2's under one more.
        lib.push((1001, lib[0].1));
        lib.push((1002, lib[0].1));
        lib.push((1003, lib[1].1));
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        (Index::build(Model::fit(&fps).unwrap(), &lib).unwrap(), lib)
    }

    #[test]
    fn duplicates_appear_once_and_flagged() {
        let (index, _) = setup();
        let answer = similar(&index, 1, &SimilarOptions::default(), &|_| true).unwrap();
        assert_eq!(answer.results.len(), 20);
        assert_eq!(answer.model_id, index.model().id());
        let first = &answer.results[0];
        assert_eq!(first.id, 1001);
        assert!(first.same_audio_as_query);
        assert_eq!(first.duplicates, vec![1002]);
        let all: Vec<i64> = answer
            .results
            .iter()
            .flat_map(|r| std::iter::once(r.id).chain(r.duplicates.iter().copied()))
            .collect();
        let mut dedup = all.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(all.len(), dedup.len());
        assert!(!all.contains(&1));
        assert!(answer.results[1..].iter().all(|r| !r.same_audio_as_query));
        assert!(answer
            .results
            .windows(2)
            .all(|w| w[0].distance <= w[1].distance));
        assert!(answer
            .results
            .iter()
            .all(|r| !r.closest_dimensions.is_empty()));

        // From track 2, its copy 1003 is one result with 2 ... seen from elsewhere.
        let from3 = similar(&index, 1003, &SimilarOptions::default(), &|_| true).unwrap();
        assert_eq!(from3.results[0].id, 2);
        assert!(from3.results[0].same_audio_as_query);
    }

    #[test]
    fn filters_and_minimum_score() {
        let (index, _) = setup();
        let odd = similar(&index, 5, &SimilarOptions::default(), &|id| id % 2 == 1).unwrap();
        assert!(odd.results.iter().all(|r| r.id % 2 == 1));
        let strict = SimilarOptions {
            min_score: 0.5,
            ..SimilarOptions::default()
        };
        let few = similar(&index, 5, &strict, &|_| true).unwrap();
        assert!(few.results.iter().all(|r| r.score >= 0.5));
        assert!(few.results.len() < 20);
        assert!(matches!(
            similar(&index, 99_999, &strict, &|_| true),
            Err(Error::UnknownTrack(99_999))
        ));
    }

    #[test]
    fn duplicate_groups_from_the_graph() {
        let (index, _) = setup();
        let g = Graph::build(&index, 5);
        assert_eq!(
            duplicate_groups(&index, &g),
            vec![vec![1, 1001, 1002], vec![2, 1003]]
        );
    }
}
