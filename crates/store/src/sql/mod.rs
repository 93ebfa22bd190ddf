//! What both SQLite backends share: the connection settings, the fingerprint upsert built from
//! the one list of dimensions, and small checked-statement helpers.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sonoprint_core::{Fingerprint, Mode, DIMENSIONS};

use crate::error::Ctx;
use crate::{Result, StoreError, TrackId};

pub(crate) mod graph;
pub(crate) mod work;

/// How long a connection waits for another one's write lock before giving up. The Auralis
/// player's own tools use 10 s; a run that meets a longer write waits again on the next batch.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `path` with WAL, foreign keys, `synchronous=NORMAL` and the busy timeout. With
/// `create` false a missing file is an error instead of a new empty database.
pub(crate) fn connect(path: &Path, create: bool) -> Result<Connection> {
    let flags = if create {
        OpenFlags::default()
    } else {
        OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE
    };
    let conn = Connection::open_with_flags(path, flags).ctx("open the database")?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .ctx("set the busy timeout")?;
    // WAL: readers (status, the server, the player) never block the runner's writes, and a
    // crash loses at most the transaction in flight.
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
    Ok(conn)
}

/// The fingerprint upsert: `track_id`, the dimensions, `fingerprint_version`, then `extra`
/// columns, then `insert_only` columns, as `?1..?N`; on conflict every one of them but
/// `track_id` and the `insert_only` ones is updated, with `updated_at`. Never `INSERT OR
/// REPLACE`, which deletes the row and with it the columns that belong to someone else.
pub(crate) fn upsert_fingerprint_sql(extra: &[&str], insert_only: &[&str]) -> String {
    let mut cols: Vec<&str> = vec!["track_id"];
    cols.extend(DIMENSIONS.iter().map(|d| d.name));
    cols.push("fingerprint_version");
    cols.extend(extra);
    let updated = cols.len();
    cols.extend(insert_only);
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = cols[1..updated]
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
}

/// Every row of `sql` mapped by `f`, with the statement, the query and the mapping failing
/// under one description of what was being read (`op`).
pub(crate) fn query_vec<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    op: &'static str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    conn.prepare_cached(sql)
        .ctx(op)?
        .query_map(params, f)
        .ctx(op)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx(op)
}

/// `prefix.sub_bass_pct, prefix.bass_pct, ...`: the dimension columns for a SELECT.
pub(crate) fn dimension_columns(prefix: &str) -> String {
    DIMENSIONS
        .iter()
        .map(|d| format!("{prefix}.{}", d.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the dimensions from `first` on, in the order of [`dimension_columns`].
pub(crate) fn read_fingerprint(
    r: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Fingerprint> {
    let mut values = [0.0; sonoprint_core::DIMENSION_COUNT];
    for (i, v) in values.iter_mut().enumerate() {
        *v = r.get(first + i)?;
    }
    Ok(Fingerprint::from_array(values))
}

/// Three counts from one row (`SELECT COUNT(*), SUM(...), SUM(...)`), as `u64`.
pub(crate) fn three_counts(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    op: &'static str,
) -> Result<(u64, u64, u64)> {
    conn.query_row(sql, params, |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, i64>(2)? as u64,
        ))
    })
    .ctx(op)
}

/// A statement that must change exactly one row.
pub(crate) fn expect_one(
    changed: rusqlite::Result<usize>,
    op: &'static str,
    track: TrackId,
) -> Result<()> {
    match changed.ctx_track(op, track)? {
        1 => Ok(()),
        _ => Err(StoreError::NoRow { op, track }),
    }
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode> {
    match s {
        "excerpt" => Ok(Mode::Excerpt),
        "full" => Ok(Mode::Full),
        other => Err(StoreError::Invalid(format!("mode {other:?}"))),
    }
}

pub(crate) fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| StoreError::NonUtf8Path(p.to_path_buf()))
}

/// The `[lo, hi)` range of paths strictly under folder `root`: `root/` up to `root0` ('0' is the
/// byte after '/'), which SQLite answers from the `filepath` index.
pub(crate) fn prefix_range(root: &str) -> (String, String) {
    let base = root.trim_end_matches('/');
    (format!("{base}/"), format!("{base}0"))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The size of the database file plus its write-ahead log.
pub(crate) fn db_size(path: &Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    total
}

/// The claims of runners on this host whose process is gone: deleted, and their runs marked
/// died, inside the caller's transaction. `claims` and `runs` name the tables of the backend.
pub(crate) fn drop_dead_runners(
    tx: &rusqlite::Transaction<'_>,
    host: &str,
    me: &str,
    claims: &str,
    runs: &str,
) -> Result<()> {
    let local = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT DISTINCT runner, pid FROM {claims} WHERE host = ?1"
            ))
            .ctx("list this host's claims")?;
        let rows = stmt
            .query_map([host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .ctx("list this host's claims")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list this host's claims")?;
        rows
    };
    for (other, pid) in local {
        if other != me && !u32::try_from(pid).is_ok_and(crate::pid_alive) {
            tx.execute(&format!("DELETE FROM {claims} WHERE runner = ?1"), [&other])
                .ctx("drop a dead runner's claims")?;
            tx.execute(
                &format!(
                    "UPDATE {runs} SET status = 'died', finished_at = ?1
                     WHERE runner = ?2 AND status = 'running'"
                ),
                rusqlite::params![now_ms(), &other],
            )
            .ctx("mark a dead runner's run died")?;
        }
    }
    Ok(())
}
