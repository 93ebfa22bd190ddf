//! Path maps: one library, the same music mounted at different places on different machines.
//!
//! The database keeps one canonical path per track (`/srv/music/a/b.flac`); `--path-map
//! /srv/music=/mnt/music` tells this machine where that folder is here. [`MappedLibrary`] wraps
//! a library: claimed tracks come out with local paths, scanned files go in with canonical ones,
//! and the paths shown and looked up are local. A claimed file that is not where the map says
//! is this machine's problem, not the track's: its claim is released for another machine, it
//! is logged and counted (never recorded as a failure of the track).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sonoprint_core::{Fingerprint, Mode};
use sonoprint_store::{
    Catalog, ClaimOptions, FailureRow, GraphCounts, GraphEdge, GraphState, GraphUpdate, Job,
    KnownFile, Library, Outcome, Page, RecordCounts, Result, RunId, RunInfo, RunSummary, RunnerId,
    RunnerInfo, Scan, ScanCounts, ScannedFile, Status, TrackFilter, TrackId, TrackRow,
};

use crate::AppError;

/// Canonical folder -> local folder, longest canonical prefix first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMap {
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl PathMap {
    /// From `CANONICAL=LOCAL` arguments (absolute folders).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<PathMap, AppError> {
        let mut pairs = Vec::new();
        for a in args {
            let a = a.as_ref();
            let Some((canon, local)) = a.split_once('=') else {
                return Err(AppError::Usage(format!(
                    "bad --path-map {a:?}: expected CANONICAL=LOCAL, e.g. /srv/music=/mnt/music"
                )));
            };
            let (canon, local) = (PathBuf::from(canon), PathBuf::from(local));
            if !canon.is_absolute() || !local.is_absolute() {
                return Err(AppError::Usage(format!(
                    "bad --path-map {a:?}: both folders must be absolute paths"
                )));
            }
            pairs.push((canon, local));
        }
        pairs.sort_by_key(|(c, _)| std::cmp::Reverse(c.components().count()));
        Ok(PathMap { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Where the canonical `p` is on this machine (unchanged when no entry covers it).
    pub fn to_local(&self, p: &Path) -> PathBuf {
        for (canon, local) in &self.pairs {
            if let Ok(rest) = p.strip_prefix(canon) {
                return if rest.as_os_str().is_empty() {
                    local.clone()
                } else {
                    local.join(rest)
                };
            }
        }
        p.to_path_buf()
    }

    /// The canonical path of this machine's `p` (unchanged when no entry covers it).
    pub fn to_canonical(&self, p: &Path) -> PathBuf {
        let mut by_local: Vec<&(PathBuf, PathBuf)> = self.pairs.iter().collect();
        by_local.sort_by_key(|(_, l)| std::cmp::Reverse(l.components().count()));
        for (canon, local) in by_local {
            if let Ok(rest) = p.strip_prefix(local) {
                return if rest.as_os_str().is_empty() {
                    canon.clone()
                } else {
                    canon.join(rest)
                };
            }
        }
        p.to_path_buf()
    }
}

/// A library seen through a [`PathMap`].
pub struct MappedLibrary {
    inner: Box<dyn Library>,
    map: PathMap,
    /// Tracks this process found missing under the map: handed back whenever claimed again.
    not_here: HashSet<TrackId>,
}

impl MappedLibrary {
    pub fn new(inner: Box<dyn Library>, map: PathMap) -> MappedLibrary {
        MappedLibrary {
            inner,
            map,
            not_here: HashSet::new(),
        }
    }

    fn local_row(&self, mut t: TrackRow) -> TrackRow {
        t.path = self.map.to_local(&t.path);
        t
    }
}

impl Library for MappedLibrary {
    fn location(&self) -> &Path {
        self.inner.location()
    }

    fn catalog(&mut self) -> Option<&mut dyn Catalog> {
        self.inner.catalog()?;
        Some(self)
    }

    fn prepare_run(&mut self) -> Result<u64> {
        self.inner.prepare_run()
    }

    fn pending(&self, opts: &ClaimOptions) -> Result<u64> {
        self.inner.pending(opts)
    }

    /// Claims `n` tracks whose files are here; the others are released at once (and asked for
    /// again, so that a batch is not cut short by files of other machines).
    fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>> {
        loop {
            let jobs = self
                .inner
                .claim(runner, n + self.not_here.len(), lease, opts)?;
            let mut keep = Vec::with_capacity(n);
            let mut give_back = Vec::new();
            let mut newly_missing = 0;
            for mut job in jobs {
                if self.not_here.contains(&job.track_id) || keep.len() >= n {
                    give_back.push(job.track_id);
                    continue;
                }
                let local = self.map.to_local(&job.path);
                match std::fs::metadata(&local) {
                    Ok(_) => {
                        job.path = local;
                        keep.push(job);
                    }
                    Err(e) => {
                        tracing::warn!(
                            track = job.track_id.0,
                            canonical = %job.path.display(),
                            local = %local.display(),
                            "io: not readable on this machine under the path map ({e}); \
                             its claim is released for another machine"
                        );
                        self.not_here.insert(job.track_id);
                        give_back.push(job.track_id);
                        newly_missing += 1;
                    }
                }
            }
            if !give_back.is_empty() {
                self.inner.release_tracks(runner, &give_back)?;
            }
            if !keep.is_empty() || newly_missing == 0 {
                return Ok(keep);
            }
        }
    }

    fn renew(&mut self, runner: &RunnerId, lease: Duration) -> Result<u64> {
        self.inner.renew(runner, lease)
    }

    fn release(&mut self, runner: &RunnerId) -> Result<u64> {
        self.inner.release(runner)
    }

    fn release_tracks(&mut self, runner: &RunnerId, tracks: &[TrackId]) -> Result<u64> {
        self.inner.release_tracks(runner, tracks)
    }

    fn runners(&self) -> Result<Vec<RunnerInfo>> {
        self.inner.runners()
    }

    fn not_here(&self) -> u64 {
        self.not_here.len() as u64
    }

    fn record(&mut self, runner: &RunnerId, results: &[Outcome]) -> Result<RecordCounts> {
        // Only track ids, sizes and times are stored from a job: local paths are fine.
        self.inner.record(runner, results)
    }

    fn store_outcome(&mut self, outcome: &Outcome) -> Result<()> {
        self.inner.store_outcome(outcome)
    }

    fn begin_run(&mut self, runner: &RunnerId, mode: Mode) -> Result<RunId> {
        self.inner.begin_run(runner, mode)
    }

    fn finish_run(&mut self, run: RunId, summary: &RunSummary) -> Result<()> {
        self.inner.finish_run(run, summary)
    }

    fn status(&self) -> Result<Status> {
        self.inner.status()
    }

    fn last_run(&self) -> Result<Option<RunInfo>> {
        self.inner.last_run()
    }

    fn failures(&self, class: Option<&str>) -> Result<Vec<FailureRow>> {
        let mut rows = self.inner.failures(class)?;
        for r in &mut rows {
            r.path = self.map.to_local(&r.path);
        }
        Ok(rows)
    }

    fn track(&self, id: TrackId) -> Result<Option<TrackRow>> {
        Ok(self.inner.track(id)?.map(|t| self.local_row(t)))
    }

    fn tracks(&self, page: Page, filter: TrackFilter) -> Result<Vec<TrackRow>> {
        Ok(self
            .inner
            .tracks(page, filter)?
            .into_iter()
            .map(|t| self.local_row(t))
            .collect())
    }

    fn track_id_by_path(&self, path: &Path) -> Result<Option<TrackId>> {
        self.inner.track_id_by_path(&self.map.to_canonical(path))
    }

    fn roots(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .inner
            .roots()?
            .iter()
            .map(|r| self.map.to_local(r))
            .collect())
    }

    fn fingerprints(&self) -> Result<Vec<(TrackId, Fingerprint)>> {
        self.inner.fingerprints()
    }

    fn graph_state(&self) -> Result<Option<GraphState>> {
        self.inner.graph_state()
    }

    fn graph_nodes(&self) -> Result<Vec<(TrackId, i64)>> {
        self.inner.graph_nodes()
    }

    fn graph_edges(&self, of: Option<TrackId>) -> Result<Vec<GraphEdge>> {
        self.inner.graph_edges(of)
    }

    fn write_graph(&mut self, update: &GraphUpdate<'_>) -> Result<GraphCounts> {
        self.inner.write_graph(update)
    }
}

impl Catalog for MappedLibrary {
    fn begin_scan(&mut self, roots: &[PathBuf]) -> Result<Scan> {
        let canon: Vec<PathBuf> = roots.iter().map(|r| self.map.to_canonical(r)).collect();
        self.inner
            .catalog()
            .map_or_else(no_catalog, |c| c.begin_scan(&canon))
    }

    fn known_files(&self, root: &Path) -> Result<HashMap<PathBuf, KnownFile>> {
        // `catalog()` needs `&mut`; the inner library answers known_files through its tracks.
        let canon = self.map.to_canonical(root);
        let mut out = HashMap::new();
        let mut after = None;
        loop {
            let page = self.inner.tracks(
                Page {
                    after,
                    limit: 10_000,
                },
                TrackFilter::default(),
            )?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for t in page {
                if t.path.starts_with(&canon) {
                    out.insert(
                        self.map.to_local(&t.path),
                        KnownFile {
                            id: t.id,
                            filesize: t.filesize,
                            mtime_ns: t.mtime_ns,
                            state: t.state,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    fn upsert_scanned(&mut self, scan: &Scan, files: &[ScannedFile]) -> Result<ScanCounts> {
        let canon: Vec<ScannedFile> = files
            .iter()
            .map(|f| ScannedFile {
                path: self.map.to_canonical(&f.path),
                ..f.clone()
            })
            .collect();
        self.inner
            .catalog()
            .map_or_else(no_catalog, |c| c.upsert_scanned(scan, &canon))
    }

    fn finish_scan(&mut self, scan: &Scan, not_walked: &[PathBuf]) -> Result<u64> {
        let canon: Vec<PathBuf> = not_walked
            .iter()
            .map(|p| self.map.to_canonical(p))
            .collect();
        self.inner
            .catalog()
            .map_or_else(no_catalog, |c| c.finish_scan(scan, &canon))
    }
}

fn no_catalog<T>() -> Result<T> {
    Err(sonoprint_store::StoreError::Invalid(
        "this library keeps no list of files of its own".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_by_whole_components() {
        let m = PathMap::parse(&["/srv/music=/mnt/music", "/srv/music/live=/data/live"]).unwrap();
        assert_eq!(
            m.to_local(Path::new("/srv/music/a/b.flac")),
            Path::new("/mnt/music/a/b.flac")
        );
        assert_eq!(
            m.to_local(Path::new("/srv/music/live/x.flac")),
            Path::new("/data/live/x.flac")
        );
        // Not a component prefix: unchanged.
        assert_eq!(
            m.to_local(Path::new("/srv/musicals/x.flac")),
            Path::new("/srv/musicals/x.flac")
        );
        assert_eq!(
            m.to_canonical(Path::new("/mnt/music/a/b.flac")),
            Path::new("/srv/music/a/b.flac")
        );
        assert_eq!(
            m.to_canonical(Path::new("/mnt/music")),
            Path::new("/srv/music")
        );
        assert!(PathMap::parse(&["/a"]).is_err());
        assert!(PathMap::parse(&["a=/b"]).is_err());
    }
}
