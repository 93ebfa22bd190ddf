//! The Auralis player's own database, filled in place while the player may be running.
//!
//! - The list of work is the player's `tracks` (`id`, `filepath`); the player scans, so there
//!   is no [`Catalog`].
//! - Results go into the player's `track_fingerprints` the way the player writes them: an
//!   upsert of the 25 dimensions, `fingerprint_version` (the stamp, 1 by default) and
//!   `updated_at`. The player's own columns (`id`, `created_at`, `is_reference`,
//!   `reference_weight`, `fingerprint_blob`) keep their values.
//! - Where `tracks` has them, the status columns `fingerprint_status`,
//!   `fingerprint_computed_at` and `fingerprint_error_message` are set; no other column of
//!   `tracks` is written and no row of the player's is ever deleted.
//! - A row is current when it is a result (`lufs != -100`, not a claim placeholder of the
//!   player's workers), of the stamp's version or newer, and, where sonoprint wrote it, of the
//!   file as it is (a `stat` of those files at the start of every run).
//! - sonoprint's bookkeeping (claims, failures, runs, file states) lives in `sonoprint_*`
//!   tables of the same file, so a result and its bookkeeping commit together;
//!   [`AuralisLibrary::forget`] drops them.
//! - WAL, a 10 s busy timeout and one short transaction per batch: the player's own writes
//!   only delay a run.

mod schema;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OpenFlags, Transaction, TransactionBehavior};
use sonoprint_core::{Analysis, ErrorClass};

use crate::error::Ctx;
use crate::sql::graph::{self, GraphTables};
use crate::sql::work::{self, shared_work, Layout, ResultWriter, SqlBackend};
use crate::sql::{self, expect_one, now_ms};
use crate::{
    hostname, AuralisCounts, Catalog, ClaimOptions, Job, Library, Result, RunnerId, Status,
    StoreError, TrackId,
};

use schema::PlayerSchema;

/// The player's database, opened for filling.
pub struct AuralisLibrary {
    conn: Connection,
    path: PathBuf,
    host: String,
    layout: Layout,
    writer: AuralisWriter,
}

/// The version the player's recovery plan and its client stamp.
pub const DEFAULT_STAMP: u32 = 1;

/// The files of current results are stat'ed in batches of this many per write transaction.
const REFRESH_BATCH: usize = 500;

impl AuralisLibrary {
    /// Opens the player's database at `path` to fill it with fingerprints of version `stamp`.
    /// The schema is checked first, reading only: a file that is not an Auralis library is
    /// refused with [`StoreError::NotAuralis`] naming what it lacks, and nothing is written.
    /// Then sonoprint's bookkeeping tables are created or updated.
    pub fn open(path: &Path, stamp: u32) -> Result<AuralisLibrary> {
        let player = check_existing(path)?;
        let mut conn = sql::connect(path, false)?;
        schema::migrate(&mut conn, path)?;
        Ok(AuralisLibrary {
            conn,
            path: path.to_path_buf(),
            host: hostname(),
            layout: layout(stamp),
            writer: AuralisWriter {
                stamp,
                upsert: sql::upsert_fingerprint_sql(
                    &[],
                    &player
                        .insert_defaults
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>(),
                ),
                player,
            },
        })
    }

    /// Removes sonoprint's bookkeeping tables from the player's database at `path`, leaving its
    /// own tables as they are (with the results written into them). Returns the tables
    /// dropped.
    pub fn forget(path: &Path) -> Result<Vec<String>> {
        check_existing(path)?;
        let mut conn = sql::connect(path, false)?;
        schema::drop_bookkeeping(&mut conn)
    }

    /// The version stamped on results and counted as current.
    pub fn stamp(&self) -> u32 {
        self.writer.stamp
    }

    fn player_counts(&self) -> Result<AuralisCounts> {
        let (current, placeholders, older) = sql::three_counts(&self.conn, "SELECT IFNULL(SUM(lufs != -100 AND fingerprint_version >= ?1), 0), IFNULL(SUM(lufs = -100), 0),
                 IFNULL(SUM(lufs != -100 AND fingerprint_version < ?1), 0)
                 FROM track_fingerprints",
                [self.writer.stamp], "count the player's fingerprints")?;
        Ok(AuralisCounts {
            version: self.writer.stamp,
            current,
            placeholders,
            older_versions: older,
        })
    }
}

/// Checks the file exists and has the player's schema, on a read-only connection.
fn check_existing(path: &Path) -> Result<PlayerSchema> {
    if !path.is_file() {
        return Err(StoreError::NoDatabase(path.to_path_buf()));
    }
    let ro = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx("open the player's database")?;
    ro.busy_timeout(sql::BUSY_TIMEOUT)
        .ctx("set the busy timeout")?;
    schema::check(&ro, path)
}

/// The shared work SQL over the player's tables: a row is current when it is a result of the
/// stamp's version or newer and, where sonoprint wrote it (`r` of that version), of the file as
/// sonoprint last saw it (`sf`).
fn layout(stamp: u32) -> Layout {
    Layout {
        claims: "sonoprint_claims",
        runs: "sonoprint_runs",
        from: "tracks t LEFT JOIN track_fingerprints f ON f.track_id = t.id \
               LEFT JOIN sonoprint_results r ON r.track_id = t.id \
               LEFT JOIN sonoprint_files sf ON sf.track_id = t.id \
               LEFT JOIN sonoprint_failures fl ON fl.track_id = t.id",
        eligible: "1",
        current_fp: "IFNULL(f.track_id IS NOT NULL AND f.lufs != -100 \
             AND f.fingerprint_version >= :ver \
             AND (r.track_id IS NULL OR r.version != f.fingerprint_version \
                  OR (r.filesize IS sf.filesize AND r.mtime_ns IS sf.mtime_ns)) \
             AND (:full = 0 OR (r.mode = 'full' AND r.version = f.fingerprint_version)), 0)",
        current_failure: "IFNULL(fl.track_id IS NOT NULL AND fl.filesize IS sf.filesize \
             AND fl.mtime_ns IS sf.mtime_ns, 0)",
        file_cols: "sf.filesize, sf.mtime_ns",
        provenance_cols: "CASE WHEN r.version = f.fingerprint_version THEN r.mode END, \
             CASE WHEN r.version = f.fingerprint_version THEN r.filesize END, \
             CASE WHEN r.version = f.fingerprint_version THEN r.mtime_ns END",
        state_col: "'present'",
        version: stamp,
        graph: GraphTables {
            state: "sonoprint_graph_model",
            nodes: "sonoprint_graph_nodes",
        },
    }
}

/// The file at `path` as `stat` sees it now, if it is there.
fn stat(path: &Path) -> Option<(u64, i64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), crate::mtime_ns(&m)))
}

impl SqlBackend for AuralisLibrary {
    fn parts(&mut self) -> (&mut Connection, &Layout, &dyn ResultWriter, &str) {
        (&mut self.conn, &self.layout, &self.writer, &self.host)
    }

    fn parts_ref(&self) -> (&Connection, &Layout, &str) {
        (&self.conn, &self.layout, &self.host)
    }
}

impl Library for AuralisLibrary {
    shared_work!();
    fn location(&self) -> &Path {
        &self.path
    }

    fn catalog(&mut self) -> Option<&mut dyn Catalog> {
        None
    }

    /// Stats the file of every track sonoprint has a result or a failure for, and records the
    /// changed ones, so that they are computed again. A file that is gone keeps its state: a
    /// vanished file is not a changed one (its fingerprint is kept, as the player keeps the
    /// track).
    fn prepare_run(&mut self) -> Result<u64> {
        let known = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT t.id, t.filepath, sf.filesize, sf.mtime_ns FROM tracks t
                     JOIN sonoprint_files sf ON sf.track_id = t.id ORDER BY t.id",
                )
                .ctx("list the files to check")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        TrackId(r.get(0)?),
                        PathBuf::from(r.get::<_, String>(1)?),
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .ctx("list the files to check")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("list the files to check")?;
            rows
        };
        // The stats happen outside any transaction: the player is never kept waiting on a disk.
        let changed: Vec<(TrackId, u64, i64)> = known
            .into_iter()
            .filter_map(|(id, path, size, mtime)| {
                let (s, m) = stat(&path)?;
                (size != Some(s as i64) || mtime != Some(m)).then_some((id, s, m))
            })
            .collect();
        for batch in changed.chunks(REFRESH_BATCH) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("begin recording changed files")?;
            for (id, size, mtime) in batch {
                expect_one(
                    tx.prepare_cached(
                        "UPDATE sonoprint_files SET filesize = ?1, mtime_ns = ?2, checked_at = ?3
                         WHERE track_id = ?4",
                    )
                    .ctx_track("record a changed file", *id)?
                    .execute(params![*size as i64, mtime, now_ms(), id.0]),
                    "record a changed file",
                    *id,
                )?;
            }
            tx.commit().ctx("commit changed files")?;
        }
        Ok(changed.len() as u64)
    }

    /// Claims as the own library does, then reads each claimed file's size and mtime: the
    /// result is stored against the file as it was when its analysis started.
    fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>> {
        let mut jobs = work::claim(
            &mut self.conn,
            &self.layout,
            &self.host,
            runner,
            n,
            lease,
            opts,
        )?;
        for job in &mut jobs {
            // A file that cannot be stat'ed fails in the worker with a clear `io` error.
            let (size, mtime) = stat(&job.path).unwrap_or((0, 0));
            job.filesize = size;
            job.mtime_ns = mtime;
        }
        Ok(jobs)
    }

    fn status(&self) -> Result<Status> {
        let tracks: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM tracks", [], |r| r.get(0))
            .ctx("count tracks")?;
        let w = work::work_counts(&self.conn, &self.layout)?;
        Ok(Status {
            tracks: tracks as u64,
            present: tracks as u64,
            missing: 0,
            fingerprinted_current: w.current,
            stale: w.stale,
            pending: w.pending,
            failed_by_class: w.failed_by_class,
            claimed: w.claimed,
            db_path: self.path.clone(),
            db_size_bytes: sql::db_size(&self.path),
            last_run: self.last_run()?,
            runners: self.runners()?,
            auralis: Some(self.player_counts()?),
        })
    }

    /// Into the player's own `similarity_graph`, after checking it has the player's columns.
    fn write_graph(&mut self, update: &crate::GraphUpdate<'_>) -> Result<crate::GraphCounts> {
        schema::check_graph(&self.conn, &self.path)?;
        graph::write(&mut self.conn, &self.layout.graph, update)
    }

    /// The folders that hold the player's tracks, without those inside another one.
    fn roots(&self) -> Result<Vec<PathBuf>> {
        let mut stmt = self
            .conn
            .prepare("SELECT filepath FROM tracks")
            .ctx("list the tracks' folders")?;
        let folders: BTreeSet<PathBuf> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .ctx("list the tracks' folders")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list the tracks' folders")?
            .into_iter()
            .filter_map(|p| Path::new(&p).parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        // In sorted order a folder comes right after its ancestors' subtrees begin, so keeping
        // one whose nearest kept ancestor does not contain it leaves the outermost ones.
        let mut roots: Vec<PathBuf> = Vec::new();
        for f in folders {
            if !roots.last().is_some_and(|r| f.starts_with(r)) {
                roots.push(f);
            }
        }
        Ok(roots)
    }
}

/// Writes results the player's way, plus sonoprint's bookkeeping in the same transaction.
struct AuralisWriter {
    stamp: u32,
    player: PlayerSchema,
    /// The fingerprint upsert: the dimensions and the version, plus, for a new row only, the
    /// neutral value of any player column that is NOT NULL without a default (an existing row
    /// keeps its own).
    upsert: String,
}

impl AuralisWriter {
    /// Sets the player's status columns that exist; `error` is `None` on success.
    fn set_status(&self, tx: &Transaction<'_>, id: TrackId, error: Option<&str>) -> Result<()> {
        let p = &self.player;
        let mut sets: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if p.status {
            sets.push("fingerprint_status = ?");
            values.push(Value::Text(
                if error.is_none() {
                    "completed"
                } else {
                    "failed"
                }
                .into(),
            ));
        }
        if p.computed_at && error.is_none() {
            sets.push("fingerprint_computed_at = CURRENT_TIMESTAMP");
        }
        if p.error_message {
            sets.push("fingerprint_error_message = ?");
            values.push(error.map_or(Value::Null, |e| Value::Text(e.to_string())));
        }
        if sets.is_empty() {
            return Ok(());
        }
        values.push(Value::Integer(id.0));
        expect_one(
            tx.prepare_cached(&format!(
                "UPDATE tracks SET {} WHERE id = ?",
                sets.join(", ")
            ))
            .ctx_track("set the player's fingerprint status", id)?
            .execute(rusqlite::params_from_iter(values)),
            "set the player's fingerprint status",
            id,
        )
    }

    /// Records the file as seen for this result.
    fn set_file(tx: &Transaction<'_>, job: &Job) -> Result<()> {
        expect_one(
            tx.prepare_cached(
                "INSERT INTO sonoprint_files (track_id, filesize, mtime_ns, checked_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(track_id) DO UPDATE SET filesize = excluded.filesize,
                   mtime_ns = excluded.mtime_ns, checked_at = excluded.checked_at",
            )
            .ctx_track("record the file", job.track_id)?
            .execute(params![
                job.track_id.0,
                job.filesize as i64,
                job.mtime_ns,
                now_ms()
            ]),
            "record the file",
            job.track_id,
        )
    }
}

impl ResultWriter for AuralisWriter {
    fn write_done(
        &self,
        tx: &Transaction<'_>,
        job: &Job,
        analysis: &Analysis,
        computed_ms: u64,
    ) -> Result<()> {
        let id = job.track_id;
        let mut values: Vec<Value> = Vec::with_capacity(30);
        values.push(Value::Integer(id.0));
        values.extend(analysis.fingerprint.to_array().map(Value::Real));
        values.push(Value::Integer(self.stamp.into()));
        values.extend(self.player.insert_defaults.iter().map(|(_, v)| v.clone()));
        expect_one(
            tx.prepare_cached(&self.upsert)
                .ctx_track("write a fingerprint", id)?
                .execute(rusqlite::params_from_iter(values)),
            "write a fingerprint",
            id,
        )?;
        let m = &analysis.metadata;
        expect_one(
            tx.prepare_cached(
                "INSERT INTO sonoprint_results (track_id, version, filesize, mtime_ns, mode,
                   decoder, analyzed_sec, computed_ms, duration_sec, sample_rate, channels,
                   format, written_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(track_id) DO UPDATE SET version = excluded.version,
                   filesize = excluded.filesize, mtime_ns = excluded.mtime_ns,
                   mode = excluded.mode, decoder = excluded.decoder,
                   analyzed_sec = excluded.analyzed_sec, computed_ms = excluded.computed_ms,
                   duration_sec = excluded.duration_sec, sample_rate = excluded.sample_rate,
                   channels = excluded.channels, format = excluded.format,
                   written_at = excluded.written_at",
            )
            .ctx_track("record how a fingerprint was made", id)?
            .execute(params![
                id.0,
                self.stamp,
                job.filesize as i64,
                job.mtime_ns,
                m.mode.as_str(),
                m.decoder,
                m.analyzed_sec,
                computed_ms as i64,
                m.duration_sec,
                m.sample_rate,
                m.channels,
                m.format,
                now_ms()
            ]),
            "record how a fingerprint was made",
            id,
        )?;
        Self::set_file(tx, job)?;
        tx.prepare_cached("DELETE FROM sonoprint_failures WHERE track_id = ?1")
            .ctx_track("delete a failure", id)?
            .execute([id.0])
            .ctx_track("delete a failure", id)?;
        self.set_status(tx, id, None)
    }

    fn write_failed(
        &self,
        tx: &Transaction<'_>,
        job: &Job,
        class: ErrorClass,
        message: &str,
        decoders: &[String],
        now: i64,
    ) -> Result<()> {
        work::upsert_failure(tx, "sonoprint_failures", job, class, message, decoders, now)?;
        Self::set_file(tx, job)?;
        self.set_status(tx, job.track_id, Some(&format!("{class}: {message}")))
    }
}
