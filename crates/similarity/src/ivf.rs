//! The approximate index: an inverted file (IVF-flat). k-means cuts the library into cells;
//! a query scans exactly the tracks of the `probes` cells whose centres are nearest to it.
//! Deterministic (seeded sample, fixed iteration count, sums in index order), no copy of the
//! vectors beyond one cell-ordered block layout, and no graph to hold in memory.

use crate::index::{parallel_map, squared, TopK, LANES};
use crate::rng::SplitMix64;

const D: usize = sonoprint_core::DIMENSION_COUNT;
type Block = [[f32; LANES]; D];

/// k-means iterations.
const ITERATIONS: usize = 10;
/// Tracks per cell the k-means sample holds (the sample is `cells * SAMPLE_PER_CELL`).
const SAMPLE_PER_CELL: usize = 64;

pub(crate) struct Ivf {
    centres: Vec<[f32; D]>,
    /// The tracks of cell c are `blocks[cell_blocks[c]..cell_blocks[c + 1]]`, padded with
    /// infinite lanes; `members[b * LANES + l]` is the row index of each lane (u32::MAX for
    /// padding).
    cell_blocks: Vec<usize>,
    blocks: Vec<Block>,
    members: Vec<u32>,
    pub(crate) probes: usize,
}

/// Cells for a library of `n` tracks: about 2 √n, so a cell holds about √n / 2 tracks.
pub(crate) fn default_cells(n: usize) -> usize {
    ((2.0 * (n as f64).sqrt()) as usize)
        .clamp(1, 65_536)
        .min(n.max(1))
}

fn nearest_centre(centres: &[[f32; D]], v: &[f32; D]) -> usize {
    let mut best = (f32::INFINITY, 0usize);
    for (c, centre) in centres.iter().enumerate() {
        let d2 = squared(v, centre);
        if d2 < best.0 {
            best = (d2, c);
        }
    }
    best.1
}

impl Ivf {
    pub(crate) fn build(rows: &[[f32; D]], cells: usize, probes: usize, seed: u64) -> Ivf {
        let n = rows.len();
        let cells = cells.clamp(1, n.max(1));
        // A deterministic sample: a seeded partial shuffle.
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(seed);
        let sample_len = (cells * SAMPLE_PER_CELL).min(n);
        for i in 0..sample_len {
            let j = i + rng.below(n - i);
            order.swap(i, j);
        }
        let sample: Vec<usize> = order[..sample_len].to_vec();
        let mut centres: Vec<[f32; D]> = sample[..cells].iter().map(|&i| rows[i]).collect();
        for _ in 0..ITERATIONS {
            let assign = parallel_map(
                sample.len(),
                || (),
                |_, s| nearest_centre(&centres, &rows[sample[s]]),
            );
            let mut sums = vec![[0.0f64; D]; cells];
            let mut counts = vec![0usize; cells];
            for (s, &c) in assign.iter().enumerate() {
                counts[c] += 1;
                for d in 0..D {
                    sums[c][d] += f64::from(rows[sample[s]][d]);
                }
            }
            for c in 0..cells {
                if counts[c] > 0 {
                    for d in 0..D {
                        centres[c][d] = (sums[c][d] / counts[c] as f64) as f32;
                    }
                }
                // An empty cell keeps its centre: it may catch tracks in the full pass.
            }
        }
        let assign = parallel_map(n, || (), |_, i| nearest_centre(&centres, &rows[i]) as u32);
        let mut by_cell: Vec<Vec<u32>> = vec![Vec::new(); cells];
        for (i, &c) in assign.iter().enumerate() {
            by_cell[c as usize].push(i as u32);
        }
        let mut cell_blocks = Vec::with_capacity(cells + 1);
        let mut blocks = Vec::with_capacity(n / LANES + cells);
        let mut members = Vec::with_capacity(n + cells * LANES);
        cell_blocks.push(0);
        for cell in &by_cell {
            for chunk in cell.chunks(LANES) {
                let mut b = [[f32::INFINITY; LANES]; D];
                for (l, &i) in chunk.iter().enumerate() {
                    for d in 0..D {
                        b[d][l] = rows[i as usize][d];
                    }
                }
                blocks.push(b);
                members.extend_from_slice(chunk);
                members.extend(std::iter::repeat_n(u32::MAX, LANES - chunk.len()));
            }
            cell_blocks.push(blocks.len());
        }
        Ivf {
            centres,
            cell_blocks,
            blocks,
            members,
            probes,
        }
    }

    /// The k nearest to `q` in the `probes` nearest cells, among the rows `keep` accepts.
    pub(crate) fn search(&self, q: &[f32; D], k: usize, keep: &dyn Fn(usize) -> bool) -> TopK {
        let mut cells = TopK::new(self.probes.min(self.centres.len()));
        for (c, centre) in self.centres.iter().enumerate() {
            cells.offer(squared(q, centre), c as u32);
        }
        let mut top = TopK::new(k);
        for (_, c) in cells.into_sorted() {
            let c = c as usize;
            for b in self.cell_blocks[c]..self.cell_blocks[c + 1] {
                let block = &self.blocks[b];
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
                    let i = self.members[b * LANES + l];
                    if d2 <= bound && i != u32::MAX && keep(i as usize) {
                        top.offer(d2, i);
                    }
                }
            }
        }
        top
    }
}
