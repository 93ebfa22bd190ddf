//! The searchable library: every track's embedding ([`Model::embed`]) in a contiguous `f32`
//! matrix, searched exactly (a brute-force scan, blocks of 16 tracks laid out dimension-major
//! so that the scan vectorises) or, for very large libraries, approximately through an
//! inverted file (k-means cells, a few nearest cells scanned exactly), behind the same methods.
//!
//! Exact search stays the default up to [`APPROXIMATE_ABOVE`] (50,000) tracks. Measured on
//! this project's 2-core machine (crate docs, "Design, and the measurements behind it"): the
//! exact whole graph (k = 10) takes 5–13 s for 50,000 tracks and 44 s for 100,000 (it grows
//! with the square of the library), while the inverted file builds and answers the graph of
//! 50,000 in 2.5 s with a recall@10 of 0.9996, and of 1,000,000 in under 5 minutes. Single
//! queries are far under 10 ms either way (exact on 50,000: 0.14–0.2 ms median), so it is the
//! graph that decides.
//!
//! Results are deterministic, approximate ones included: ordered by distance, ties broken by
//! the smaller track id.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sonoprint_core::{Fingerprint, DIMENSION_COUNT};

use crate::ivf::{default_cells, Ivf};
use crate::{Error, Model};

const D: usize = DIMENSION_COUNT;
/// Tracks per block of the scan.
pub(crate) const LANES: usize = 16;

/// Library size above which [`SearchMode::Auto`] uses the approximate index (measured: crate
/// docs).
pub const APPROXIMATE_ABOVE: usize = 50_000;

/// Cells an approximate query scans by default (measured: crate docs).
pub const PROBES: usize = 16;

/// A track near a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbour {
    pub id: i64,
    /// [`Model::distance`] (computed in `f32`).
    pub distance: f32,
    /// [`Model::score`] of the distance, in [0, 1].
    pub score: f32,
}

/// Exact or approximate search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// Exact up to [`IndexOptions::approximate_above`] tracks, approximate above.
    #[default]
    Auto,
    Exact,
    Approximate,
}

/// How an [`Index`] is built.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexOptions {
    pub mode: SearchMode,
    /// Library size above which [`SearchMode::Auto`] is approximate.
    pub approximate_above: usize,
    /// Cells of the approximate index (`None`: about 2 √n).
    pub cells: Option<usize>,
    /// Cells a query scans (more is slower and more exact).
    pub probes: usize,
    /// Seed of the k-means sample.
    pub seed: u64,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            mode: SearchMode::Auto,
            approximate_above: APPROXIMATE_ABOVE,
            cells: None,
            probes: PROBES,
            seed: 0x50_0f_1e,
        }
    }
}

type Block = [[f32; LANES]; D];

/// The searchable library. Built from the current fingerprints with a fitted [`Model`]; a
/// track without a fingerprint is simply not in it.
pub struct Index {
    model: Model,
    /// Ascending, so that index order is id order and ties resolve to the smaller id.
    ids: Vec<i64>,
    rows: Vec<[f32; D]>,
    /// The rows again, dimension-major by blocks of [`LANES`] (exact mode only).
    blocks: Vec<Block>,
    ann: Option<Ivf>,
}

/// Squared distance, summed in dimension order: the block scan sums each lane in the same
/// order, so both give bit-identical results.
#[inline]
pub(crate) fn squared(a: &[f32; D], b: &[f32; D]) -> f32 {
    let mut s = 0.0f32;
    for d in 0..D {
        let t = a[d] - b[d];
        s += t * t;
    }
    s
}

/// The k best (squared distance, index) pairs seen so far, ascending.
pub(crate) struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    /// Squared distance a candidate must beat (or tie with a smaller index) to get in.
    #[inline]
    pub(crate) fn bound(&self) -> f32 {
        if self.items.len() < self.k {
            f32::INFINITY
        } else {
            self.items[self.k - 1].0
        }
    }

    #[inline]
    pub(crate) fn offer(&mut self, d2: f32, idx: u32) {
        if self.k == 0 {
            return;
        }
        if self.items.len() == self.k {
            let (wd, wi) = self.items[self.k - 1];
            if d2 > wd || (d2 == wd && idx > wi) {
                return;
            }
        }
        let pos = self
            .items
            .partition_point(|&(d, i)| d < d2 || (d == d2 && i < idx));
        self.items.insert(pos, (d2, idx));
        self.items.truncate(self.k);
    }

    pub(crate) fn into_sorted(self) -> Vec<(f32, u32)> {
        self.items
    }
}

/// Runs `f` on `0..n` on every core (work handed out in chunks), results in index order.
/// Each thread makes its own scratch state with `init`.
pub(crate) fn parallel_map<S, T: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    const CHUNK: usize = 64;
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .min(n.div_ceil(CHUNK).max(1));
    if threads <= 1 {
        let mut state = init();
        return (0..n).map(|i| f(&mut state, i)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut parts: Vec<(usize, Vec<T>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut state = init();
                    let mut mine = Vec::new();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= n {
                            break;
                        }
                        let end = (start + CHUNK).min(n);
                        mine.push((
                            start,
                            (start..end).map(|i| f(&mut state, i)).collect::<Vec<T>>(),
                        ));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    parts.sort_by_key(|(start, _)| *start);
    parts.into_iter().flat_map(|(_, v)| v).collect()
}

impl Index {
    /// Builds the index of `tracks` (id, current fingerprint) with [`IndexOptions::default`].
    pub fn build(model: Model, tracks: &[(i64, Fingerprint)]) -> Result<Index, Error> {
        Self::build_with(model, tracks, &IndexOptions::default())
    }

    /// Builds the index with the given options. Ids must be unique and fingerprints finite.
    pub fn build_with(
        model: Model,
        tracks: &[(i64, Fingerprint)],
        options: &IndexOptions,
    ) -> Result<Index, Error> {
        let mut order: Vec<usize> = (0..tracks.len()).collect();
        order.sort_by_key(|&i| tracks[i].0);
        for w in order.windows(2) {
            if tracks[w[0]].0 == tracks[w[1]].0 {
                return Err(Error::DuplicateId(tracks[w[0]].0));
            }
        }
        if tracks.len() >= u32::MAX as usize {
            return Err(Error::TooManyTracks(tracks.len()));
        }
        let mut ids = Vec::with_capacity(tracks.len());
        let mut rows = Vec::with_capacity(tracks.len());
        for &i in &order {
            let (id, fp) = &tracks[i];
            if let Some(name) = fp.first_non_finite() {
                return Err(Error::NonFinite {
                    id: Some(*id),
                    dimension: name,
                });
            }
            ids.push(*id);
            rows.push(model.embed(fp));
        }
        let approximate = match options.mode {
            SearchMode::Auto => ids.len() > options.approximate_above,
            SearchMode::Exact => false,
            SearchMode::Approximate => true,
        };
        let mut index = Index {
            model,
            ids,
            rows,
            blocks: Vec::new(),
            ann: None,
        };
        if approximate {
            let cells = options
                .cells
                .unwrap_or_else(|| default_cells(index.rows.len()));
            index.ann = Some(Ivf::build(
                &index.rows,
                cells,
                options.probes.max(1),
                options.seed,
            ));
        } else {
            index.blocks = index
                .rows
                .chunks(LANES)
                .map(|chunk| {
                    let mut b = [[f32::INFINITY; LANES]; D];
                    for (l, row) in chunk.iter().enumerate() {
                        for d in 0..D {
                            b[d][l] = row[d];
                        }
                    }
                    b
                })
                .collect();
        }
        Ok(index)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether searches go through the approximate index.
    pub fn is_approximate(&self) -> bool {
        self.ann.is_some()
    }

    /// The track ids, ascending.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    pub fn contains(&self, id: i64) -> bool {
        self.position(id).is_some()
    }

    pub(crate) fn position(&self, id: i64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub(crate) fn id_at(&self, idx: usize) -> i64 {
        self.ids[idx]
    }

    pub(crate) fn row(&self, idx: usize) -> &[f32; D] {
        &self.rows[idx]
    }

    /// The embedding ([`Model::embed`]) of a track.
    pub fn embedding(&self, id: i64) -> Option<[f32; D]> {
        self.position(id).map(|i| self.rows[i])
    }

    /// The distance between two tracks of the index (the same `f32` computation as searches).
    pub fn distance_between(&self, a: i64, b: i64) -> Option<f32> {
        Some(squared(self.row(self.position(a)?), self.row(self.position(b)?)).sqrt())
    }

    pub(crate) fn neighbour(&self, d2: f32, idx: u32) -> Neighbour {
        let distance = d2.sqrt();
        Neighbour {
            id: self.ids[idx as usize],
            distance,
            score: self.model.score(f64::from(distance)) as f32,
        }
    }

    /// Exact scan: the k nearest rows to `q` among those `keep` accepts.
    pub(crate) fn scan(&self, q: &[f32; D], k: usize, keep: &dyn Fn(usize) -> bool) -> TopK {
        let mut top = TopK::new(k);
        if self.blocks.is_empty() {
            for (i, row) in self.rows.iter().enumerate() {
                let d2 = squared(q, row);
                if d2 <= top.bound() && keep(i) {
                    top.offer(d2, i as u32);
                }
            }
            return top;
        }
        for (b, block) in self.blocks.iter().enumerate() {
            let mut acc = [0.0f32; LANES];
            for d in 0..D {
                let qd = q[d];
                let col = &block[d];
                for l in 0..LANES {
                    let t = qd - col[l];
                    acc[l] += t * t;
                }
            }
            let bound = top.bound();
            for (l, &d2) in acc.iter().enumerate() {
                // Padding lanes are infinite and never pass `<=` against a finite bound;
                // while the list is not full the bound is infinite, so check the range.
                let i = b * LANES + l;
                if d2 <= bound && i < self.rows.len() && keep(i) {
                    top.offer(d2, i as u32);
                }
            }
        }
        top
    }

    /// The k nearest to an embedding among the tracks `keep` accepts (by id), nearest first.
    /// Approximate indexes scan their nearest cells first and fall back on an exact scan when
    /// the filter leaves fewer than k tracks there.
    pub fn nearest_to_embedding(
        &self,
        q: &[f32; D],
        k: usize,
        keep: &dyn Fn(i64) -> bool,
    ) -> Vec<Neighbour> {
        if let Some(ivf) = &self.ann {
            let found = ivf.search(q, k, &|i| keep(self.ids[i])).into_sorted();
            if found.len() >= k.min(self.len()) {
                return found
                    .into_iter()
                    .map(|(d, i)| self.neighbour(d, i))
                    .collect();
            }
        }
        self.scan(q, k, &|i| keep(self.ids[i]))
            .into_sorted()
            .into_iter()
            .map(|(d, i)| self.neighbour(d, i))
            .collect()
    }

    /// The k tracks nearest to a fingerprint (which need not be in the library).
    pub fn nearest(&self, fp: &Fingerprint, k: usize) -> Vec<Neighbour> {
        self.nearest_to_embedding(&self.model.embed(fp), k, &|_| true)
    }

    /// The k tracks nearest to track `id`, itself excluded, among those `keep` accepts.
    pub fn neighbours_of(
        &self,
        id: i64,
        k: usize,
        keep: &dyn Fn(i64) -> bool,
    ) -> Result<Vec<Neighbour>, Error> {
        let idx = self.position(id).ok_or(Error::UnknownTrack(id))?;
        Ok(self.nearest_to_embedding(&self.rows[idx], k, &|other| other != id && keep(other)))
    }

    /// The k nearest of the track at `idx`, itself excluded, as (squared distance, index):
    /// what the graph is made of. Approximate indexes answer from their nearest cells alone.
    pub(crate) fn row_neighbours(&self, idx: usize, k: usize) -> Vec<(f32, u32)> {
        let q = &self.rows[idx];
        if let Some(ivf) = &self.ann {
            return ivf.search(q, k, &|i| i != idx).into_sorted();
        }
        self.scan(q, k, &|i| i != idx).into_sorted()
    }

    /// Exact k nearest of the track at `idx` whatever the mode (for recall measurements).
    pub fn exact_neighbours_of(&self, id: i64, k: usize) -> Result<Vec<Neighbour>, Error> {
        let idx = self.position(id).ok_or(Error::UnknownTrack(id))?;
        Ok(self
            .scan(&self.rows[idx], k, &|i| i != idx)
            .into_sorted()
            .into_iter()
            .map(|(d, i)| self.neighbour(d, i))
            .collect())
    }

    /// Every track's k nearest, in parallel on all cores.
    pub(crate) fn all_neighbours(&self, idxs: &[usize], k: usize) -> Vec<Vec<(f32, u32)>> {
        parallel_map(idxs.len(), || (), |_, j| self.row_neighbours(idxs[j], k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn tracks(n: usize) -> Vec<(i64, Fingerprint)> {
        synthetic::generate(n, 10, 3)
            .into_iter()
            .map(|t| (t.id * 3, t.fingerprint))
            .collect()
    }

    fn brute(index: &Index, id: i64, k: usize) -> Vec<(f32, i64)> {
        let model = index.model();
        let q = index.embedding(id).unwrap();
        let mut all: Vec<(f32, i64)> = index
            .ids()
            .iter()
            .filter(|&&o| o != id)
            .map(|&o| (squared(&q, &index.embedding(o).unwrap()), o))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let _ = model;
        all.truncate(k);
        all
    }

    #[test]
    fn exact_search_matches_a_plain_sort() {
        let t = tracks(700);
        let fps: Vec<Fingerprint> = t.iter().map(|x| x.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &t).unwrap();
        assert!(!index.is_approximate());
        for &(id, _) in t.iter().step_by(37) {
            let got = index.neighbours_of(id, 10, &|_| true).unwrap();
            let want = brute(&index, id, 10);
            assert_eq!(
                got.iter().map(|n| n.id).collect::<Vec<_>>(),
                want.iter().map(|w| w.1).collect::<Vec<_>>()
            );
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.distance, w.0.sqrt());
                assert!(g.score > 0.0 && g.score <= 1.0);
            }
        }
    }

    #[test]
    fn ties_go_to_the_smaller_id() {
        let mut t = tracks(50);
        let same = t[0].1;
        t.push((10_000, same));
        t.push((9_000, same));
        t.push((11_000, same));
        let fps: Vec<Fingerprint> = t.iter().map(|x| x.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &t).unwrap();
        let got = index.neighbours_of(t[0].0, 3, &|_| true).unwrap();
        assert_eq!(
            got.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![9_000, 10_000, 11_000]
        );
        assert!(got.iter().all(|n| n.distance == 0.0 && n.score == 1.0));
    }

    #[test]
    fn filters_and_small_libraries() {
        let t = tracks(30);
        let fps: Vec<Fingerprint> = t.iter().map(|x| x.1).collect();
        let index = Index::build(Model::fit(&fps).unwrap(), &t).unwrap();
        let all = index.neighbours_of(3, 100, &|_| true).unwrap();
        assert_eq!(all.len(), 29);
        let even = index.neighbours_of(3, 5, &|id| id % 2 == 0).unwrap();
        assert!(even.iter().all(|n| n.id % 2 == 0));
        assert!(matches!(
            index.neighbours_of(4, 5, &|_| true),
            Err(Error::UnknownTrack(4))
        ));
        let mut dup = t.clone();
        dup.push(t[0]);
        assert!(matches!(
            Index::build(index.model().clone(), &dup),
            Err(Error::DuplicateId(_))
        ));
    }

    #[test]
    fn approximate_index_is_deterministic() {
        let t = tracks(2000);
        let fps: Vec<Fingerprint> = t.iter().map(|x| x.1).collect();
        let model = Model::fit(&fps).unwrap();
        let options = IndexOptions {
            mode: SearchMode::Approximate,
            ..IndexOptions::default()
        };
        let a = Index::build_with(model.clone(), &t, &options).unwrap();
        let mut shuffled = t.clone();
        shuffled.reverse();
        let b = Index::build_with(model, &shuffled, &options).unwrap();
        assert_eq!(
            crate::Graph::build(&a, 10),
            crate::Graph::build(&b, 10),
            "same tracks, same graph"
        );
    }

    #[test]
    fn approximate_index_has_high_recall() {
        let t = tracks(3000);
        let fps: Vec<Fingerprint> = t.iter().map(|x| x.1).collect();
        let model = Model::fit(&fps).unwrap();
        let options = IndexOptions {
            mode: SearchMode::Approximate,
            ..IndexOptions::default()
        };
        let index = Index::build_with(model, &t, &options).unwrap();
        assert!(index.is_approximate());
        let mut hits = 0;
        let mut total = 0;
        for &(id, _) in t.iter().step_by(29) {
            let got = index.neighbours_of(id, 10, &|_| true).unwrap();
            let want = index.exact_neighbours_of(id, 10).unwrap();
            total += want.len();
            hits += want
                .iter()
                .filter(|w| got.iter().any(|g| g.id == w.id))
                .count();
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.95, "recall {recall}");
        // Filters that leave too few candidates fall back on the exact scan.
        let few = index.neighbours_of(3, 5, &|id| id % 300 == 0).unwrap();
        assert_eq!(few.len(), 5);
        assert!(few.iter().all(|n| n.id % 300 == 0));
    }
}
