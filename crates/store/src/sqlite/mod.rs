//! sonoprint's own library database: one SQLite file holding the tracks found by `scan`, the
//! fingerprints computed by `run`, the failures, the runners' claims and the runs' summaries.
//!
//! `tracks` and `track_fingerprints` keep the Auralis column names and types, so the player's
//! tools can read them; sonoprint's own columns are appended and nullable.

mod catalog;
mod schema;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use sonoprint_core::{Analysis, ErrorClass, FINGERPRINT_VERSION};

use crate::error::Ctx;
use crate::sql::graph::GraphTables;
use crate::sql::work::{self, shared_work, Layout, ResultWriter, SqlBackend};
use crate::sql::{self, expect_one};
use crate::{hostname, Catalog, ClaimOptions, Job, Library, Result, RunnerId, Status, StoreError};

pub use schema::SCHEMA_VERSION;

/// sonoprint's own library database.
pub struct SqliteLibrary {
    conn: Connection,
    path: PathBuf,
    host: String,
}

/// The own database's layout for the shared work SQL: a fingerprint is current when it is of
/// this version and of the file as the last scan saw it.
const LAYOUT: Layout = Layout {
    claims: "claims",
    runs: "runs",
    from: "tracks t LEFT JOIN track_fingerprints f ON f.track_id = t.id \
           LEFT JOIN failures fl ON fl.track_id = t.id",
    eligible: "t.state = 'present'",
    current_fp: "IFNULL(f.track_id IS NOT NULL AND f.fingerprint_version >= :ver \
         AND f.filesize = t.filesize AND f.mtime_ns = t.mtime_ns \
         AND (:full = 0 OR f.mode = 'full'), 0)",
    current_failure: "IFNULL(fl.track_id IS NOT NULL AND fl.filesize = t.filesize \
         AND fl.mtime_ns = t.mtime_ns, 0)",
    file_cols: "t.filesize, t.mtime_ns",
    provenance_cols: "f.mode, f.filesize, f.mtime_ns",
    state_col: "t.state",
    version: FINGERPRINT_VERSION,
    graph: GraphTables {
        state: "similarity_model",
        nodes: "similarity_nodes",
    },
};

impl SqliteLibrary {
    /// Opens (creating it and its folder if needed) the database at `path` and brings its schema
    /// up to date. Fails with [`StoreError::TooNew`] on a database of a newer sonoprint.
    pub fn open(path: &Path) -> Result<SqliteLibrary> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                op: "create the folder",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = sql::connect(path, true)?;
        migrate(&mut conn, path)?;
        Ok(SqliteLibrary {
            conn,
            path: path.to_path_buf(),
            host: hostname(),
        })
    }

    /// The underlying connection, for tests in this crate.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

impl SqlBackend for SqliteLibrary {
    fn parts(&mut self) -> (&mut Connection, &Layout, &dyn ResultWriter, &str) {
        (&mut self.conn, &LAYOUT, &OwnWriter, &self.host)
    }

    fn parts_ref(&self) -> (&Connection, &Layout, &str) {
        (&self.conn, &LAYOUT, &self.host)
    }
}

impl Library for SqliteLibrary {
    shared_work!();
    fn location(&self) -> &Path {
        &self.path
    }

    fn catalog(&mut self) -> Option<&mut dyn Catalog> {
        Some(self)
    }

    fn prepare_run(&mut self) -> Result<u64> {
        // `scan` keeps the files' size and mtime up to date.
        Ok(0)
    }

    fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>> {
        work::claim(&mut self.conn, &LAYOUT, &self.host, runner, n, lease, opts)
    }

    fn status(&self) -> Result<Status> {
        let (tracks, present, missing) = sql::three_counts(&self.conn, "SELECT COUNT(*), IFNULL(SUM(state = 'present'), 0), IFNULL(SUM(state = 'missing'), 0) FROM tracks",
                [], "count tracks")?;
        let w = work::work_counts(&self.conn, &LAYOUT)?;
        Ok(Status {
            tracks,
            present,
            missing,
            fingerprinted_current: w.current,
            stale: w.stale,
            pending: w.pending,
            failed_by_class: w.failed_by_class,
            claimed: w.claimed,
            db_path: self.path.clone(),
            db_size_bytes: sql::db_size(&self.path),
            last_run: self.last_run()?,
            runners: self.runners()?,
            auralis: None,
        })
    }

    fn write_graph(&mut self, update: &crate::GraphUpdate<'_>) -> Result<crate::GraphCounts> {
        sql::graph::write(&mut self.conn, &LAYOUT.graph, update)
    }

    fn roots(&self) -> Result<Vec<PathBuf>> {
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
}

/// Writes results the own way: the fingerprint with the file it came from and how it was
/// computed, the decoded metadata copied to the track.
struct OwnWriter;

impl ResultWriter for OwnWriter {
    fn write_done(
        &self,
        tx: &Transaction<'_>,
        job: &Job,
        analysis: &Analysis,
        computed_ms: u64,
    ) -> Result<()> {
        static UPSERT: OnceLock<String> = OnceLock::new();
        let upsert = UPSERT.get_or_init(|| {
            sql::upsert_fingerprint_sql(
                &[
                    "filesize",
                    "mtime_ns",
                    "mode",
                    "decoder",
                    "analyzed_sec",
                    "computed_ms",
                ],
                &[],
            )
        });
        let id = job.track_id;
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
        values.push(Value::Integer(computed_ms as i64));
        expect_one(
            tx.prepare_cached(upsert)
                .ctx_track("write a fingerprint", id)?
                .execute(rusqlite::params_from_iter(values)),
            "write a fingerprint",
            id,
        )?;
        expect_one(
            tx.prepare_cached(
                "UPDATE tracks SET duration = ?1, sample_rate = ?2, channels = ?3,
                 format = ?4, updated_at = CURRENT_TIMESTAMP WHERE id = ?5",
            )
            .ctx_track("update a track's metadata", id)?
            .execute(params![
                m.duration_sec,
                m.sample_rate,
                m.channels,
                m.format,
                id.0
            ]),
            "update a track's metadata",
            id,
        )?;
        tx.prepare_cached("DELETE FROM failures WHERE track_id = ?1")
            .ctx_track("delete a failure", id)?
            .execute([id.0])
            .ctx_track("delete a failure", id)?;
        Ok(())
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
        work::upsert_failure(tx, "failures", job, class, message, decoders, now)
    }
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
