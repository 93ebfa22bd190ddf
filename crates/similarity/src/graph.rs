//! The k-nearest-neighbour graph of the library (the player's `similarity_graph` rows), built
//! whole or updated incrementally after a run changed some tracks.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::index::{parallel_map, squared};
use crate::{Error, Index, Neighbour};

/// One row of the `similarity_graph` table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Edge {
    pub track_id: i64,
    pub similar_track_id: i64,
    pub distance: f32,
    pub similarity_score: f32,
    /// 1 for the nearest.
    pub rank: u32,
}

/// Every track's k nearest neighbours (itself excluded), for the model it was built with.
/// Rows are stored flat, k slots per track, to keep a million-track graph small.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    k: usize,
    model_id: String,
    /// Tracks with a row, ascending.
    ids: Vec<i64>,
    /// `k` slots per track; the first `counts[i]` are used.
    slots: Vec<Neighbour>,
    counts: Vec<u32>,
}

/// What [`Graph::update`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateReport {
    /// Tracks whose rows were recomputed (ascending): the changed tracks and those whose
    /// neighbourhood the change reached.
    pub recomputed: Vec<i64>,
    /// Tracks whose rows were dropped (removed, or without a fingerprint now).
    pub dropped: Vec<i64>,
}

const EMPTY: Neighbour = Neighbour {
    id: 0,
    distance: 0.0,
    score: 0.0,
};

impl Graph {
    /// Every track's `k` nearest, in parallel. Exact or approximate as the index is.
    pub fn build(index: &Index, k: usize) -> Graph {
        let idxs: Vec<usize> = (0..index.len()).collect();
        let rows = index.all_neighbours(&idxs, k);
        let mut graph = Graph {
            k,
            model_id: index.model().id(),
            ids: index.ids().to_vec(),
            slots: Vec::with_capacity(index.len() * k),
            counts: Vec::with_capacity(index.len()),
        };
        for row in rows {
            graph.push_row(index, &row);
        }
        graph
    }

    fn push_row(&mut self, index: &Index, row: &[(f32, u32)]) {
        self.counts.push(row.len() as u32);
        for &(d2, i) in row {
            self.slots.push(index.neighbour(d2, i));
        }
        for _ in row.len()..self.k {
            self.slots.push(EMPTY);
        }
    }

    /// A graph as stored (the `similarity_graph` rows of one model), to be brought up to date
    /// with [`Graph::update`]. Each track's ranks must run 1, 2, ... without a gap and
    /// number at most `k`; the order of `edges` does not matter. A track that had no
    /// neighbour at all has no edge either: [`Graph::update`] then treats it as new.
    pub fn from_edges(
        k: usize,
        model_id: impl Into<String>,
        edges: impl IntoIterator<Item = Edge>,
    ) -> Result<Graph, Error> {
        let mut rows: std::collections::BTreeMap<i64, Vec<Edge>> = Default::default();
        for e in edges {
            rows.entry(e.track_id).or_default().push(e);
        }
        let mut graph = Graph {
            k,
            model_id: model_id.into(),
            ids: Vec::with_capacity(rows.len()),
            slots: Vec::with_capacity(rows.len() * k),
            counts: Vec::with_capacity(rows.len()),
        };
        for (id, mut row) in rows {
            row.sort_by_key(|e| e.rank);
            let ranks_ok = row.len() <= k
                && row
                    .iter()
                    .enumerate()
                    .all(|(i, e)| e.rank as usize == i + 1 && e.similar_track_id != id);
            if !ranks_ok {
                return Err(Error::BadGraphRow(id));
            }
            graph.ids.push(id);
            graph.counts.push(row.len() as u32);
            graph.slots.extend(row.iter().map(|e| Neighbour {
                id: e.similar_track_id,
                distance: e.distance,
                score: e.similarity_score,
            }));
            graph
                .slots
                .extend(std::iter::repeat_n(EMPTY, k - row.len()));
        }
        Ok(graph)
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// [`crate::Model::id`] of the model the distances are in.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Number of tracks with a row.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The neighbours of a track, nearest first; `None` if it has no row (no fingerprint).
    pub fn row(&self, id: i64) -> Option<&[Neighbour]> {
        let i = self.ids.binary_search(&id).ok()?;
        Some(self.row_at(i))
    }

    fn row_at(&self, i: usize) -> &[Neighbour] {
        let start = i * self.k;
        &self.slots[start..start + self.counts[i] as usize]
    }

    /// Every edge, by track id then rank.
    pub fn edges(&self) -> impl Iterator<Item = Edge> + '_ {
        self.ids.iter().enumerate().flat_map(move |(i, &track_id)| {
            self.row_at(i).iter().enumerate().map(move |(r, n)| Edge {
                track_id,
                similar_track_id: n.id,
                distance: n.distance,
                similarity_score: n.score,
                rank: r as u32 + 1,
            })
        })
    }

    /// The rows an update must recompute, given the new `index` (same model), the tracks
    /// added or changed since this graph was built (`changed`), and those removed or left
    /// without a fingerprint (`removed`): the changed tracks themselves, every track that
    /// pointed at a changed or removed one, every track a changed one is now nearer to than
    /// its current k-th neighbour, and every track with a short row when tracks were added.
    pub fn affected(
        &self,
        index: &Index,
        changed: &[i64],
        removed: &[i64],
    ) -> Result<BTreeSet<i64>, Error> {
        if index.model().id() != self.model_id {
            return Err(Error::ModelChanged {
                graph: self.model_id.clone(),
                index: index.model().id(),
            });
        }
        let mut gone: BTreeSet<i64> = removed.iter().copied().collect();
        let mut moved: BTreeSet<i64> = BTreeSet::new();
        for &id in changed {
            if index.contains(id) {
                moved.insert(id);
            } else {
                gone.insert(id);
            }
        }
        // Tracks of the index with no row yet are new even if the caller did not say so.
        for &id in index.ids() {
            if self.ids.binary_search(&id).is_err() {
                moved.insert(id);
            }
        }
        let moved_idx: Vec<(usize, i64)> = moved
            .iter()
            .filter_map(|&id| index.position(id).map(|p| (p, id)))
            .collect();
        let full = self.k.min(index.len().saturating_sub(1));
        let candidates: Vec<(usize, i64)> = self
            .ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !moved.contains(id) && !gone.contains(id))
            .map(|(i, &id)| (i, id))
            .collect();
        let hit = parallel_map(
            candidates.len(),
            || (),
            |_, j| {
                let (i, id) = candidates[j];
                let row = self.row_at(i);
                if row
                    .iter()
                    .any(|n| moved.contains(&n.id) || gone.contains(&n.id))
                {
                    return true;
                }
                if row.len() < full {
                    return true;
                }
                let Some(x) = index.position(id) else {
                    return true;
                };
                let Some(last) = row.last() else {
                    return false;
                };
                let Some(kth) = index.position(last.id) else {
                    return true;
                };
                let q = index.row(x);
                let bound = squared(q, index.row(kth));
                moved_idx.iter().any(|&(c, cid)| {
                    let d2 = squared(q, index.row(c));
                    d2 < bound || (d2 == bound && cid < last.id)
                })
            },
        );
        let mut out = moved;
        out.extend(
            candidates
                .iter()
                .zip(hit)
                .filter(|(_, h)| *h)
                .map(|((_, id), _)| *id),
        );
        Ok(out)
    }

    /// Brings the graph up to date with the new `index` (see [`Graph::affected`] for what
    /// `changed` and `removed` mean), recomputing only the affected rows. The result equals a
    /// full [`Graph::build`] on `index` when the index is exact.
    pub fn update(
        &mut self,
        index: &Index,
        changed: &[i64],
        removed: &[i64],
    ) -> Result<UpdateReport, Error> {
        let affected = self.affected(index, changed, removed)?;
        let recompute: Vec<usize> = affected
            .iter()
            .filter_map(|&id| index.position(id))
            .collect();
        let fresh = index.all_neighbours(&recompute, self.k);
        let dropped: Vec<i64> = self
            .ids
            .iter()
            .copied()
            .filter(|id| !index.contains(*id))
            .collect();
        let old = std::mem::replace(
            self,
            Graph {
                k: self.k,
                model_id: self.model_id.clone(),
                ids: index.ids().to_vec(),
                slots: Vec::with_capacity(index.len() * self.k),
                counts: Vec::with_capacity(index.len()),
            },
        );
        let mut fresh_iter = recompute.iter().zip(fresh).peekable();
        for idx in 0..index.len() {
            let id = index.id_at(idx);
            if let Some((_, row)) = fresh_iter.next_if(|(&r, _)| r == idx) {
                self.push_row(index, &row);
            } else if let Ok(o) = old.ids.binary_search(&id) {
                let start = o * old.k;
                self.counts.push(old.counts[o]);
                self.slots
                    .extend_from_slice(&old.slots[start..start + old.k]);
            } else {
                // Unreachable: a track without an old row is in `affected`.
                let row = index.all_neighbours(&[idx], self.k);
                self.push_row(index, row.first().map_or(&[][..], |r| &r[..]));
            }
        }
        Ok(UpdateReport {
            recomputed: recompute.iter().map(|&i| index.id_at(i)).collect(),
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{synthetic, Model};
    use sonoprint_core::Fingerprint;

    fn library(n: usize, seed: u64) -> Vec<(i64, Fingerprint)> {
        synthetic::generate(n, 12, seed)
            .into_iter()
            .map(|t| (t.id, t.fingerprint))
            .collect()
    }

    #[test]
    fn graph_rows_are_ranked_and_exclude_self() {
        let lib = library(400, 5);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &lib).unwrap();
        let g = Graph::build(&index, 10);
        assert_eq!(g.len(), 400);
        assert_eq!(g.edges().count(), 4000);
        for e in g.edges() {
            assert_ne!(e.track_id, e.similar_track_id);
            assert!((1..=10).contains(&e.rank));
        }
        let row = g.row(17).unwrap();
        assert_eq!(row, &index.neighbours_of(17, 10, &|_| true).unwrap()[..]);
        assert!(row.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(g.row(100_000).is_none());
    }

    /// Change, add and remove tracks; the incremental update must equal a full rebuild.
    #[test]
    fn incremental_update_equals_full_recompute() {
        let lib = library(600, 9);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let model = Model::fit(&fps).unwrap();
        let index = Index::build(model.clone(), &lib).unwrap();
        let mut g = Graph::build(&index, 8);

        let extra = library(30, 77);
        let mut next: Vec<(i64, Fingerprint)> = lib
            .iter()
            .filter(|(id, _)| id % 50 != 0) // 12 removed
            .copied()
            .collect();
        let removed: Vec<i64> = lib.iter().map(|t| t.0).filter(|id| id % 50 == 0).collect();
        let mut changed = Vec::new();
        for (id, fp) in next.iter_mut() {
            if *id % 41 == 0 {
                // Re-analysed: now sounds like another track.
                *fp = extra[(*id as usize) % 30].1;
                changed.push(*id);
            }
        }
        for (i, (_, fp)) in extra.iter().enumerate().take(10) {
            let id = 10_000 + i as i64;
            next.push((id, *fp));
            changed.push(id);
        }
        // A duplicate of an existing track, added.
        next.push((20_000, lib[5].1));
        changed.push(20_000);

        let new_index = Index::build(model, &next).unwrap();
        let report = g.update(&new_index, &changed, &removed).unwrap();
        let full = Graph::build(&new_index, 8);
        assert_eq!(g, full);
        assert_eq!(report.dropped, removed);
        assert!(
            report.recomputed.len() < next.len() / 2,
            "{}",
            report.recomputed.len()
        );
        // Nothing points at a removed track.
        assert!(g.edges().all(|e| !removed.contains(&e.similar_track_id)));
        assert!(g.row(removed[0]).is_none());
    }

    /// A track whose fingerprint went away (reported as changed, absent from the new index)
    /// loses its row and every edge to it.
    #[test]
    fn track_without_fingerprint_has_no_edges() {
        let lib = library(200, 4);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let model = Model::fit(&fps).unwrap();
        let index = Index::build(model.clone(), &lib).unwrap();
        let mut g = Graph::build(&index, 6);
        let lost = g.row(10).unwrap()[0].id; // someone's nearest neighbour
        let rest: Vec<(i64, Fingerprint)> = lib.iter().filter(|t| t.0 != lost).copied().collect();
        let new_index = Index::build(model, &rest).unwrap();
        let report = g.update(&new_index, &[lost], &[]).unwrap();
        assert_eq!(report.dropped, vec![lost]);
        assert!(report.recomputed.contains(&10));
        assert!(g.row(lost).is_none());
        assert!(g
            .edges()
            .all(|e| e.similar_track_id != lost && e.track_id != lost));
        assert_eq!(g, Graph::build(&new_index, 6));
    }

    #[test]
    fn stored_edges_round_trip() {
        let lib = library(150, 6);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &lib).unwrap();
        let g = Graph::build(&index, 7);
        let mut edges: Vec<Edge> = g.edges().collect();
        edges.reverse();
        let back = Graph::from_edges(7, g.model_id(), edges.clone()).unwrap();
        assert_eq!(back, g);
        edges[0].rank = 9;
        assert!(matches!(
            Graph::from_edges(7, g.model_id(), edges),
            Err(Error::BadGraphRow(_))
        ));
    }

    #[test]
    fn update_refuses_another_model() {
        let lib = library(100, 1);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let m1 = Model::fit(&fps).unwrap();
        let m2 = m1.refit(&fps[..50]).unwrap();
        let mut g = Graph::build(&Index::build(m1, &lib).unwrap(), 5);
        let other = Index::build(m2, &lib).unwrap();
        assert!(matches!(
            g.update(&other, &[], &[]),
            Err(Error::ModelChanged { .. })
        ));
    }

    #[test]
    fn tiny_library_has_short_rows() {
        let lib = library(12, 2);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &lib).unwrap();
        let mut g = Graph::build(&index, 20);
        assert!(lib.iter().all(|t| g.row(t.0).unwrap().len() == 11));
        // Growing it fills every row.
        let mut more = lib.clone();
        more.extend(library(30, 3).into_iter().map(|(id, f)| (id + 100, f)));
        let bigger = Index::build(index.model().clone(), &more).unwrap();
        let added: Vec<i64> = (101..=130).collect();
        g.update(&bigger, &added, &[]).unwrap();
        assert_eq!(g, Graph::build(&bigger, 20));
    }
}
