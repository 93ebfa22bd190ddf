//! The values the library interface passes: tracks, jobs, outcomes, runs, status figures.

use std::fmt;
use std::path::PathBuf;

use sonoprint_core::{Analysis, ErrorClass, Fingerprint, Mode};

use crate::{Result, StoreError};

/// A row of `tracks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub i64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether the file of a track was there at the last scan of its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackState {
    Present,
    Missing,
}

impl TrackState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackState::Present => "present",
            TrackState::Missing => "missing",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<TrackState> {
        match s {
            "present" => Ok(TrackState::Present),
            "missing" => Ok(TrackState::Missing),
            other => Err(StoreError::Invalid(format!("track state {other:?}"))),
        }
    }
}

/// A file found by a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedFile {
    /// Absolute path.
    pub path: PathBuf,
    pub filesize: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// The title tag; `None` keeps the stored title (an unchanged file's tags are not re-read).
    pub title: Option<String>,
}

/// What a batch of [`Store::upsert_scanned`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    pub added: u64,
    /// Present before, size or mtime changed.
    pub updated: u64,
    pub unchanged: u64,
    /// Missing before, present again.
    pub revived: u64,
}

impl std::ops::AddAssign for ScanCounts {
    fn add_assign(&mut self, o: ScanCounts) {
        self.added += o.added;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.revived += o.revived;
    }
}

/// What the database knows of a file, for the scanner's stat-only comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    pub id: TrackId,
    pub filesize: Option<u64>,
    pub mtime_ns: Option<i64>,
    pub state: TrackState,
}

/// One scan over some roots, from [`Store::begin_scan`] to [`Store::finish_scan`].
#[derive(Debug, Clone)]
pub struct Scan {
    pub(crate) id: i64,
    pub(crate) roots: Vec<String>,
}

/// A track handed to a runner by [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub track_id: TrackId,
    pub path: PathBuf,
    /// The file as the last scan saw it; the result is stored against these, so a file changed
    /// since is recomputed after the next scan.
    pub filesize: u64,
    pub mtime_ns: i64,
}

/// Which tracks [`Store::claim`] picks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    /// Also pick tracks whose unchanged file failed before.
    pub retry_failed: bool,
    /// `Full` also picks tracks whose current fingerprint came from excerpts (a full-mode
    /// fingerprint satisfies both modes).
    pub mode: Mode,
}

/// The result of one job, for [`Store::record`].
// Outcomes travel in batches of tens: boxing the analysis would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    Done {
        job: Job,
        analysis: Analysis,
        /// Wall time spent on the file.
        computed_ms: u64,
    },
    Failed {
        job: Job,
        class: ErrorClass,
        message: String,
        /// The decoders tried, in order.
        decoders: Vec<String>,
    },
}

impl Outcome {
    pub fn job(&self) -> &Job {
        match self {
            Outcome::Done { job, .. } | Outcome::Failed { job, .. } => job,
        }
    }
}

/// What [`Store::record`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Fingerprints written.
    pub done: u64,
    /// Failures written.
    pub failed: u64,
    /// Results not written because the runner no longer held the claim (its lease expired and
    /// another runner took the track, or it was released): the other runner's result counts.
    pub stale: u64,
}

impl RecordCounts {
    pub fn written(&self) -> u64 {
        self.done + self.failed
    }
}

/// A row of `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Not finished yet (or its process died: see [`RunStatus::Died`]).
    #[default]
    Running,
    /// Went through every pending track (or its `--max-tracks`).
    Finished,
    /// Stopped by the user (Ctrl-C).
    Interrupted,
    /// Stopped by an error.
    Failed,
    /// Reported by [`Store::status`] only: a run still marked running whose process, on this
    /// host, is gone.
    Died,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
            RunStatus::Died => "died",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Interrupted,
            RunStatus::Failed,
            RunStatus::Died,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The totals a run reports at its end, for [`Store::finish_run`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunSummary {
    pub completed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub wall_sec: f64,
    /// CPU seconds of the run and its workers.
    pub cpu_sec: f64,
    pub status: RunStatus,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: RunId,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub host: String,
    pub pid: u32,
    pub mode: Mode,
    pub summary: RunSummary,
}

/// The figures of `sonoprint status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub tracks: u64,
    pub present: u64,
    pub missing: u64,
    /// Present tracks with a current fingerprint (this version, this file).
    pub fingerprinted_current: u64,
    /// Present tracks with a fingerprint that is no longer current (older version, or the file
    /// changed) and no current failure. Counted in `pending` too.
    pub stale: u64,
    /// Present tracks a `run` would compute: no current fingerprint and no failure of the same
    /// file.
    pub pending: u64,
    /// Present tracks whose current file failed, by class, most frequent first.
    pub failed_by_class: Vec<(String, u64)>,
    /// Tracks claimed by a runner right now (live leases).
    pub claimed: u64,
    pub db_path: PathBuf,
    /// The database file plus its write-ahead log.
    pub db_size_bytes: u64,
    pub last_run: Option<RunInfo>,
    /// The runners holding live claims now, by host then pid.
    pub runners: Vec<RunnerInfo>,
    /// In the player's own database: its rows as the player counts them.
    pub auralis: Option<AuralisCounts>,
}

/// A runner holding claims: who, how much, how fast, when last heard of.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerInfo {
    pub runner: String,
    pub host: String,
    pub pid: u32,
    /// Tracks it holds live claims on now.
    pub claimed: u64,
    /// Results it wrote (fingerprints and failures), where the backend counts them as they
    /// are written; `None` where only the end of a run records them.
    pub done: Option<u64>,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    /// Its last heartbeat (or claim), unix milliseconds.
    pub last_heartbeat_ms: i64,
}

impl RunnerInfo {
    /// Results per second since it started, where `done` is known.
    pub fn rate(&self) -> Option<f64> {
        let secs = (self.last_heartbeat_ms - self.started_at_ms) as f64 / 1000.0;
        self.done
            .map(|d| if secs > 0.0 { d as f64 / secs } else { 0.0 })
    }
}

/// The fingerprint rows of an Auralis database as the player reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuralisCounts {
    /// The version stamped and counted as current.
    pub version: u32,
    /// Rows the player counts as fingerprints: `lufs != -100` and the version current.
    pub current: u64,
    /// Claim placeholders of the player's workers (`lufs = -100`).
    pub placeholders: u64,
    /// Real results of an older version.
    pub older_versions: u64,
}

impl Status {
    pub fn failed(&self) -> u64 {
        self.failed_by_class.iter().map(|(_, n)| n).sum()
    }
}

/// A failure of a track's current file.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    pub track_id: TrackId,
    pub path: PathBuf,
    /// An [`ErrorClass`] name (kept as text: a newer sonoprint may know more classes).
    pub class: String,
    pub message: String,
    pub decoders: Vec<String>,
    pub attempts: u64,
    pub first_at_ms: i64,
    pub last_at_ms: i64,
}

/// A stored fingerprint with how it relates to the track's file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFingerprint {
    pub fingerprint: Fingerprint,
    pub version: u32,
    /// How it was computed; `None` for a row sonoprint did not write (the player's own).
    pub mode: Option<Mode>,
    /// The file it was computed from, where sonoprint wrote it; `None` when unknown.
    pub filesize: Option<u64>,
    pub mtime_ns: Option<i64>,
    /// A result of the library's current version (not a placeholder), computed from the file as
    /// the library last saw it.
    pub current: bool,
}

impl StoredFingerprint {
    /// Whether this fingerprint answers for the file as it is now (`size`, `mtime_ns` from a
    /// fresh `stat`) in `mode`: current, of this file where the file it came from is known,
    /// and computed from every sample when `Full` is asked. The one rule that the server and
    /// the batch runner's SQL both follow.
    pub fn is_current_for(&self, size: u64, mtime_ns: i64, mode: Mode) -> bool {
        let same_file = match (self.filesize, self.mtime_ns) {
            (Some(s), Some(m)) => s == size && m == mtime_ns,
            _ => true,
        };
        self.current && same_file && (mode == Mode::Excerpt || self.mode == Some(Mode::Full))
    }
}

/// A track as the HTTP server shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRow {
    pub id: TrackId,
    pub title: Option<String>,
    pub path: PathBuf,
    pub duration: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub format: Option<String>,
    pub filesize: Option<u64>,
    pub mtime_ns: Option<i64>,
    pub state: TrackState,
    pub fingerprint: Option<StoredFingerprint>,
}

/// Which tracks [`Store::tracks`] lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackFilter {
    pub state: Option<TrackState>,
    /// `Some(true)`: only tracks with a current fingerprint; `Some(false)`: only those without.
    pub fingerprinted: Option<bool>,
}

/// A page of [`Store::tracks`], in id order: the tracks after `after` (keyset paging, stable
/// while tracks are added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: Option<TrackId>,
    pub limit: u32,
}

/// One row of `similarity_graph`, with the player's columns: `similar_track_id` is the
/// `rank`-th nearest track of `track_id` (rank 1 = the nearest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphEdge {
    pub track_id: TrackId,
    pub similar_track_id: TrackId,
    /// The model's distance (0 for the same audio; unbounded above).
    pub distance: f64,
    /// In [0, 1], 1 for the same audio.
    pub similarity_score: f64,
    pub rank: u32,
}

/// What the stored graph was built with: the similarity model (serialised by the similarity
/// layer; the store keeps it as text), its id, `k` and when.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphState {
    /// The model, as JSON.
    pub model: String,
    /// The model's id (version, generation and fit count), quoted by every answer.
    pub model_id: String,
    /// Neighbours per track.
    pub k: u32,
    /// How many fingerprints the model was fitted on.
    pub fitted_on: u64,
    pub built_at_ms: i64,
}

/// One change to the stored graph, written by [`crate::Library::write_graph`] in one
/// transaction.
#[derive(Debug, Clone, Copy)]
pub struct GraphUpdate<'a> {
    /// What the graph is now built with.
    pub state: &'a GraphState,
    /// Drop every row and node first (a rebuild; with the player's database, the player's own
    /// rows too).
    pub rebuild: bool,
    /// The tracks whose rows are replaced by `edges` (ignored with `rebuild`).
    pub rows_of: &'a [TrackId],
    /// The new rows; each one's `track_id` is in `rows_of` (or anything with `rebuild`).
    pub edges: &'a [GraphEdge],
    /// The tracks the graph now covers, with the digest of the fingerprint it used (see
    /// [`crate::Library::graph_nodes`]); added or updated.
    pub nodes: &'a [(TrackId, i64)],
    /// Tracks that no longer have a current fingerprint: their node, their rows and every row
    /// pointing at them are deleted.
    pub removed: &'a [TrackId],
}

/// What [`crate::Library::write_graph`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphCounts {
    pub rows_written: u64,
    pub rows_deleted: u64,
    /// Rows not written because a track of theirs was deleted meanwhile (by the player).
    pub rows_skipped: u64,
}
