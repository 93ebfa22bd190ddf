//! The work of `run` and the queries of `status`, written once for both SQLite layouts (the
//! own database and the player's): claims, results, runs, failures, tracks. What differs
//! between the layouts (table names, what "current" means, how a result row is written) comes
//! from a [`Layout`] and a [`ResultWriter`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::TransactionBehavior;
use rusqlite::{named_params, params, Connection, OptionalExtension, Transaction};
use sonoprint_core::{Analysis, ErrorClass, Mode};

use super::read_fingerprint;
use super::{dimension_columns, drop_dead_runners, expect_one, now_ms, parse_mode, path_str};
use crate::error::Ctx;
use crate::{
    pid_alive, ClaimOptions, FailureRow, Job, Outcome, Page, RecordCounts, Result, RunId, RunInfo,
    RunStatus, RunSummary, RunnerId, StoreError, StoredFingerprint, TrackFilter, TrackId, TrackRow,
    TrackState,
};

/// The SQL that differs between the layouts. Every fragment is written against the aliases
/// `t` (the track), `f` (its `track_fingerprints` row), `fl` (its failure) and whatever else
/// `from` joins, and the named parameters `:ver` (the current version) and `:full` (full mode
/// asked).
pub(crate) struct Layout {
    pub claims: &'static str,
    pub runs: &'static str,
    /// `tracks t LEFT JOIN ...`: every join the fragments below need.
    pub from: &'static str,
    /// The tracks that are work at all (`t.state = 'present'`, or `1`).
    pub eligible: &'static str,
    /// The track has a current fingerprint; never NULL.
    pub current_fp: &'static str,
    /// The failure `fl` is about the track's file as the library last saw it; never NULL.
    pub current_failure: &'static str,
    /// The file of the track as the library last saw it: two columns, size and mtime (NULL
    /// where unknown).
    pub file_cols: &'static str,
    /// Where the file the fingerprint came from is recorded: mode, size, mtime columns.
    pub provenance_cols: &'static str,
    /// The track's state column (`t.state`, or `'present'`).
    pub state_col: &'static str,
    /// The version that is current.
    pub version: u32,
    /// sonoprint's tables about the similarity graph.
    pub graph: super::graph::GraphTables,
}

/// A backend built on the shared work SQL: its connection, layout, writer and host, borrowed
/// apart so that the [`shared_work!`] methods can use them together.
pub(crate) trait SqlBackend {
    fn parts(&mut self) -> (&mut Connection, &Layout, &dyn ResultWriter, &str);
    fn parts_ref(&self) -> (&Connection, &Layout, &str);
}

/// The [`crate::Library`] methods that are the shared work SQL as it is, for a type that
/// implements [`SqlBackend`]; each backend writes the others (scan, status, roots, claim...).
macro_rules! shared_work {
    () => {
        fn pending(&self, opts: &$crate::ClaimOptions) -> $crate::Result<u64> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::work::pending(c, l, opts)
        }

        fn renew(
            &mut self,
            runner: &$crate::RunnerId,
            lease: std::time::Duration,
        ) -> $crate::Result<u64> {
            let (c, l, _, _) = self.parts();
            $crate::sql::work::renew(c, l, runner, lease)
        }

        fn release(&mut self, runner: &$crate::RunnerId) -> $crate::Result<u64> {
            let (c, l, _, _) = self.parts();
            $crate::sql::work::release(c, l, runner)
        }

        fn release_tracks(
            &mut self,
            runner: &$crate::RunnerId,
            tracks: &[$crate::TrackId],
        ) -> $crate::Result<u64> {
            let (c, l, _, _) = self.parts();
            $crate::sql::work::release_tracks(c, l, runner, tracks)
        }

        fn runners(&self) -> $crate::Result<Vec<$crate::RunnerInfo>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::work::runners(c, l)
        }

        fn record(
            &mut self,
            runner: &$crate::RunnerId,
            results: &[$crate::Outcome],
        ) -> $crate::Result<$crate::RecordCounts> {
            let (c, l, w, _) = self.parts();
            $crate::sql::work::record(c, l, w, runner, results)
        }

        fn store_outcome(&mut self, outcome: &$crate::Outcome) -> $crate::Result<()> {
            let (c, _, w, _) = self.parts();
            $crate::sql::work::store_outcome(c, w, outcome)
        }

        fn begin_run(
            &mut self,
            runner: &$crate::RunnerId,
            mode: sonoprint_core::Mode,
        ) -> $crate::Result<$crate::RunId> {
            let (c, l, _, _) = self.parts();
            $crate::sql::work::begin_run(c, l, runner, mode)
        }

        fn finish_run(
            &mut self,
            run: $crate::RunId,
            summary: &$crate::RunSummary,
        ) -> $crate::Result<()> {
            let (c, l, _, _) = self.parts();
            $crate::sql::work::finish_run(c, l, run, summary)
        }

        fn last_run(&self) -> $crate::Result<Option<$crate::RunInfo>> {
            let (c, l, host) = self.parts_ref();
            $crate::sql::work::last_run(c, l, host)
        }

        fn failures(&self, class: Option<&str>) -> $crate::Result<Vec<$crate::FailureRow>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::work::failures(c, l, class)
        }

        fn track(&self, id: $crate::TrackId) -> $crate::Result<Option<$crate::TrackRow>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::work::track(c, l, id)
        }

        fn tracks(
            &self,
            page: $crate::Page,
            filter: $crate::TrackFilter,
        ) -> $crate::Result<Vec<$crate::TrackRow>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::work::tracks(c, l, page, filter)
        }

        fn track_id_by_path(
            &self,
            path: &std::path::Path,
        ) -> $crate::Result<Option<$crate::TrackId>> {
            let (c, _, _) = self.parts_ref();
            $crate::sql::work::track_id_by_path(c, path)
        }

        fn fingerprints(
            &self,
        ) -> $crate::Result<Vec<($crate::TrackId, sonoprint_core::Fingerprint)>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::graph::fingerprints(c, l)
        }

        fn graph_state(&self) -> $crate::Result<Option<$crate::GraphState>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::graph::state(c, &l.graph)
        }

        fn graph_nodes(&self) -> $crate::Result<Vec<($crate::TrackId, i64)>> {
            let (c, l, _) = self.parts_ref();
            $crate::sql::graph::nodes(c, &l.graph)
        }

        fn graph_edges(
            &self,
            of: Option<$crate::TrackId>,
        ) -> $crate::Result<Vec<$crate::GraphEdge>> {
            let (c, _, _) = self.parts_ref();
            $crate::sql::graph::edges(c, of)
        }
    };
}
pub(crate) use shared_work;

/// How a backend writes one result row, inside the caller's transaction.
pub(crate) trait ResultWriter {
    /// Writes a fingerprint of `job`'s file (and whatever goes with it), removing its failure.
    fn write_done(
        &self,
        tx: &Transaction<'_>,
        job: &Job,
        analysis: &Analysis,
        computed_ms: u64,
    ) -> Result<()>;

    /// Writes (or counts one more attempt of) a failure of `job`'s file.
    fn write_failed(
        &self,
        tx: &Transaction<'_>,
        job: &Job,
        class: ErrorClass,
        message: &str,
        decoders: &[String],
        now: i64,
    ) -> Result<()>;
}

/// The failure upsert on a table with the `failures` columns.
pub(crate) fn upsert_failure(
    tx: &Transaction<'_>,
    table: &str,
    job: &Job,
    class: ErrorClass,
    message: &str,
    decoders: &[String],
    now: i64,
) -> Result<()> {
    let mut fail = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} (track_id, class, message, decoders, attempts,
               filesize, mtime_ns, first_at, last_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)
             ON CONFLICT(track_id) DO UPDATE SET class = excluded.class,
               message = excluded.message, decoders = excluded.decoders,
               attempts = attempts + 1, filesize = excluded.filesize,
               mtime_ns = excluded.mtime_ns, last_at = excluded.last_at"
        ))
        .ctx_track("write a failure", job.track_id)?;
    expect_one(
        fail.execute(params![
            job.track_id.0,
            class.as_str(),
            message,
            decoders.join(","),
            job.filesize as i64,
            job.mtime_ns,
            now
        ]),
        "write a failure",
        job.track_id,
    )
}

/// Refuses a fingerprint with a NaN or infinite dimension: the engine must have reported it
/// as a failure.
pub(crate) fn check_finite(job: &Job, analysis: &Analysis) -> Result<()> {
    match analysis.fingerprint.first_non_finite() {
        Some(dimension) => Err(StoreError::NonFinite {
            track: job.track_id,
            dimension,
        }),
        None => Ok(()),
    }
}

pub(crate) fn claim(
    conn: &mut Connection,
    l: &Layout,
    host: &str,
    runner: &RunnerId,
    n: usize,
    lease: Duration,
    opts: &ClaimOptions,
) -> Result<Vec<Job>> {
    // IMMEDIATE takes the write lock first, so two claimers cannot both read a track as free.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin a claim")?;
    let now = now_ms();
    drop_dead_runners(&tx, host, runner.as_str(), l.claims, l.runs)?;
    let picked = {
        let sql = format!(
            "SELECT t.id, t.filepath, {file} FROM {from}
             LEFT JOIN {claims} c ON c.track_id = t.id
             WHERE {eligible} AND NOT {cur} AND (:retry OR NOT {fail})
               AND (c.track_id IS NULL OR c.expires_at <= :now)
             ORDER BY t.id LIMIT :n",
            file = l.file_cols,
            from = l.from,
            claims = l.claims,
            eligible = l.eligible,
            cur = l.current_fp,
            fail = l.current_failure,
        );
        let mut stmt = tx.prepare_cached(&sql).ctx("pick pending tracks")?;
        let rows = stmt
            .query_map(
                named_params! {
                    ":ver": l.version,
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
            .prepare_cached(&format!(
                "INSERT INTO {} (track_id, runner, host, pid, claimed_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(track_id) DO UPDATE SET runner = excluded.runner,
                   host = excluded.host, pid = excluded.pid,
                   claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
                l.claims
            ))
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

pub(crate) fn pending(conn: &Connection, l: &Layout, opts: &ClaimOptions) -> Result<u64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {} AND NOT {} AND (:retry OR NOT {})",
        l.from, l.eligible, l.current_fp, l.current_failure
    );
    let n: i64 = conn
        .query_row(
            &sql,
            named_params! {
                ":ver": l.version,
                ":full": opts.mode == Mode::Full,
                ":retry": opts.retry_failed,
            },
            |r| r.get(0),
        )
        .ctx("count pending tracks")?;
    Ok(n as u64)
}

pub(crate) fn renew(
    conn: &Connection,
    l: &Layout,
    runner: &RunnerId,
    lease: Duration,
) -> Result<u64> {
    let expires = now_ms().saturating_add(lease.as_millis() as i64);
    let n = conn
        .execute(
            &format!("UPDATE {} SET expires_at = ?1 WHERE runner = ?2", l.claims),
            params![expires, runner.as_str()],
        )
        .ctx("renew claims")?;
    Ok(n as u64)
}

pub(crate) fn release(conn: &Connection, l: &Layout, runner: &RunnerId) -> Result<u64> {
    let n = conn
        .execute(
            &format!("DELETE FROM {} WHERE runner = ?1", l.claims),
            [runner.as_str()],
        )
        .ctx("release claims")?;
    Ok(n as u64)
}

pub(crate) fn release_tracks(
    conn: &mut Connection,
    l: &Layout,
    runner: &RunnerId,
    tracks: &[TrackId],
) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin releasing claims")?;
    let mut n = 0;
    {
        let mut del = tx
            .prepare_cached(&format!(
                "DELETE FROM {} WHERE runner = ?1 AND track_id = ?2",
                l.claims
            ))
            .ctx("release a claim")?;
        for t in tracks {
            n += del
                .execute(params![runner.as_str(), t.0])
                .ctx_track("release a claim", *t)? as u64;
        }
    }
    tx.commit().ctx("commit releasing claims")?;
    Ok(n)
}

/// The runners holding live claims, from the claims and the runs they started. A SQLite
/// library records a run's results at its end only, so `done` is unknown (`None`), and the
/// runner was last heard of at its latest claim.
pub(crate) fn runners(conn: &Connection, l: &Layout) -> Result<Vec<crate::RunnerInfo>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT c.runner, c.host, c.pid, COUNT(*), MIN(c.claimed_at),
               MAX(c.claimed_at), r.started_at
             FROM {claims} c LEFT JOIN {runs} r ON r.id =
               (SELECT MAX(id) FROM {runs} WHERE runner = c.runner)
             WHERE c.expires_at > ?1
             GROUP BY c.runner ORDER BY c.host, c.pid, c.runner",
            claims = l.claims,
            runs = l.runs
        ))
        .ctx("list the runners")?;
    let rows = stmt
        .query_map([now_ms()], |r| {
            let claimed_at: i64 = r.get(4)?;
            Ok(crate::RunnerInfo {
                runner: r.get(0)?,
                host: r.get(1)?,
                pid: r.get::<_, i64>(2)? as u32,
                claimed: r.get::<_, i64>(3)? as u64,
                done: None,
                started_at_ms: r.get::<_, Option<i64>>(6)?.unwrap_or(claimed_at),
                last_heartbeat_ms: r.get(5)?,
            })
        })
        .ctx("list the runners")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx("list the runners")?;
    Ok(rows)
}

/// Writes a batch of results whose claims `runner` still holds, in one transaction.
pub(crate) fn record(
    conn: &mut Connection,
    l: &Layout,
    w: &dyn ResultWriter,
    runner: &RunnerId,
    results: &[Outcome],
) -> Result<RecordCounts> {
    let mut counts = RecordCounts::default();
    let now = now_ms();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin writing results")?;
    for outcome in results {
        let job = outcome.job();
        let id = job.track_id;
        let held: Option<String> = tx
            .prepare_cached(&format!(
                "SELECT runner FROM {} WHERE track_id = ?1",
                l.claims
            ))
            .ctx_track("check a claim", id)?
            .query_row([id.0], |r| r.get(0))
            .optional()
            .ctx_track("check a claim", id)?;
        // A track the player deleted meanwhile has nothing to write to: like a claim taken
        // over, its result is dropped and counted, never an error that stops the run.
        let exists = tx
            .prepare_cached("SELECT 1 FROM tracks WHERE id = ?1")
            .ctx_track("check a track", id)?
            .exists([id.0])
            .ctx_track("check a track", id)?;
        if held.as_deref() != Some(runner.as_str()) || !exists {
            counts.stale += 1;
            continue;
        }
        write_outcome(&tx, w, outcome, now)?;
        match outcome {
            Outcome::Done { .. } => counts.done += 1,
            Outcome::Failed { .. } => counts.failed += 1,
        }
        expect_one(
            tx.prepare_cached(&format!(
                "DELETE FROM {} WHERE track_id = ?1 AND runner = ?2",
                l.claims
            ))
            .ctx_track("drop a claim", id)?
            .execute(params![id.0, runner.as_str()]),
            "drop a claim",
            id,
        )?;
    }
    tx.commit().ctx("commit results")?;
    Ok(counts)
}

/// Writes one result without a claim, in its own transaction.
pub(crate) fn store_outcome(
    conn: &mut Connection,
    w: &dyn ResultWriter,
    outcome: &Outcome,
) -> Result<()> {
    let id = outcome.job().track_id;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx_track("begin writing a result", id)?;
    write_outcome(&tx, w, outcome, now_ms())?;
    tx.commit().ctx_track("commit a result", id)
}

fn write_outcome(
    tx: &Transaction<'_>,
    w: &dyn ResultWriter,
    outcome: &Outcome,
    now: i64,
) -> Result<()> {
    match outcome {
        Outcome::Done {
            job,
            analysis,
            computed_ms,
        } => {
            check_finite(job, analysis)?;
            w.write_done(tx, job, analysis, *computed_ms)
        }
        Outcome::Failed {
            job,
            class,
            message,
            decoders,
        } => w.write_failed(tx, job, *class, message, decoders, now),
    }
}

// ---- runs -----------------------------------------------------------------------------------

pub(crate) fn begin_run(
    conn: &Connection,
    l: &Layout,
    runner: &RunnerId,
    mode: Mode,
) -> Result<RunId> {
    conn.execute(
        &format!(
            "INSERT INTO {} (started_at, host, pid, runner, mode, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            l.runs
        ),
        params![
            now_ms(),
            runner.host(),
            runner.pid(),
            runner.as_str(),
            mode.as_str()
        ],
    )
    .ctx("record the start of a run")?;
    Ok(RunId(conn.last_insert_rowid()))
}

pub(crate) fn finish_run(conn: &Connection, l: &Layout, run: RunId, s: &RunSummary) -> Result<()> {
    let finished = (s.status != RunStatus::Running).then(now_ms);
    let n = conn
        .execute(
            &format!(
                "UPDATE {} SET finished_at = ?1, completed = ?2, failed = ?3, skipped = ?4,
                 wall_sec = ?5, cpu_sec = ?6, status = ?7 WHERE id = ?8",
                l.runs
            ),
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

pub(crate) fn last_run(conn: &Connection, l: &Layout, host: &str) -> Result<Option<RunInfo>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT id, started_at, finished_at, host, pid, mode, completed, failed, skipped,
                 wall_sec, cpu_sec, status FROM {} ORDER BY id DESC LIMIT 1",
                l.runs
            ),
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
    let Some(((id, started, finished, run_host, pid, mode), (c, f, s, wall, cpu, status))) = row
    else {
        return Ok(None);
    };
    let mut status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Invalid(format!("run status {status:?}")))?;
    let pid = u32::try_from(pid).map_err(|_| StoreError::Invalid(format!("pid {pid}")))?;
    if status == RunStatus::Running && run_host == host && !pid_alive(pid) {
        status = RunStatus::Died;
    }
    Ok(Some(RunInfo {
        id: RunId(id),
        started_at_ms: started,
        finished_at_ms: finished,
        host: run_host,
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

// ---- queries --------------------------------------------------------------------------------

/// The fingerprint and failure figures of `status`.
pub(crate) struct WorkCounts {
    pub current: u64,
    pub stale: u64,
    pub pending: u64,
    pub failed_by_class: Vec<(String, u64)>,
    pub claimed: u64,
}

pub(crate) fn work_counts(conn: &Connection, l: &Layout) -> Result<WorkCounts> {
    let per_track = format!(
        "SELECT {cur} AS cur, f.track_id IS NOT NULL AS has_fp, {fail} AS failed,
         fl.class AS class FROM {from} WHERE {eligible}",
        cur = l.current_fp,
        fail = l.current_failure,
        from = l.from,
        eligible = l.eligible,
    );
    let args = named_params! { ":ver": l.version, ":full": false };
    let (current, stale, pending) = super::three_counts(
        conn,
        &format!(
            "SELECT IFNULL(SUM(cur), 0), IFNULL(SUM(has_fp AND NOT cur AND NOT failed), 0),
             IFNULL(SUM(NOT cur AND NOT failed), 0) FROM ({per_track})"
        ),
        args,
        "count fingerprints",
    )?;
    let failed_by_class = {
        let mut stmt = conn
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
    let claimed: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM {} WHERE expires_at > ?1", l.claims),
            [now_ms()],
            |r| r.get(0),
        )
        .ctx("count claims")?;
    Ok(WorkCounts {
        current,
        stale,
        pending,
        failed_by_class,
        claimed: claimed as u64,
    })
}

pub(crate) fn failures(
    conn: &Connection,
    l: &Layout,
    class: Option<&str>,
) -> Result<Vec<FailureRow>> {
    let sql = format!(
        "SELECT t.id, t.filepath, fl.class, fl.message, fl.decoders, fl.attempts,
         fl.first_at, fl.last_at FROM {from}
         WHERE fl.track_id IS NOT NULL AND {eligible} AND {fail} AND NOT {cur}
           AND (:class IS NULL OR fl.class = :class)
         ORDER BY fl.class, t.filepath",
        from = l.from,
        eligible = l.eligible,
        fail = l.current_failure,
        cur = l.current_fp,
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("list failures")?;
    let rows = stmt
        .query_map(
            named_params! { ":ver": l.version, ":full": false, ":class": class },
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

/// `SELECT` of a track row: its columns, the fingerprint's, and the current flag.
fn track_select(l: &Layout) -> String {
    format!(
        "SELECT t.id, t.title, t.filepath, t.duration, t.sample_rate, t.channels, t.format, \
         {file}, {state}, f.track_id IS NOT NULL, f.fingerprint_version, {prov}, {cur}, {dims} \
         FROM {from}",
        file = l.file_cols,
        state = l.state_col,
        prov = l.provenance_cols,
        cur = l.current_fp,
        dims = dimension_columns("f"),
        from = l.from,
    )
}

/// Reads a row of [`track_select`]. The inner `Result` carries values this build cannot read.
fn track_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TrackRow>> {
    let id = TrackId(r.get(0)?);
    let state: String = r.get(9)?;
    let state = match TrackState::parse(&state) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let fingerprint = if r.get::<_, bool>(10)? {
        let mode = match r.get::<_, Option<String>>(12)?.as_deref().map(parse_mode) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => return Ok(Err(e)),
        };
        Some(StoredFingerprint {
            fingerprint: read_fingerprint(r, 16)?,
            version: r.get(11)?,
            mode,
            filesize: r.get::<_, Option<i64>>(13)?.map(|s| s as u64),
            mtime_ns: r.get(14)?,
            current: r.get(15)?,
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

pub(crate) fn track(conn: &Connection, l: &Layout, id: TrackId) -> Result<Option<TrackRow>> {
    let sql = format!("{} WHERE t.id = :id", track_select(l));
    let mut stmt = conn.prepare_cached(&sql).ctx_track("read a track", id)?;
    let row = stmt
        .query_row(
            named_params! { ":ver": l.version, ":full": false, ":id": id.0 },
            track_row,
        )
        .optional()
        .ctx_track("read a track", id)?;
    row.transpose()
}

pub(crate) fn tracks(
    conn: &Connection,
    l: &Layout,
    page: Page,
    filter: TrackFilter,
) -> Result<Vec<TrackRow>> {
    let sql = format!(
        "{} WHERE t.id > :after AND (:state IS NULL OR {} = :state)
         AND (:fp IS NULL OR {} = :fp) ORDER BY t.id LIMIT :limit",
        track_select(l),
        l.state_col,
        l.current_fp
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("list tracks")?;
    let rows = stmt
        .query_map(
            named_params! {
                ":ver": l.version,
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

pub(crate) fn track_id_by_path(conn: &Connection, path: &Path) -> Result<Option<TrackId>> {
    conn.query_row(
        "SELECT id FROM tracks WHERE filepath = ?1",
        [path_str(path)?],
        |r| Ok(TrackId(r.get(0)?)),
    )
    .optional()
    .ctx("look up a track by path")
}
