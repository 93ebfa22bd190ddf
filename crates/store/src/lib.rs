//! sonoprint's library database: one SQLite file holding the tracks found by `scan`, the
//! fingerprints computed by `run`, the failures, the runners' claims and the runs' summaries.
//!
//! # Guarantees
//!
//! - `track_fingerprints` holds only complete results: a row is written once, with all 25
//!   dimensions and the version, by [`Store::record`]; claims and failures live in their own
//!   tables. Its columns are those of the Auralis table, in the same order, with sonoprint's own
//!   (nullable) columns appended.
//! - Every write is a transaction whose every statement is checked; an error comes back as a
//!   [`StoreError`] naming the operation and the track, and the transaction is rolled back.
//! - A track is handed to one runner at a time ([`Store::claim`] runs under `BEGIN IMMEDIATE`),
//!   and a result is written only by the runner that still holds the claim, so it counts once.
//!
//! # How the batch runner uses it
//!
//! ```no_run
//! use std::time::Duration;
//! use sonoprint_store::{ClaimOptions, Outcome, RunSummary, RunStatus, RunnerId, Store};
//! # fn analyse(job: &sonoprint_store::Job) -> Outcome { unimplemented!() }
//! let mut store = Store::open("library.db".as_ref())?;
//! let runner = RunnerId::for_this_process();
//! let opts = ClaimOptions::default();
//! let run = store.begin_run(&runner, opts.mode)?;
//! let lease = Duration::from_secs(120);
//! loop {
//!     // Claim a batch, a few per worker; renew while it is being worked on.
//!     let jobs = store.claim(&runner, 16, lease, &opts)?;
//!     if jobs.is_empty() {
//!         break;
//!     }
//!     let outcomes: Vec<Outcome> = jobs.iter().map(analyse).collect();
//!     store.renew(&runner, lease)?;
//!     // One transaction per batch; results whose claim was taken over are skipped.
//!     let counts = store.record(&runner, &outcomes)?;
//!     assert_eq!(counts.written() + counts.stale, outcomes.len() as u64);
//! }
//! store.release(&runner)?; // on Ctrl-C too: unfinished tracks go back to the pool
//! store.finish_run(run, &RunSummary { status: RunStatus::Finished, ..Default::default() })?;
//! # Ok::<(), sonoprint_store::StoreError>(())
//! ```

mod error;
mod runner;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{named_params, params, Connection, OptionalExtension, TransactionBehavior};
use sonoprint_core::{Analysis, ErrorClass, Fingerprint, Mode, FINGERPRINT_VERSION};

use error::Ctx;
pub use error::StoreError;
pub use runner::{hostname, pid_alive, RunnerId};
pub use schema::SCHEMA_VERSION;

/// A file's modification time in nanoseconds since the epoch: the `mtime_ns` the store keeps,
/// in one place so that the scanner and the server compare like with like.
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

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a connection waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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

    fn parse(s: &str) -> Result<TrackState> {
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
    id: i64,
    roots: Vec<String>,
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
    pub mode: Option<Mode>,
    /// This version, computed from the file as it is now.
    pub current: bool,
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

/// An open library database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    host: String,
}

/// SQL for "the track `t` has a current fingerprint `f`" under the named parameters `:ver` and
/// `:full`. Never NULL (a missing row makes it 0).
const CURRENT_FP: &str = "IFNULL(f.track_id IS NOT NULL AND f.fingerprint_version >= :ver \
     AND f.filesize = t.filesize AND f.mtime_ns = t.mtime_ns \
     AND (:full = 0 OR f.mode = 'full'), 0)";

/// SQL for "the failure `fl` is about the track's file as it is now".
const CURRENT_FAILURE: &str = "IFNULL(fl.track_id IS NOT NULL AND fl.filesize = t.filesize \
     AND fl.mtime_ns = t.mtime_ns, 0)";

impl Store {
    /// Opens (creating it and its folder if needed) the database at `path` and brings its schema
    /// up to date. Fails with [`StoreError::TooNew`] on a database of a newer sonoprint.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                op: "create the folder",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path).ctx("open the database")?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .ctx("set the busy timeout")?;
        // WAL: readers (status, the server) never block the runner's writes, and a crash loses
        // at most the transaction in flight.
        let journal: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .ctx("switch to WAL mode")?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "journal mode {journal} instead of wal"
            )));
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx("enable foreign keys")?;
        // NORMAL in WAL mode is durable against application crashes, and keeps commits cheap.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx("set synchronous")?;
        migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            host: hostname(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // ---- scanning ---------------------------------------------------------------------------

    /// Starts a scan of `roots` (absolute, canonical folders) and remembers them in `roots`.
    pub fn begin_scan(&mut self, roots: &[PathBuf]) -> Result<Scan> {
        let roots = roots
            .iter()
            .map(|r| path_str(r).map(str::to_string))
            .collect::<Result<Vec<_>>>()?;
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a scan")?;
        for r in &roots {
            tx.execute(
                "INSERT INTO roots (path, added_at, last_scan_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT(path) DO UPDATE SET last_scan_at = excluded.last_scan_at",
                params![r, now],
            )
            .ctx("remember a scanned root")?;
        }
        tx.execute("INSERT INTO scans (started_at) VALUES (?1)", [now])
            .ctx("record a scan")?;
        let id = tx.last_insert_rowid();
        tx.commit().ctx("commit the start of a scan")?;
        Ok(Scan { id, roots })
    }

    /// Every track under `root` (a folder), keyed by path: one query, for comparing `stat`
    /// results without opening files.
    pub fn known_files(&self, root: &Path) -> Result<HashMap<PathBuf, KnownFile>> {
        let (lo, hi) = prefix_range(path_str(root)?);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT filepath, id, filesize, mtime_ns, state FROM tracks
                 WHERE filepath >= ?1 AND filepath < ?2",
            )
            .ctx("list known files")?;
        let rows = stmt
            .query_map(params![lo, hi], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    TrackId(r.get(1)?),
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .ctx("list known files")?;
        let mut out = HashMap::new();
        for row in rows {
            let (path, id, size, mtime_ns, state) = row.ctx("list known files")?;
            out.insert(
                PathBuf::from(path),
                KnownFile {
                    id,
                    filesize: size.map(|s| s as u64),
                    mtime_ns,
                    state: TrackState::parse(&state)?,
                },
            );
        }
        Ok(out)
    }

    /// Adds or updates the files of one batch, in one transaction, and marks them seen by
    /// `scan`. Pass every file the scan found, unchanged ones too (with `title: None`), so that
    /// [`Store::finish_scan`] knows which ones vanished.
    pub fn upsert_scanned(&mut self, scan: &Scan, files: &[ScannedFile]) -> Result<ScanCounts> {
        let mut counts = ScanCounts::default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a scan batch")?;
        {
            let mut find = tx
                .prepare_cached(
                    "SELECT id, filesize, mtime_ns, state FROM tracks WHERE filepath = ?1",
                )
                .ctx("look up a scanned file")?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO tracks (title, filepath, filesize, mtime_ns, state, seen_scan)
                     VALUES (?1, ?2, ?3, ?4, 'present', ?5)",
                )
                .ctx("add a track")?;
            let mut change = tx
                .prepare_cached(
                    "UPDATE tracks SET title = COALESCE(?1, title), filesize = ?2, mtime_ns = ?3,
                     state = 'present', seen_scan = ?4, updated_at = CURRENT_TIMESTAMP
                     WHERE id = ?5",
                )
                .ctx("update a track")?;
            let mut seen = tx
                .prepare_cached("UPDATE tracks SET seen_scan = ?1 WHERE id = ?2")
                .ctx("mark a track seen")?;
            for f in files {
                let path = path_str(&f.path)?;
                let size = f.filesize as i64;
                let known = find
                    .query_row([path], |r| {
                        Ok((
                            TrackId(r.get(0)?),
                            r.get::<_, Option<i64>>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .optional()
                    .ctx("look up a scanned file")?;
                match known {
                    None => {
                        insert
                            .execute(params![f.title, path, size, f.mtime_ns, scan.id])
                            .ctx("add a track")?;
                        counts.added += 1;
                    }
                    Some((id, old_size, old_mtime, state)) => {
                        let state = TrackState::parse(&state)?;
                        let same = old_size == Some(size) && old_mtime == Some(f.mtime_ns);
                        if state == TrackState::Present && same {
                            expect_one(
                                seen.execute(params![scan.id, id.0]),
                                "mark a track seen",
                                id,
                            )?;
                            counts.unchanged += 1;
                        } else {
                            expect_one(
                                change.execute(params![f.title, size, f.mtime_ns, scan.id, id.0]),
                                "update a track",
                                id,
                            )?;
                            if state == TrackState::Missing {
                                counts.revived += 1;
                            } else {
                                counts.updated += 1;
                            }
                        }
                    }
                }
            }
        }
        tx.commit().ctx("commit a scan batch")?;
        Ok(counts)
    }

    /// Ends a scan: every present track under the scan's roots that the scan did not see is
    /// marked `missing` (its fingerprint and failure rows are kept), except under `not_walked`,
    /// the folders the scan could not read (an unreadable folder is not a deleted one). Returns
    /// how many tracks went missing.
    pub fn finish_scan(&mut self, scan: &Scan, not_walked: &[PathBuf]) -> Result<u64> {
        let skip = not_walked
            .iter()
            .map(|p| path_str(p).map(|s| prefix_range(s).0))
            .collect::<Result<Vec<_>>>()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin the end of a scan")?;
        let mut missing = 0;
        {
            let mut unseen = tx
                .prepare_cached(
                    "SELECT id, filepath FROM tracks WHERE filepath >= ?1 AND filepath < ?2
                     AND state = 'present' AND (seen_scan IS NULL OR seen_scan < ?3)",
                )
                .ctx("find vanished files")?;
            let mut mark = tx
                .prepare_cached(
                    "UPDATE tracks SET state = 'missing', updated_at = CURRENT_TIMESTAMP
                     WHERE id = ?1",
                )
                .ctx("mark a track missing")?;
            for root in &scan.roots {
                let (lo, hi) = prefix_range(root);
                let gone = unseen
                    .query_map(params![lo, hi, scan.id], |r| {
                        Ok((TrackId(r.get(0)?), r.get::<_, String>(1)?))
                    })
                    .ctx("find vanished files")?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .ctx("find vanished files")?;
                for (id, path) in gone {
                    if skip.iter().any(|s| path.starts_with(s.as_str())) {
                        continue;
                    }
                    expect_one(mark.execute([id.0]), "mark a track missing", id)?;
                    missing += 1;
                }
            }
        }
        tx.execute(
            "UPDATE scans SET finished_at = ?1 WHERE id = ?2",
            params![now_ms(), scan.id],
        )
        .ctx("record the end of a scan")?;
        tx.commit().ctx("commit the end of a scan")?;
        Ok(missing)
    }

    /// The folders ever scanned, in path order (the server's allowed roots).
    pub fn roots(&self) -> Result<Vec<PathBuf>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM roots ORDER BY path")
            .ctx("list the roots")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .ctx("list the roots")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list the roots")?;
        Ok(rows.into_iter().map(PathBuf::from).collect())
    }

    // ---- the work API of `run` --------------------------------------------------------------

    /// Atomically hands up to `n` tracks to `runner` for `lease`: present tracks without a
    /// current fingerprint, without a failure of the same file (unless `retry_failed`), and not
    /// claimed by a live runner. A claim is live until it expires, except that the claims of a
    /// runner on this host whose process is gone are dead at once (a `kill -9`ed run's tracks
    /// are picked up by the next run immediately). Tracks come in id order.
    pub fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>> {
        // IMMEDIATE takes the write lock first, so two claimers cannot both read a track as free.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a claim")?;
        let now = now_ms();
        let local = {
            let mut stmt = tx
                .prepare_cached("SELECT DISTINCT runner, pid FROM claims WHERE host = ?1")
                .ctx("list this host's claims")?;
            let rows = stmt
                .query_map([&self.host], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .ctx("list this host's claims")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("list this host's claims")?;
            rows
        };
        for (other, pid) in local {
            if other != runner.as_str() && !u32::try_from(pid).is_ok_and(pid_alive) {
                tx.execute("DELETE FROM claims WHERE runner = ?1", [&other])
                    .ctx("drop a dead runner's claims")?;
            }
        }
        let picked = {
            let sql = format!(
                "SELECT t.id, t.filepath, t.filesize, t.mtime_ns FROM tracks t
                 LEFT JOIN track_fingerprints f ON f.track_id = t.id
                 LEFT JOIN failures fl ON fl.track_id = t.id
                 LEFT JOIN claims c ON c.track_id = t.id
                 WHERE t.state = 'present' AND NOT {CURRENT_FP}
                   AND (:retry OR NOT {CURRENT_FAILURE})
                   AND (c.track_id IS NULL OR c.expires_at <= :now)
                 ORDER BY t.id LIMIT :n"
            );
            let mut stmt = tx.prepare_cached(&sql).ctx("pick pending tracks")?;
            let rows = stmt
                .query_map(
                    named_params! {
                        ":ver": FINGERPRINT_VERSION,
                        ":full": opts.mode == Mode::Full,
                        ":retry": opts.retry_failed,
                        ":now": now,
                        ":n": n as i64,
                    },
                    |r| {
                        Ok(Job {
                            track_id: TrackId(r.get(0)?),
                            path: PathBuf::from(r.get::<_, String>(1)?),
                            filesize: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                            mtime_ns: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                        })
                    },
                )
                .ctx("pick pending tracks")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("pick pending tracks")?;
            rows
        };
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO claims (track_id, runner, host, pid, claimed_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(track_id) DO UPDATE SET runner = excluded.runner,
                       host = excluded.host, pid = excluded.pid,
                       claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
                )
                .ctx("claim a track")?;
            let expires = now.saturating_add(lease.as_millis() as i64);
            for job in &picked {
                expect_one(
                    put.execute(params![
                        job.track_id.0,
                        runner.as_str(),
                        runner.host(),
                        runner.pid(),
                        now,
                        expires
                    ]),
                    "claim a track",
                    job.track_id,
                )?;
            }
        }
        tx.commit().ctx("commit a claim")?;
        Ok(picked)
    }

    /// How many present tracks [`Store::claim`] with `opts` would pick, claimed or not: the
    /// work of a run. Unlike `status().pending`, it counts unchanged failures with
    /// `retry_failed` and excerpt-mode fingerprints in `Full` mode.
    pub fn pending(&self, opts: &ClaimOptions) -> Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM tracks t
             LEFT JOIN track_fingerprints f ON f.track_id = t.id
             LEFT JOIN failures fl ON fl.track_id = t.id
             WHERE t.state = 'present' AND NOT {CURRENT_FP}
               AND (:retry OR NOT {CURRENT_FAILURE})"
        );
        let n: i64 = self
            .conn
            .query_row(
                &sql,
                named_params! {
                    ":ver": FINGERPRINT_VERSION,
                    ":full": opts.mode == Mode::Full,
                    ":retry": opts.retry_failed,
                },
                |r| r.get(0),
            )
            .ctx("count pending tracks")?;
        Ok(n as u64)
    }

    /// Extends every claim of `runner` to `lease` from now. Returns how many it holds.
    pub fn renew(&mut self, runner: &RunnerId, lease: Duration) -> Result<u64> {
        let expires = now_ms().saturating_add(lease.as_millis() as i64);
        let n = self
            .conn
            .execute(
                "UPDATE claims SET expires_at = ?1 WHERE runner = ?2",
                params![expires, runner.as_str()],
            )
            .ctx("renew claims")?;
        Ok(n as u64)
    }

    /// Drops every claim of `runner` (at the end of a run, or on Ctrl-C): its unfinished tracks
    /// are free for the next run at once. Returns how many were dropped.
    pub fn release(&mut self, runner: &RunnerId) -> Result<u64> {
        let n = self
            .conn
            .execute("DELETE FROM claims WHERE runner = ?1", [runner.as_str()])
            .ctx("release claims")?;
        Ok(n as u64)
    }

    /// Writes a batch of results in one transaction. A result is written only while `runner`
    /// still holds the track's claim (else it is counted as stale and skipped); writing it drops
    /// the claim. `Done` upserts the fingerprint with its file's size and mtime, copies the
    /// metadata to the track and deletes the track's failure; `Failed` upserts the failure
    /// (attempts + 1). On any error nothing of the batch is written.
    pub fn record(&mut self, runner: &RunnerId, results: &[Outcome]) -> Result<RecordCounts> {
        let mut counts = RecordCounts::default();
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin writing results")?;
        {
            let mut holder = tx
                .prepare_cached("SELECT runner FROM claims WHERE track_id = ?1")
                .ctx("check a claim")?;
            let mut fp = tx
                .prepare_cached(upsert_fingerprint_sql())
                .ctx("write a fingerprint")?;
            let mut track = tx
                .prepare_cached(
                    "UPDATE tracks SET duration = ?1, sample_rate = ?2, channels = ?3,
                     format = ?4, updated_at = CURRENT_TIMESTAMP WHERE id = ?5",
                )
                .ctx("update a track's metadata")?;
            let mut unfail = tx
                .prepare_cached("DELETE FROM failures WHERE track_id = ?1")
                .ctx("delete a failure")?;
            let mut fail = tx
                .prepare_cached(
                    "INSERT INTO failures (track_id, class, message, decoders, attempts,
                       filesize, mtime_ns, first_at, last_at)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)
                     ON CONFLICT(track_id) DO UPDATE SET class = excluded.class,
                       message = excluded.message, decoders = excluded.decoders,
                       attempts = attempts + 1, filesize = excluded.filesize,
                       mtime_ns = excluded.mtime_ns, last_at = excluded.last_at",
                )
                .ctx("write a failure")?;
            let mut unclaim = tx
                .prepare_cached("DELETE FROM claims WHERE track_id = ?1 AND runner = ?2")
                .ctx("drop a claim")?;
            for outcome in results {
                let job = outcome.job();
                let id = job.track_id;
                let held: Option<String> = holder
                    .query_row([id.0], |r| r.get(0))
                    .optional()
                    .ctx_track("check a claim", id)?;
                if held.as_deref() != Some(runner.as_str()) {
                    counts.stale += 1;
                    continue;
                }
                match outcome {
                    Outcome::Done {
                        analysis,
                        computed_ms,
                        ..
                    } => {
                        if let Some(dimension) = analysis.fingerprint.first_non_finite() {
                            return Err(StoreError::NonFinite {
                                track: id,
                                dimension,
                            });
                        }
                        let m = &analysis.metadata;
                        let mut values: Vec<Value> = Vec::with_capacity(33);
                        values.push(Value::Integer(id.0));
                        values.extend(analysis.fingerprint.to_array().map(Value::Real));
                        values.push(Value::Integer(FINGERPRINT_VERSION.into()));
                        values.push(Value::Integer(job.filesize as i64));
                        values.push(Value::Integer(job.mtime_ns));
                        values.push(Value::Text(m.mode.as_str().to_string()));
                        values.push(Value::Text(m.decoder.clone()));
                        values.push(Value::Real(m.analyzed_sec));
                        values.push(Value::Integer(*computed_ms as i64));
                        expect_one(
                            fp.execute(rusqlite::params_from_iter(values)),
                            "write a fingerprint",
                            id,
                        )?;
                        expect_one(
                            track.execute(params![
                                m.duration_sec,
                                m.sample_rate,
                                m.channels,
                                m.format,
                                id.0
                            ]),
                            "update a track's metadata",
                            id,
                        )?;
                        unfail.execute([id.0]).ctx_track("delete a failure", id)?;
                        counts.done += 1;
                    }
                    Outcome::Failed {
                        class,
                        message,
                        decoders,
                        ..
                    } => {
                        expect_one(
                            fail.execute(params![
                                id.0,
                                class.as_str(),
                                message,
                                decoders.join(","),
                                job.filesize as i64,
                                job.mtime_ns,
                                now
                            ]),
                            "write a failure",
                            id,
                        )?;
                        counts.failed += 1;
                    }
                }
                expect_one(
                    unclaim.execute(params![id.0, runner.as_str()]),
                    "drop a claim",
                    id,
                )?;
            }
        }
        tx.commit().ctx("commit results")?;
        Ok(counts)
    }

    // ---- runs -------------------------------------------------------------------------------

    /// Records the start of a run (status `running`).
    pub fn begin_run(&mut self, runner: &RunnerId, mode: Mode) -> Result<RunId> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, host, pid, runner, mode, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                params![
                    now_ms(),
                    runner.host(),
                    runner.pid(),
                    runner.as_str(),
                    mode.as_str()
                ],
            )
            .ctx("record the start of a run")?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Records a run's totals and end (call it again to update a running run's figures).
    pub fn finish_run(&mut self, run: RunId, s: &RunSummary) -> Result<()> {
        let finished = (s.status != RunStatus::Running).then(now_ms);
        let n = self
            .conn
            .execute(
                "UPDATE runs SET finished_at = ?1, completed = ?2, failed = ?3, skipped = ?4,
                 wall_sec = ?5, cpu_sec = ?6, status = ?7 WHERE id = ?8",
                params![
                    finished,
                    s.completed as i64,
                    s.failed as i64,
                    s.skipped as i64,
                    s.wall_sec,
                    s.cpu_sec,
                    s.status.as_str(),
                    run.0
                ],
            )
            .ctx("record the end of a run")?;
        if n != 1 {
            return Err(StoreError::Invalid(format!("no run {}", run.0)));
        }
        Ok(())
    }

    // ---- queries ----------------------------------------------------------------------------

    /// The figures of `sonoprint status`.
    pub fn status(&self) -> Result<Status> {
        let (tracks, present, missing) = self
            .conn
            .query_row(
                "SELECT COUNT(*), IFNULL(SUM(state = 'present'), 0),
                 IFNULL(SUM(state = 'missing'), 0) FROM tracks",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .ctx("count tracks")?;
        let per_track = format!(
            "SELECT {CURRENT_FP} AS cur, f.track_id IS NOT NULL AS has_fp,
             {CURRENT_FAILURE} AS failed, fl.class AS class
             FROM tracks t
             LEFT JOIN track_fingerprints f ON f.track_id = t.id
             LEFT JOIN failures fl ON fl.track_id = t.id
             WHERE t.state = 'present'"
        );
        let args = named_params! { ":ver": FINGERPRINT_VERSION, ":full": false };
        let (current, stale, pending) = self
            .conn
            .query_row(
                &format!(
                    "SELECT IFNULL(SUM(cur), 0), IFNULL(SUM(has_fp AND NOT cur AND NOT failed), 0),
                     IFNULL(SUM(NOT cur AND NOT failed), 0) FROM ({per_track})"
                ),
                args,
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .ctx("count fingerprints")?;
        let failed_by_class = {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT class, COUNT(*) AS n FROM ({per_track}) WHERE failed AND NOT cur
                     GROUP BY class ORDER BY n DESC, class"
                ))
                .ctx("count failures")?;
            let rows = stmt
                .query_map(args, |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .ctx("count failures")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("count failures")?;
            rows
        };
        let claimed: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM claims WHERE expires_at > ?1",
                [now_ms()],
                |r| r.get(0),
            )
            .ctx("count claims")?;
        let mut db_size_bytes = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            db_size_bytes += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        Ok(Status {
            tracks: tracks as u64,
            present: present as u64,
            missing: missing as u64,
            fingerprinted_current: current as u64,
            stale: stale as u64,
            pending: pending as u64,
            failed_by_class,
            claimed: claimed as u64,
            db_path: self.path.clone(),
            db_size_bytes,
            last_run: self.last_run()?,
        })
    }

    /// The latest run, if any. A run still marked running whose process on this host is gone is
    /// reported as [`RunStatus::Died`].
    pub fn last_run(&self) -> Result<Option<RunInfo>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, host, pid, mode, completed, failed, skipped,
                 wall_sec, cpu_sec, status FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        (
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ),
                        (
                            r.get::<_, i64>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, i64>(8)?,
                            r.get::<_, Option<f64>>(9)?,
                            r.get::<_, Option<f64>>(10)?,
                            r.get::<_, String>(11)?,
                        ),
                    ))
                },
            )
            .optional()
            .ctx("read the last run")?;
        let Some(((id, started, finished, host, pid, mode), (c, f, s, wall, cpu, status))) = row
        else {
            return Ok(None);
        };
        let mut status = RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("run status {status:?}")))?;
        let pid = u32::try_from(pid).map_err(|_| StoreError::Invalid(format!("pid {pid}")))?;
        if status == RunStatus::Running && host == self.host && !pid_alive(pid) {
            status = RunStatus::Died;
        }
        Ok(Some(RunInfo {
            id: RunId(id),
            started_at_ms: started,
            finished_at_ms: finished,
            host,
            pid,
            mode: parse_mode(&mode)?,
            summary: RunSummary {
                completed: c as u64,
                failed: f as u64,
                skipped: s as u64,
                wall_sec: wall.unwrap_or(0.0),
                cpu_sec: cpu.unwrap_or(0.0),
                status,
            },
        }))
    }

    /// The failures of present tracks' current files, by class then path; `class` filters.
    pub fn failures(&self, class: Option<&str>) -> Result<Vec<FailureRow>> {
        let sql = format!(
            "SELECT t.id, t.filepath, fl.class, fl.message, fl.decoders, fl.attempts,
             fl.first_at, fl.last_at
             FROM failures fl JOIN tracks t ON t.id = fl.track_id
             LEFT JOIN track_fingerprints f ON f.track_id = t.id
             WHERE t.state = 'present' AND {CURRENT_FAILURE} AND NOT {CURRENT_FP}
               AND (:class IS NULL OR fl.class = :class)
             ORDER BY fl.class, t.filepath"
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx("list failures")?;
        let rows = stmt
            .query_map(
                named_params! { ":ver": FINGERPRINT_VERSION, ":full": false, ":class": class },
                |r| {
                    let decoders: String = r.get(4)?;
                    Ok(FailureRow {
                        track_id: TrackId(r.get(0)?),
                        path: PathBuf::from(r.get::<_, String>(1)?),
                        class: r.get(2)?,
                        message: r.get(3)?,
                        decoders: decoders
                            .split(',')
                            .filter(|d| !d.is_empty())
                            .map(str::to_string)
                            .collect(),
                        attempts: r.get::<_, i64>(5)? as u64,
                        first_at_ms: r.get(6)?,
                        last_at_ms: r.get(7)?,
                    })
                },
            )
            .ctx("list failures")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list failures")?;
        Ok(rows)
    }

    /// One track with its fingerprint.
    pub fn track(&self, id: TrackId) -> Result<Option<TrackRow>> {
        let sql = format!("{TRACK_SELECT} WHERE t.id = :id");
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .ctx_track("read a track", id)?;
        let row = stmt
            .query_row(
                named_params! { ":ver": FINGERPRINT_VERSION, ":full": false, ":id": id.0 },
                track_row,
            )
            .optional()
            .ctx_track("read a track", id)?;
        row.transpose()
    }

    /// A page of tracks in id order.
    pub fn tracks(&self, page: Page, filter: TrackFilter) -> Result<Vec<TrackRow>> {
        let sql = format!(
            "{TRACK_SELECT} WHERE t.id > :after AND (:state IS NULL OR t.state = :state)
             AND (:fp IS NULL OR {CURRENT_FP} = :fp) ORDER BY t.id LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx("list tracks")?;
        let rows = stmt
            .query_map(
                named_params! {
                    ":ver": FINGERPRINT_VERSION,
                    ":full": false,
                    ":after": page.after.map_or(i64::MIN, |t| t.0),
                    ":state": filter.state.map(TrackState::as_str),
                    ":fp": filter.fingerprinted,
                    ":limit": page.limit,
                },
                track_row,
            )
            .ctx("list tracks")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list tracks")?;
        rows.into_iter().collect()
    }

    /// The id of the track at `path`, if it is in the library.
    pub fn track_id_by_path(&self, path: &Path) -> Result<Option<TrackId>> {
        self.conn
            .query_row(
                "SELECT id FROM tracks WHERE filepath = ?1",
                [path_str(path)?],
                |r| Ok(TrackId(r.get(0)?)),
            )
            .optional()
            .ctx("look up a track by path")
    }

    /// Writes one fingerprint computed outside a `run` (the HTTP server): in one checked
    /// transaction, upserts the fingerprint against the file's `filesize` and `mtime_ns` as they
    /// were when the analysis started, copies the metadata to the track and deletes the
    /// track's failure. Needs no claim: a `run` that computes the same track later writes the
    /// same values.
    pub fn store_fingerprint(
        &mut self,
        id: TrackId,
        filesize: u64,
        mtime_ns: i64,
        analysis: &Analysis,
        computed_ms: u64,
    ) -> Result<()> {
        if let Some(dimension) = analysis.fingerprint.first_non_finite() {
            return Err(StoreError::NonFinite {
                track: id,
                dimension,
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx_track("begin writing a fingerprint", id)?;
        {
            let m = &analysis.metadata;
            let mut values: Vec<Value> = Vec::with_capacity(33);
            values.push(Value::Integer(id.0));
            values.extend(analysis.fingerprint.to_array().map(Value::Real));
            values.push(Value::Integer(FINGERPRINT_VERSION.into()));
            values.push(Value::Integer(filesize as i64));
            values.push(Value::Integer(mtime_ns));
            values.push(Value::Text(m.mode.as_str().to_string()));
            values.push(Value::Text(m.decoder.clone()));
            values.push(Value::Real(m.analyzed_sec));
            values.push(Value::Integer(computed_ms as i64));
            let mut fp = tx
                .prepare_cached(upsert_fingerprint_sql())
                .ctx_track("write a fingerprint", id)?;
            expect_one(
                fp.execute(rusqlite::params_from_iter(values)),
                "write a fingerprint",
                id,
            )?;
            expect_one(
                tx.execute(
                    "UPDATE tracks SET duration = ?1, sample_rate = ?2, channels = ?3,
                     format = ?4, updated_at = CURRENT_TIMESTAMP WHERE id = ?5",
                    params![m.duration_sec, m.sample_rate, m.channels, m.format, id.0],
                ),
                "update a track's metadata",
                id,
            )?;
            tx.execute("DELETE FROM failures WHERE track_id = ?1", [id.0])
                .ctx_track("delete a failure", id)?;
        }
        tx.commit().ctx_track("commit a fingerprint", id)?;
        Ok(())
    }

    /// The underlying connection, for tests in this crate.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

const TRACK_SELECT: &str = "SELECT t.id, t.title, t.filepath, t.duration, t.sample_rate, \
     t.channels, t.format, t.filesize, t.mtime_ns, t.state, f.track_id IS NOT NULL, \
     f.fingerprint_version, f.mode, \
     IFNULL(f.track_id IS NOT NULL AND f.fingerprint_version >= :ver \
       AND f.filesize = t.filesize AND f.mtime_ns = t.mtime_ns AND (:full = 0 OR f.mode = 'full'), 0), \
     f.sub_bass_pct, f.bass_pct, f.low_mid_pct, f.mid_pct, f.upper_mid_pct, f.presence_pct, \
     f.air_pct, f.lufs, f.crest_db, f.bass_mid_ratio, f.tempo_bpm, f.rhythm_stability, \
     f.transient_density, f.silence_ratio, f.spectral_centroid, f.spectral_rolloff, \
     f.spectral_flatness, f.harmonic_ratio, f.pitch_stability, f.chroma_energy, \
     f.dynamic_range_variation, f.loudness_variation_std, f.peak_consistency, f.stereo_width, \
     f.phase_correlation \
     FROM tracks t LEFT JOIN track_fingerprints f ON f.track_id = t.id";

/// Reads a row of `TRACK_SELECT`. The inner `Result` carries values this build cannot read.
fn track_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TrackRow>> {
    let id = TrackId(r.get(0)?);
    let state: String = r.get(9)?;
    let state = match TrackState::parse(&state) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let fingerprint = if r.get::<_, bool>(10)? {
        let mut values = [0.0; 25];
        for (i, v) in values.iter_mut().enumerate() {
            *v = r.get(14 + i)?;
        }
        let mode = match r.get::<_, Option<String>>(12)?.as_deref().map(parse_mode) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => return Ok(Err(e)),
        };
        Some(StoredFingerprint {
            fingerprint: Fingerprint::from_array(values),
            version: r.get(11)?,
            mode,
            current: r.get(13)?,
        })
    } else {
        None
    };
    Ok(Ok(TrackRow {
        id,
        title: r.get(1)?,
        path: PathBuf::from(r.get::<_, String>(2)?),
        duration: r.get(3)?,
        sample_rate: r.get(4)?,
        channels: r.get(5)?,
        format: r.get(6)?,
        filesize: r.get::<_, Option<i64>>(7)?.map(|s| s as u64),
        mtime_ns: r.get(8)?,
        state,
        fingerprint,
    }))
}

/// Applies the missing migrations in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin the schema migration")?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx("read the schema version")?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::Invalid(format!("schema version {found}")));
    }
    for sql in &schema::MIGRATIONS[found as usize..] {
        tx.execute_batch(sql).ctx("migrate the schema")?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .ctx("write the schema version")?;
    }
    tx.commit().ctx("commit the schema migration")?;
    Ok(())
}

/// The fingerprint upsert, built once from `Fingerprint::NAMES` so it cannot miss a column.
fn upsert_fingerprint_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut cols: Vec<&str> = vec!["track_id"];
        cols.extend(Fingerprint::NAMES);
        cols.extend([
            "fingerprint_version",
            "filesize",
            "mtime_ns",
            "mode",
            "decoder",
            "analyzed_sec",
            "computed_ms",
        ]);
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let updates: Vec<String> = cols[1..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO track_fingerprints ({}) VALUES ({}) ON CONFLICT(track_id) DO UPDATE SET \
             {}, updated_at = CURRENT_TIMESTAMP",
            cols.join(", "),
            marks.join(", "),
            updates.join(", ")
        )
    })
}

fn expect_one(changed: rusqlite::Result<usize>, op: &'static str, track: TrackId) -> Result<()> {
    match changed.ctx_track(op, track)? {
        1 => Ok(()),
        _ => Err(StoreError::NoRow { op, track }),
    }
}

fn parse_mode(s: &str) -> Result<Mode> {
    match s {
        "excerpt" => Ok(Mode::Excerpt),
        "full" => Ok(Mode::Full),
        other => Err(StoreError::Invalid(format!("mode {other:?}"))),
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| StoreError::NonUtf8Path(p.to_path_buf()))
}

/// The `[lo, hi)` range of paths strictly under folder `root`: `root/` up to `root0` ('0' is the
/// byte after '/'), which SQLite answers from the `filepath` index.
fn prefix_range(root: &str) -> (String, String) {
    let base = root.trim_end_matches('/');
    (format!("{base}/"), format!("{base}0"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
