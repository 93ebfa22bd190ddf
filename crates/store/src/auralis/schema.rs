//! What sonoprint needs of the player's schema, checked before anything is written, and the
//! bookkeeping tables it adds (all named `sonoprint_*`, so that `forget` can remove them).

use std::collections::HashSet;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
use sonoprint_core::DIMENSIONS;

use crate::error::Ctx;
use crate::{Result, StoreError};

/// The prefix of every table sonoprint adds to the player's database.
pub(crate) const PREFIX: &str = "sonoprint_";

/// `MIGRATIONS[i]` takes the bookkeeping from version i to i + 1 (kept in `sonoprint_meta`,
/// never in `PRAGMA user_version`, which belongs to the player).
const MIGRATIONS: &[&str] = &[V1, V2];

/// The bookkeeping version this build writes.
pub(crate) const BOOKKEEPING_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. No foreign key points into the player's tables: sonoprint's rows must never
/// stand in the way of the player's own schema changes, and every query joins from `tracks`,
/// so a row of a deleted track is simply never read.
const V1: &str = r#"
CREATE TABLE sonoprint_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The file of a track as sonoprint last saw it (when it analysed it, or at a run's start).
CREATE TABLE sonoprint_files (
    track_id INTEGER PRIMARY KEY,
    filesize INTEGER,
    mtime_ns INTEGER,
    checked_at INTEGER NOT NULL
);

-- How the fingerprint row that sonoprint wrote was computed, and from which file.
CREATE TABLE sonoprint_results (
    track_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    filesize INTEGER,
    mtime_ns INTEGER,
    mode TEXT NOT NULL,
    decoder TEXT,
    analyzed_sec REAL,
    computed_ms INTEGER,
    duration_sec REAL,
    sample_rate INTEGER,
    channels INTEGER,
    format TEXT,
    written_at INTEGER NOT NULL
);

CREATE TABLE sonoprint_failures (
    track_id INTEGER PRIMARY KEY,
    class TEXT NOT NULL,
    message TEXT NOT NULL,
    decoders TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1,
    filesize INTEGER,
    mtime_ns INTEGER,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL
);
CREATE INDEX sonoprint_failures_class ON sonoprint_failures(class);

CREATE TABLE sonoprint_claims (
    track_id INTEGER PRIMARY KEY,
    runner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sonoprint_claims_runner ON sonoprint_claims(runner);

-- No AUTOINCREMENT: it would add a row to the player's sqlite_sequence.
CREATE TABLE sonoprint_runs (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    runner TEXT NOT NULL,
    mode TEXT NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    wall_sec REAL,
    cpu_sec REAL,
    status TEXT NOT NULL
);
"#;

/// Version 2: what the similarity graph written into the player's `similarity_graph` was built
/// from (`sonoprint graph`).
const V2: &str = r#"
CREATE TABLE sonoprint_graph_model (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    model TEXT NOT NULL,
    model_id TEXT NOT NULL,
    k INTEGER NOT NULL,
    fitted_on INTEGER NOT NULL,
    built_at INTEGER NOT NULL
);

CREATE TABLE sonoprint_graph_nodes (
    track_id INTEGER PRIMARY KEY,
    digest INTEGER NOT NULL
);
"#;

/// Checks the player's `similarity_graph` has the columns `graph` writes, reading only.
pub(crate) fn check_graph(conn: &Connection, path: &Path) -> Result<()> {
    let cols = columns(conn, "similarity_graph")?;
    let missing: Vec<String> = if cols.is_empty() {
        vec!["table similarity_graph".to_string()]
    } else {
        [
            "track_id",
            "similar_track_id",
            "distance",
            "similarity_score",
            "rank",
        ]
        .iter()
        .filter(|n| !cols.iter().any(|c| c.name == **n))
        .map(|n| format!("column similarity_graph.{n}"))
        .collect()
    };
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotAuralis {
            path: path.to_path_buf(),
            missing,
        })
    }
}

/// What the checks found out about the player's database.
#[derive(Debug, Clone)]
pub(crate) struct PlayerSchema {
    /// Which of `fingerprint_status`, `fingerprint_computed_at`, `fingerprint_error_message`
    /// `tracks` has (migration 6 adds them).
    pub status: bool,
    pub computed_at: bool,
    pub error_message: bool,
    /// Columns of `track_fingerprints` that sonoprint does not write but that are NOT NULL with
    /// no default (a schema made by hand or by an ORM): a new row needs a value for them, the
    /// neutral one of their type; an existing row keeps its own.
    pub insert_defaults: Vec<(String, Value)>,
}

struct Column {
    name: String,
    decl_type: String,
    not_null: bool,
    has_default: bool,
    pk: bool,
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<Column>> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .ctx("read the player's schema")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Column {
                name: r.get(1)?,
                decl_type: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                not_null: r.get(3)?,
                has_default: r.get::<_, Option<String>>(4)?.is_some(),
                pk: r.get::<_, i64>(5)? > 0,
            })
        })
        .ctx("read the player's schema")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx("read the player's schema")?;
    Ok(rows)
}

/// Whether `table` has a UNIQUE index (or primary key) on exactly `column`: what `ON
/// CONFLICT(column)` needs.
fn unique_on(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA index_list({table})"))
        .ctx("read the player's indexes")?;
    let indexes = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))
        .ctx("read the player's indexes")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx("read the player's indexes")?;
    for (name, unique) in indexes {
        if !unique {
            continue;
        }
        let mut info = conn
            .prepare("SELECT name FROM pragma_index_info(?1)")
            .ctx("read the player's indexes")?;
        let cols = info
            .query_map([&name], |r| r.get::<_, Option<String>>(0))
            .ctx("read the player's indexes")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("read the player's indexes")?;
        if cols.len() == 1 && cols[0].as_deref() == Some(column) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Checks that `conn` is an Auralis library sonoprint can fill: `tracks (id, filepath)` and a
/// `track_fingerprints` with `track_id` (unique), the 25 dimensions, `fingerprint_version` and
/// `updated_at`. Reads only. The error lists everything that is missing.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<PlayerSchema> {
    let tables: HashSet<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| not_sqlite(path, e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| not_sqlite(path, e))?
            .collect::<rusqlite::Result<HashSet<_>>>()
            .map_err(|e| not_sqlite(path, e))?;
        names
    };
    let mut missing = Vec::new();
    let mut status = (false, false, false);
    if tables.contains("tracks") {
        let cols = columns(conn, "tracks")?;
        let has = |n: &str| cols.iter().any(|c| c.name == n);
        for need in ["id", "filepath"] {
            if !has(need) {
                missing.push(format!("column tracks.{need}"));
            }
        }
        status = (
            has("fingerprint_status"),
            has("fingerprint_computed_at"),
            has("fingerprint_error_message"),
        );
    } else {
        missing.push("table tracks".to_string());
    }
    let mut insert_defaults = Vec::new();
    if tables.contains("track_fingerprints") {
        let cols = columns(conn, "track_fingerprints")?;
        let written: HashSet<&str> = DIMENSIONS
            .iter()
            .map(|d| d.name)
            .chain(["track_id", "fingerprint_version", "updated_at"])
            .collect();
        for need in &written {
            if !cols.iter().any(|c| c.name == *need) {
                missing.push(format!("column track_fingerprints.{need}"));
            }
        }
        if cols.iter().any(|c| c.name == "track_id")
            && !unique_on(conn, "track_fingerprints", "track_id")?
        {
            missing.push("a UNIQUE constraint on track_fingerprints.track_id".to_string());
        }
        for c in &cols {
            if c.not_null && !c.has_default && !c.pk && !written.contains(c.name.as_str()) {
                insert_defaults.push((c.name.clone(), neutral(&c.decl_type)));
            }
        }
    } else {
        missing.push("table track_fingerprints".to_string());
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(StoreError::NotAuralis {
            path: path.to_path_buf(),
            missing,
        });
    }
    Ok(PlayerSchema {
        status: status.0,
        computed_at: status.1,
        error_message: status.2,
        insert_defaults,
    })
}

fn not_sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::NotAuralis {
        path: path.to_path_buf(),
        missing: vec![format!("a readable SQLite database ({e})")],
    }
}

/// The neutral value of a declared type, by SQLite's affinity rules.
fn neutral(decl: &str) -> Value {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") || d.contains("BOOL") {
        Value::Integer(0)
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Value::Text(String::new())
    } else if d.contains("BLOB") || d.is_empty() {
        Value::Blob(Vec::new())
    } else {
        Value::Real(0.0)
    }
}

/// Creates or updates the bookkeeping tables, in one transaction.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx("begin the bookkeeping migration")?;
    let has_meta: bool = tx
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sonoprint_meta'",
            [],
            |r| r.get(0),
        )
        .ctx("read the bookkeeping version")?;
    let found: i64 = if has_meta {
        let v: Option<String> = tx
            .query_row(
                "SELECT value FROM sonoprint_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .ctx("read the bookkeeping version")?;
        match v.as_deref().map(str::parse::<i64>) {
            Some(Ok(v)) if v >= 0 => v,
            other => {
                return Err(StoreError::Invalid(format!(
                    "sonoprint_meta.schema_version is {other:?}"
                )))
            }
        }
    } else {
        0
    };
    if found > BOOKKEEPING_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: BOOKKEEPING_VERSION,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)
            .ctx("create sonoprint's bookkeeping tables")?;
    }
    if found < BOOKKEEPING_VERSION {
        tx.execute(
            "INSERT INTO sonoprint_meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [BOOKKEEPING_VERSION.to_string()],
        )
        .ctx("write the bookkeeping version")?;
    }
    tx.commit().ctx("commit the bookkeeping migration")?;
    Ok(())
}

/// Drops every `sonoprint_*` table (their indexes go with them), in one transaction. Returns
/// their names.
pub(crate) fn drop_bookkeeping(conn: &mut Connection) -> Result<Vec<String>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx("begin removing sonoprint's tables")?;
    let names = {
        let mut stmt = tx
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?1) = ?2
                 ORDER BY name",
            )
            .ctx("list sonoprint's tables")?;
        let names = stmt
            .query_map(rusqlite::params![PREFIX.len() as i64, PREFIX], |r| {
                r.get::<_, String>(0)
            })
            .ctx("list sonoprint's tables")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("list sonoprint's tables")?;
        names
    };
    for name in &names {
        tx.execute_batch(&format!("DROP TABLE \"{name}\""))
            .ctx("drop one of sonoprint's tables")?;
    }
    tx.commit().ctx("commit removing sonoprint's tables")?;
    Ok(names)
}
