//! sonoprint's library storage: the tracks to fingerprint, the fingerprints computed, the
//! failures, the runners' claims and the runs' summaries, behind one interface ([`Library`])
//! with a backend per kind of database:
//!
//! - [`SqliteLibrary`]: sonoprint's own SQLite file, filled by `scan` ([`Catalog`]);
//! - [`PostgresLibrary`]: a PostgreSQL database shared by many machines, filled by `scan`
//!   ([`Catalog`]), with leased claims renewed by a heartbeat;
//! - [`AuralisLibrary`]: the Auralis player's own database, filled in place: its `tracks` are
//!   the list of work, results go into its `track_fingerprints`, sonoprint's bookkeeping into
//!   tables of its own named `sonoprint_*`.
//!
//! # Guarantees, whatever the backend
//!
//! - `track_fingerprints` holds only complete results: a row is written with all 25 dimensions
//!   and the version, by an upsert (`ON CONFLICT(track_id) DO UPDATE`, never a replace).
//! - Every write is a transaction whose every statement is checked; an error comes back as a
//!   [`StoreError`] naming the operation and the track, and the transaction is rolled back.
//! - A track is handed to one runner at a time ([`Library::claim`]), and a result is written
//!   only by the runner that still holds the claim, so it counts once.
//!
//! # How the batch runner uses it
//!
//! ```no_run
//! use std::time::Duration;
//! use sonoprint_store::{ClaimOptions, Library, Outcome, RunSummary, RunStatus, RunnerId, SqliteLibrary};
//! # fn analyse(job: &sonoprint_store::Job) -> Outcome {
//! #     Outcome::Failed { job: job.clone(), class: sonoprint_core::ErrorClass::Io,
//! #                       message: "not analysed in this example".into(), decoders: vec![] }
//! # }
//! let mut lib = SqliteLibrary::open("library.db".as_ref())?;
//! let runner = RunnerId::for_this_process();
//! let opts = ClaimOptions::default();
//! lib.prepare_run()?;
//! let run = lib.begin_run(&runner, opts.mode)?;
//! let lease = Duration::from_secs(120);
//! loop {
//!     // Claim a batch, a few per worker; renew while it is being worked on.
//!     let jobs = lib.claim(&runner, 16, lease, &opts)?;
//!     if jobs.is_empty() {
//!         break;
//!     }
//!     let outcomes: Vec<Outcome> = jobs.iter().map(analyse).collect();
//!     lib.renew(&runner, lease)?;
//!     // One transaction per batch; results whose claim was taken over are skipped.
//!     let counts = lib.record(&runner, &outcomes)?;
//!     assert_eq!(counts.written() + counts.stale, outcomes.len() as u64);
//! }
//! lib.release(&runner)?; // on Ctrl-C too: unfinished tracks go back to the pool
//! lib.finish_run(run, &RunSummary { status: RunStatus::Finished, ..Default::default() })?;
//! # Ok::<(), sonoprint_store::StoreError>(())
//! ```

mod auralis;
mod error;
#[path = "postgres/mod.rs"]
mod pg;
mod runner;
mod sql;
mod sqlite;
mod transfer;
mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sonoprint_core::Mode;

pub use auralis::{AuralisLibrary, DEFAULT_STAMP as AURALIS_DEFAULT_STAMP};
pub use error::{StoreError, Tracks};
pub use pg::{describe_url, is_postgres_url, PostgresLibrary, PG_SCHEMA_VERSION};
pub use runner::{hostname, pid_alive, RunnerId};
pub use sqlite::{SqliteLibrary, SCHEMA_VERSION};
pub use transfer::{Export, FailureRecord, FingerprintRecord, TrackRecord, Transfer};
pub use types::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A file's modification time in nanoseconds since the epoch: the `mtime_ns` the store keeps,
/// in one place so that the scanner, the server and the backends compare like with like.
pub fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        m.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec())
    }
    #[cfg(not(unix))]
    {
        match m
            .modified()
            .map(|t| t.duration_since(std::time::UNIX_EPOCH))
        {
            Ok(Ok(d)) => d.as_nanos() as i64,
            Ok(Err(e)) => -(e.duration().as_nanos() as i64),
            Err(_) => 0,
        }
    }
}

/// What every command needs from a library, whatever database holds it. Implementations keep
/// the guarantees of the crate documentation; the conformance suite (`src/conformance.rs`)
/// checks them on every backend.
pub trait Library: Send {
    /// The database, for messages (`/home/me/.sonoprint/library.db`).
    fn location(&self) -> &Path;

    /// The scan interface, where the library keeps its own list of files; `None` where another
    /// program owns the list (the player's database: the player scans).
    fn catalog(&mut self) -> Option<&mut dyn Catalog>;

    // ---- the work of `run` ------------------------------------------------------------------

    /// Brings what the library knows of its files up to date before a run, where `scan` does
    /// not (the player's database: a `stat` of every file sonoprint has a result or a failure
    /// for, so that a changed file is computed again). Returns how many files changed.
    fn prepare_run(&mut self) -> Result<u64>;

    /// How many tracks [`Library::claim`] with `opts` would pick, claimed or not: the work of a
    /// run. Unlike `status().pending`, it counts unchanged failures with `retry_failed` and
    /// excerpt-mode fingerprints in `Full` mode.
    fn pending(&self, opts: &ClaimOptions) -> Result<u64>;

    /// Atomically hands up to `n` tracks to `runner` for `lease`: tracks without a current
    /// fingerprint, without a failure of the same file (unless `retry_failed`), and not claimed
    /// by a live runner. A claim is live until it expires, except that the claims of a runner
    /// on this host whose process is gone are dead at once (and its run is marked died).
    /// Tracks come in id order.
    fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>>;

    /// Extends every claim of `runner` to `lease` from now. Returns how many it holds.
    fn renew(&mut self, runner: &RunnerId, lease: Duration) -> Result<u64>;

    /// Drops every claim of `runner` (at the end of a run, or on Ctrl-C): its unfinished tracks
    /// are free for the next run at once. Returns how many were dropped.
    fn release(&mut self, runner: &RunnerId) -> Result<u64>;

    /// Drops `runner`'s claims on `tracks` without writing anything (this machine cannot do
    /// them: the file is not where the path map says), so that another runner may. Returns how
    /// many were dropped.
    fn release_tracks(&mut self, runner: &RunnerId, tracks: &[TrackId]) -> Result<u64>;

    /// The runners holding live claims now (host, pid, claims, results, heartbeat).
    fn runners(&self) -> Result<Vec<RunnerInfo>>;

    /// Tracks this connection claimed and handed back because their file is not readable on
    /// this machine (a path map's folder that lacks them): a failure of this machine's
    /// attempt, not of the track. Zero for a library without a path map.
    fn not_here(&self) -> u64 {
        0
    }

    /// Writes a batch of results in one transaction. A result is written only while `runner`
    /// still holds the track's claim (else it is counted as stale and skipped); writing it
    /// drops the claim. On any error nothing of the batch is written.
    fn record(&mut self, runner: &RunnerId, results: &[Outcome]) -> Result<RecordCounts>;

    /// Writes one result computed outside a run (the HTTP server), in one checked
    /// transaction, with no claim: a `run` that computes the same track later writes the same
    /// values.
    fn store_outcome(&mut self, outcome: &Outcome) -> Result<()>;

    /// Records the start of a run (status `running`).
    fn begin_run(&mut self, runner: &RunnerId, mode: Mode) -> Result<RunId>;

    /// Records a run's totals and end (call it again to update a running run's figures).
    fn finish_run(&mut self, run: RunId, summary: &RunSummary) -> Result<()>;

    // ---- queries ----------------------------------------------------------------------------

    /// The figures of `sonoprint status`.
    fn status(&self) -> Result<Status>;

    /// The latest run, if any. A run still marked running whose process on this host is gone
    /// is reported as [`RunStatus::Died`].
    fn last_run(&self) -> Result<Option<RunInfo>>;

    /// The failures of tracks' current files, by class then path; `class` filters.
    fn failures(&self, class: Option<&str>) -> Result<Vec<FailureRow>>;

    /// One track with its fingerprint.
    fn track(&self, id: TrackId) -> Result<Option<TrackRow>>;

    /// A page of tracks in id order.
    fn tracks(&self, page: Page, filter: TrackFilter) -> Result<Vec<TrackRow>>;

    /// The id of the track at `path`, if it is in the library.
    fn track_id_by_path(&self, path: &Path) -> Result<Option<TrackId>>;

    /// The folders the library's files live under (the server's default allowed roots).
    fn roots(&self) -> Result<Vec<PathBuf>>;

    // ---- the similarity graph -----------------------------------------------------------------

    /// Every present track's current fingerprint (any mode), in id order: what the similarity
    /// model is fitted on and searched.
    fn fingerprints(&self) -> Result<Vec<(TrackId, sonoprint_core::Fingerprint)>>;

    /// The model the stored graph was built with, if a graph was built.
    fn graph_state(&self) -> Result<Option<GraphState>>;

    /// The tracks the stored graph covers, with the digest of the fingerprint each one had
    /// then: a track whose fingerprint has another digest now has changed since.
    fn graph_nodes(&self) -> Result<Vec<(TrackId, i64)>>;

    /// The `similarity_graph` rows of track `of` by rank, or all of them (by track, rank).
    fn graph_edges(&self, of: Option<TrackId>) -> Result<Vec<GraphEdge>>;

    /// Applies one change to the graph in one transaction (see [`GraphUpdate`]).
    fn write_graph(&mut self, update: &GraphUpdate<'_>) -> Result<GraphCounts>;
}

/// The list of files of a library that sonoprint keeps itself, brought up to date by `scan`.
pub trait Catalog {
    /// Starts a scan of `roots` (absolute, canonical folders) and remembers them.
    fn begin_scan(&mut self, roots: &[PathBuf]) -> Result<Scan>;

    /// Every track under `root` (a folder), keyed by path: one query, for comparing `stat`
    /// results without opening files.
    fn known_files(&self, root: &Path) -> Result<HashMap<PathBuf, KnownFile>>;

    /// Adds or updates the files of one batch, in one transaction, and marks them seen by
    /// `scan`. Pass every file the scan found, unchanged ones too (with `title: None`), so that
    /// [`Catalog::finish_scan`] knows which ones vanished.
    fn upsert_scanned(&mut self, scan: &Scan, files: &[ScannedFile]) -> Result<ScanCounts>;

    /// Ends a scan: every present track under the scan's roots that the scan did not see is
    /// marked `missing` (its fingerprint and failure rows are kept), except under `not_walked`,
    /// the folders the scan could not read. Returns how many tracks went missing.
    fn finish_scan(&mut self, scan: &Scan, not_walked: &[PathBuf]) -> Result<u64>;
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests;
