//! `sonoprint --auralis DB`: filling an existing Auralis library database in place, through the
//! real binary, on databases built here from the schemas of `docs/auralis-db.md` (both kinds:
//! "migrated" and "ORM-created", with and without the migration-6 status columns of `tracks`),
//! with generated WAVs, missing and broken files, placeholder rows, rows of other versions,
//! player-owned column values and rows of other tables that reference `tracks`.
//!
//! As in `run.rs`, "written twice" is observed with a write log the tests add to the database:
//! triggers append one row per INSERT and per UPDATE of `track_fingerprints` (and per UPDATE of
//! `tracks`) to tables named `test_*`, inside the writing transaction, so a write rolled back by
//! a kill leaves no log row either. An upsert that hits an existing row logs one UPDATE.
//!
//! Everything the player owns is compared as whole-table dumps (every table, every row, every
//! column) before and after, minus exactly what sonoprint may write: the three status columns
//! of `tracks` and the result columns of `track_fingerprints` (the 25 dimensions,
//! `fingerprint_version`, `updated_at`) of the rows it computes.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::{json, Value};

mod common;
use common::{ok, start, wav, Rng, Server};

/// The 25 dimension columns of `track_fingerprints`, in the order of the player's DDL.
const DIMS: [&str; 25] = sonoprint_engine::Fingerprint::NAMES;

/// The three columns of `tracks` that sonoprint may write.
const STATUS_COLS: [&str; 3] = [
    "fingerprint_status",
    "fingerprint_computed_at",
    "fingerprint_error_message",
];

/// The player's database, as its migrations or its ORM created it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `fingerprint_version ... DEFAULT 1`, `UNIQUE` on `similarity_graph`, status columns.
    Migrated,
    /// No SQL default on `fingerprint_version`, `fingerprint_blob BLOB`, no `UNIQUE` on
    /// `similarity_graph`; `status`: whether `tracks` has the migration-6 columns.
    Orm { status: bool },
}

impl Kind {
    fn status(self) -> bool {
        matches!(self, Kind::Migrated | Kind::Orm { status: true })
    }

    fn orm(self) -> bool {
        matches!(self, Kind::Orm { .. })
    }
}

/// The schema of the player's database (no rows).
fn schema_sql(kind: Kind) -> String {
    let dims: String = DIMS
        .iter()
        .map(|d| format!("    {d} REAL NOT NULL,\n"))
        .collect();
    let version = if kind.orm() {
        "fingerprint_version INTEGER NOT NULL"
    } else {
        "fingerprint_version INTEGER NOT NULL DEFAULT 1"
    };
    let blob = if kind.orm() {
        ",\n    fingerprint_blob BLOB"
    } else {
        ""
    };
    let unique = if kind.orm() {
        ""
    } else {
        ",\n    UNIQUE (track_id, similar_track_id)"
    };
    let status = if kind.status() {
        // Added by migration 6, as ALTER TABLE does it.
        "ALTER TABLE tracks ADD COLUMN fingerprint_status TEXT DEFAULT 'pending';
         ALTER TABLE tracks ADD COLUMN fingerprint_computed_at DATETIME;
         ALTER TABLE tracks ADD COLUMN fingerprint_error_message TEXT;
         ALTER TABLE tracks ADD COLUMN fingerprint_vector TEXT;"
    } else {
        ""
    };
    format!(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DATETIME);
CREATE TABLE albums (id INTEGER PRIMARY KEY AUTOINCREMENT, title VARCHAR NOT NULL, year INTEGER);
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title VARCHAR NOT NULL,
    filepath VARCHAR NOT NULL UNIQUE,
    duration FLOAT,
    sample_rate INTEGER,
    bit_depth INTEGER,
    channels INTEGER,
    format VARCHAR,
    filesize INTEGER,
    album_id INTEGER REFERENCES albums(id),
    play_count INTEGER DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
{status}
CREATE TABLE playlists (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR NOT NULL);
CREATE TABLE playlist_tracks (
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, track_id)
);
CREATE TABLE play_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    played_at DATETIME NOT NULL
);
CREATE INDEX ix_play_history_track ON play_history(track_id);
CREATE TABLE track_fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
{dims}    {version},
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    is_reference INTEGER NOT NULL DEFAULT 0,
    reference_weight REAL NOT NULL DEFAULT 0.0{blob}
);
CREATE INDEX idx_fingerprints_track_id ON track_fingerprints(track_id);
CREATE INDEX idx_fingerprints_version ON track_fingerprints(fingerprint_version);
CREATE INDEX idx_fingerprints_composite ON track_fingerprints(lufs, crest_db, bass_pct, tempo_bpm);
CREATE INDEX ix_fingerprints_is_reference ON track_fingerprints(is_reference) WHERE is_reference = 1;
CREATE TABLE similarity_graph (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    similar_track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    distance REAL NOT NULL,
    similarity_score REAL NOT NULL,
    rank INTEGER NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP{unique}
);
CREATE INDEX idx_similarity_graph_track_id ON similarity_graph(track_id, rank);
CREATE INDEX idx_similarity_graph_similar_track_id ON similarity_graph(similar_track_id);
"
    )
}

/// A player's fingerprint row to put in before sonoprint runs.
struct Fp {
    version: i64,
    /// `None`: a placeholder row (all dimensions 0, `lufs = -100`).
    base: Option<f64>,
    is_reference: i64,
    weight: f64,
    blob: Option<Vec<u8>>,
    created_at: &'static str,
}

impl Fp {
    fn placeholder() -> Fp {
        Fp {
            version: 1,
            base: None,
            is_reference: 1,
            weight: 0.7,
            blob: Some((0u8..25).collect()),
            created_at: "2025-12-01 10:00:00",
        }
    }

    fn real(version: i64, base: f64) -> Fp {
        Fp {
            version,
            base: Some(base),
            is_reference: 1,
            weight: 0.7,
            blob: Some((100u8..125).collect()),
            created_at: "2025-11-20 09:30:00",
        }
    }
}

struct Lib {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    music: PathBuf,
    data: PathBuf,
    db: PathBuf,
    kind: Kind,
    /// Decodable files, each a track.
    good: Vec<PathBuf>,
    /// Tracks that cannot be fingerprinted, with the failure class expected: a missing file,
    /// text named `.flac`, a WAV cut inside its header.
    broken: Vec<(PathBuf, &'static str)>,
}

impl Lib {
    /// `n` WAVs of 1.5–3 s under music/ and music/sub/, the broken tracks, and the player's
    /// database with a track row for each, an album, a playlist of every track, play history
    /// and a few similarity rows; no fingerprint rows yet.
    fn new(kind: Kind, n: usize) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let music = root.join("music");
        fs::create_dir_all(music.join("sub")).unwrap();
        let mut good = Vec::new();
        for i in 0..n {
            let sub = if i % 3 == 2 { "sub" } else { "" };
            let p = music.join(sub).join(format!("tone-{i:03}.wav"));
            wav(&p, 1.5 + (i % 4) as f64 * 0.5, 110.0 + 37.0 * i as f64);
            good.push(p);
        }
        let text = music.join("text.flac");
        fs::write(&text, "this is not audio\n".repeat(50)).unwrap();
        let cut = music.join("sub/cut-header.wav");
        wav(&cut, 2.0, 440.0);
        let bytes = fs::read(&cut).unwrap();
        fs::write(&cut, &bytes[..30]).unwrap();
        let broken = vec![
            (music.join("gone.wav"), "io"),
            (text, "not_audio"),
            (cut, "truncated"),
        ];
        let lib = Lib {
            _tmp: tmp,
            data: root.join("data"),
            db: root.join("auralis_library.db"),
            root,
            music,
            kind,
            good,
            broken,
        };
        let c = Connection::open(&lib.db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA user_version = 17;",
        )
        .unwrap();
        c.execute_batch(&schema_sql(kind)).unwrap();
        c.execute_batch(
            "INSERT INTO schema_migrations VALUES (17, '2025-09-01 00:00:00');
             INSERT INTO albums (title, year) VALUES ('Tones', 2025);
             INSERT INTO playlists (name) VALUES ('everything');",
        )
        .unwrap();
        c.execute_batch("BEGIN").unwrap();
        let all: Vec<PathBuf> = lib
            .good
            .iter()
            .cloned()
            .chain(lib.broken.iter().map(|b| b.0.clone()))
            .collect();
        for (i, p) in all.iter().enumerate() {
            let size = fs::metadata(p).ok().map(|m| m.len() as i64);
            c.execute(
                "INSERT INTO tracks (title, filepath, duration, sample_rate, bit_depth, channels,
                   format, filesize, album_id, play_count, created_at, updated_at)
                 VALUES (?1, ?2, 2.0, 22050, 16, 1, 'wav', ?3, 1, ?4,
                   '2025-10-01 12:00:00', '2025-10-02 12:00:00')",
                rusqlite::params![
                    format!("Track {i}"),
                    p.to_str().unwrap(),
                    size,
                    i as i64 * 3
                ],
            )
            .unwrap();
            let id = c.last_insert_rowid();
            c.execute(
                "INSERT INTO playlist_tracks VALUES (1, ?1, ?2)",
                rusqlite::params![id, i as i64],
            )
            .unwrap();
            if i % 2 == 0 {
                c.execute(
                    "INSERT INTO play_history (track_id, played_at) VALUES (?1, '2025-11-11 11:11:11')",
                    [id],
                )
                .unwrap();
            }
        }
        c.execute_batch("COMMIT").unwrap();
        if kind.status() {
            c.execute_batch(
                "UPDATE tracks SET fingerprint_status = 'pending';
                 UPDATE tracks SET fingerprint_vector = '[0.5, 0.25]' WHERE id = 2;",
            )
            .unwrap();
        }
        c.execute_batch(
            "INSERT INTO similarity_graph (track_id, similar_track_id, distance, similarity_score,
               rank, created_at, updated_at)
             VALUES (1, 2, 0.25, 0.75, 1, '2025-12-02 00:00:00', '2025-12-02 00:00:00'),
                    (1, 3, 0.5, 0.5, 2, '2025-12-02 00:00:00', '2025-12-02 00:00:00'),
                    (2, 1, 0.25, 0.75, 1, '2025-12-02 00:00:00', '2025-12-02 00:00:00');",
        )
        .unwrap();
        lib
    }

    fn conn(&self) -> Connection {
        let c = Connection::open(&self.db).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    fn id(&self, p: &Path) -> i64 {
        self.conn()
            .query_row(
                "SELECT id FROM tracks WHERE filepath = ?1",
                [p.to_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Puts a row of the player's into `track_fingerprints`; returns its id.
    fn put_fp(&self, p: &Path, fp: &Fp) -> i64 {
        let track = self.id(p);
        let mut cols: Vec<String> = vec!["track_id".into()];
        let mut vals: Vec<Sql> = vec![Sql::Integer(track)];
        for (i, d) in DIMS.iter().enumerate() {
            cols.push((*d).into());
            vals.push(Sql::Real(match (fp.base, *d) {
                (None, "lufs") => -100.0,
                (None, _) => 0.0,
                (Some(_), "lufs") => -12.5,
                (Some(b), _) => b + i as f64 * 0.01,
            }));
        }
        for (c, v) in [
            ("fingerprint_version", Sql::Integer(fp.version)),
            ("created_at", Sql::Text(fp.created_at.into())),
            ("updated_at", Sql::Text(fp.created_at.into())),
            ("is_reference", Sql::Integer(fp.is_reference)),
            ("reference_weight", Sql::Real(fp.weight)),
        ] {
            cols.push(c.into());
            vals.push(v);
        }
        if self.kind.orm() {
            cols.push("fingerprint_blob".into());
            vals.push(fp.blob.clone().map_or(Sql::Null, Sql::Blob));
        }
        let marks: Vec<String> = (1..=vals.len()).map(|i| format!("?{i}")).collect();
        let c = self.conn();
        c.execute(
            &format!(
                "INSERT INTO track_fingerprints ({}) VALUES ({})",
                cols.join(", "),
                marks.join(", ")
            ),
            rusqlite::params_from_iter(vals),
        )
        .unwrap();
        c.last_insert_rowid()
    }

    /// Marks a track `completed` the way the player does for its own result.
    fn mark_completed_by_player(&self, p: &Path) {
        if self.kind.status() {
            self.conn()
                .execute(
                    "UPDATE tracks SET fingerprint_status = 'completed',
                       fingerprint_computed_at = '2025-12-10 08:00:00' WHERE filepath = ?1",
                    [p.to_str().unwrap()],
                )
                .unwrap();
        }
    }

    /// `sonoprint --data-dir DATA --auralis DB ARGS...`.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sonoprint"));
        c.arg("--data-dir")
            .arg(&self.data)
            .arg("--auralis")
            .arg(&self.db)
            .args(args)
            .env_remove("SONOPRINT_AURALIS")
            .env_remove("SONOPRINT_HOME")
            .env_remove("SONOPRINT_FFMPEG")
            .env_remove("SONOPRINT_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "--jobs", "2"];
        all.extend_from_slice(args);
        ok(self.out(&all))
    }

    fn status(&self, args: &[&str]) -> Value {
        let mut all = vec!["status", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(self.out(&all))).unwrap()
    }

    fn all_tracks(&self) -> usize {
        self.good.len() + self.broken.len()
    }
}

/// Logs every INSERT and UPDATE of `track_fingerprints` into `test_fp_writes`, and every
/// UPDATE of `tracks` into `test_track_writes`.
fn install_write_log(db: &Connection) {
    db.execute_batch(
        "CREATE TABLE test_fp_writes (track_id INTEGER NOT NULL, op TEXT NOT NULL);
         CREATE TRIGGER test_fp_insert AFTER INSERT ON track_fingerprints
           BEGIN INSERT INTO test_fp_writes VALUES (new.track_id, 'insert'); END;
         CREATE TRIGGER test_fp_update AFTER UPDATE ON track_fingerprints
           BEGIN INSERT INTO test_fp_writes VALUES (new.track_id, 'update'); END;
         CREATE TABLE test_track_writes (track_id INTEGER NOT NULL);
         CREATE TRIGGER test_track_update AFTER UPDATE ON tracks
           BEGIN INSERT INTO test_track_writes VALUES (new.id); END;",
    )
    .unwrap();
}

/// (inserts, updates) of `track_fingerprints` per file path, from the write log.
fn writes(db: &Connection) -> HashMap<PathBuf, (i64, i64)> {
    let mut stmt = db
        .prepare(
            "SELECT t.filepath, SUM(w.op = 'insert'), SUM(w.op = 'update')
             FROM test_fp_writes w JOIN tracks t ON t.id = w.track_id GROUP BY t.filepath",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            PathBuf::from(r.get::<_, String>(0)?),
            (r.get(1)?, r.get(2)?),
        ))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// UPDATEs of `tracks` per file path, from the write log.
fn track_writes(db: &Connection) -> HashMap<PathBuf, i64> {
    let mut stmt = db
        .prepare(
            "SELECT t.filepath, COUNT(*) FROM test_track_writes w JOIN tracks t ON t.id = w.track_id
             GROUP BY t.filepath",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((PathBuf::from(r.get::<_, String>(0)?), r.get(1)?))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `PRAGMA integrity_check` is "ok" and `PRAGMA foreign_key_check` finds nothing.
fn assert_sound(db: &Connection, when: &str) {
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{when}");
    let mut stmt = db.prepare("PRAGMA foreign_key_check").unwrap();
    let bad: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(bad.is_empty(), "{when}: foreign key violations {bad:?}");
}

/// One table: its column names and its rows (by rowid).
#[derive(Debug, Clone, PartialEq)]
struct Table {
    cols: Vec<String>,
    rows: BTreeMap<i64, Vec<Sql>>,
}

impl Table {
    fn col(&self, name: &str) -> usize {
        self.cols
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.cols))
    }

    fn get(&self, rowid: i64, col: &str) -> &Sql {
        &self.rows[&rowid][self.col(col)]
    }
}

/// Every table of the database, every row, every column; plus the schema (`sqlite_master`)
/// and the header's `user_version`.
#[derive(Debug, Clone, PartialEq)]
struct Dump {
    schema: Vec<(String, String, String, Option<String>)>,
    user_version: i64,
    tables: BTreeMap<String, Table>,
}

fn dump(db: &Connection) -> Dump {
    let schema: Vec<(String, String, String, Option<String>)> = db
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut tables = BTreeMap::new();
    for (ty, name, _, _) in &schema {
        if ty != "table" {
            continue;
        }
        let mut stmt = db
            .prepare(&format!("SELECT rowid, * FROM \"{name}\""))
            .unwrap();
        let cols: Vec<String> = stmt.column_names().skip(1).map(|s| s.to_string()).collect();
        let n = cols.len();
        let rows = stmt
            .query_map([], |r| {
                let vals: Vec<Sql> = (1..=n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok((r.get::<_, i64>(0)?, vals))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        tables.insert(name.clone(), Table { cols, rows });
    }
    let user_version = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    Dump {
        schema,
        user_version,
        tables,
    }
}

/// Names that belong to sonoprint (its bookkeeping) or to these tests (the write logs).
fn not_the_players(name: &str) -> bool {
    name.starts_with("sonoprint_") || name.starts_with("test_")
}

/// The player's tables and rows of `sqlite_sequence`, whole, except `track_fingerprints` and
/// `tracks` (compared column by column elsewhere).
fn other_tables(d: &Dump) -> BTreeMap<String, Table> {
    let mut t: BTreeMap<String, Table> = d
        .tables
        .iter()
        .filter(|(n, _)| !not_the_players(n) && *n != "tracks" && *n != "track_fingerprints")
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    if let Some(seq) = t.get_mut("sqlite_sequence") {
        seq.rows.retain(|_, r| match &r[0] {
            Sql::Text(n) => !not_the_players(n) && n != "track_fingerprints",
            _ => true,
        });
    }
    t
}

fn text(v: &Sql) -> Option<&str> {
    match v {
        Sql::Text(s) => Some(s),
        _ => None,
    }
}

/// The schema after sonoprint: the original objects unchanged, and new ones only on
/// `sonoprint_*` tables (or the tests' `test_*` ones).
fn assert_schema_kept(before: &Dump, after: &Dump) {
    let theirs = |d: &Dump| -> Vec<(String, String, String, Option<String>)> {
        d.schema
            .iter()
            .filter(|o| !not_the_players(&o.2))
            .cloned()
            .collect()
    };
    assert_eq!(
        theirs(after),
        theirs(before),
        "objects other than sonoprint_* tables were added, changed or dropped"
    );
    assert_eq!(after.user_version, before.user_version, "user_version");
}

/// What `run` may have changed in the player's data, and nothing else: tracks `computed` got
/// their result columns (and, with `stamp`, that version), tracks in `failed` their status
/// columns only; every other value of every table is unchanged. New `track_fingerprints`
/// rows carry the player's defaults for its own columns.
fn assert_player_data_kept(
    lib: &Lib,
    before: &Dump,
    after: &Dump,
    computed: &BTreeSet<i64>,
    failed: &BTreeSet<i64>,
    stamp: i64,
) {
    assert_schema_kept(before, after);
    assert_eq!(other_tables(after), other_tables(before), "other tables");

    // tracks: every row, every column but the three status ones; those only for tracks
    // that were computed or failed.
    let (tb, ta) = (&before.tables["tracks"], &after.tables["tracks"]);
    assert_eq!(ta.cols, tb.cols);
    assert_eq!(
        ta.rows.keys().collect::<Vec<_>>(),
        tb.rows.keys().collect::<Vec<_>>(),
        "track rows added or deleted"
    );
    for (id, row) in &tb.rows {
        for (i, c) in tb.cols.iter().enumerate() {
            let may_change =
                STATUS_COLS.contains(&c.as_str()) && (computed.contains(id) || failed.contains(id));
            if !may_change {
                assert_eq!(ta.rows[id][i], row[i], "tracks {id}.{c} changed");
            }
        }
    }
    if lib.kind.status() {
        for id in computed {
            assert_eq!(
                text(ta.get(*id, "fingerprint_status")),
                Some("completed"),
                "track {id}"
            );
            assert!(
                text(ta.get(*id, "fingerprint_computed_at")).is_some(),
                "track {id}: no fingerprint_computed_at"
            );
            assert_eq!(
                ta.get(*id, "fingerprint_error_message"),
                &Sql::Null,
                "track {id}"
            );
        }
        for id in failed {
            assert_eq!(
                text(ta.get(*id, "fingerprint_status")),
                Some("failed"),
                "track {id}"
            );
        }
    }

    // track_fingerprints: rows by id.
    let (fb, fa) = (
        &before.tables["track_fingerprints"],
        &after.tables["track_fingerprints"],
    );
    assert_eq!(fa.cols, fb.cols);
    let result_col = |c: &str| DIMS.contains(&c) || c == "fingerprint_version" || c == "updated_at";
    let mut seen = BTreeSet::new();
    for (rowid, row) in &fb.rows {
        let track = match row[fb.col("track_id")] {
            Sql::Integer(t) => t,
            ref v => panic!("{v:?}"),
        };
        let a = fa
            .rows
            .get(rowid)
            .unwrap_or_else(|| panic!("fingerprint row {rowid} (track {track}) deleted"));
        if computed.contains(&track) {
            seen.insert(track);
            for (i, c) in fb.cols.iter().enumerate() {
                if !result_col(c) {
                    assert_eq!(a[i], row[i], "track_fingerprints {rowid}.{c} changed");
                }
            }
            assert_eq!(
                a[fa.col("fingerprint_version")],
                Sql::Integer(stamp),
                "track {track}"
            );
            assert_ne!(a[fa.col("lufs")], Sql::Real(-100.0), "track {track}");
        } else {
            assert_eq!(a, row, "fingerprint row {rowid} (track {track}) changed");
        }
    }
    for (rowid, a) in fa.rows.iter().filter(|(r, _)| !fb.rows.contains_key(r)) {
        let track = match a[fa.col("track_id")] {
            Sql::Integer(t) => t,
            ref v => panic!("{v:?}"),
        };
        assert!(
            computed.contains(&track) && seen.insert(track),
            "unexpected new fingerprint row {rowid} for track {track}"
        );
        assert_eq!(a[fa.col("fingerprint_version")], Sql::Integer(stamp));
        assert_eq!(a[fa.col("is_reference")], Sql::Integer(0), "row {rowid}");
        assert_eq!(a[fa.col("reference_weight")], Sql::Real(0.0), "row {rowid}");
        assert!(text(&a[fa.col("created_at")]).is_some(), "row {rowid}");
        if lib.kind.orm() {
            assert_eq!(a[fa.col("fingerprint_blob")], Sql::Null, "row {rowid}");
        }
        assert_ne!(a[fa.col("lufs")], Sql::Real(-100.0), "row {rowid}");
    }
    assert_eq!(&seen, computed, "computed tracks without a result row");
}

/// Paths of the rows the player's reader counts as fingerprints at `version`.
fn player_reads(db: &Connection, version: i64) -> BTreeSet<PathBuf> {
    db.prepare(
        "SELECT t.filepath FROM track_fingerprints f JOIN tracks t ON t.id = f.track_id
         WHERE f.lufs != -100 AND f.fingerprint_version >= ?1",
    )
    .unwrap()
    .query_map([version], |r| Ok(PathBuf::from(r.get::<_, String>(0)?)))
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn set(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
    paths.iter().cloned().collect()
}

/// The status columns of a track: (status, computed_at, error_message).
fn status_cols(db: &Connection, p: &Path) -> (Option<String>, Option<String>, Option<String>) {
    db.query_row(
        "SELECT fingerprint_status, fingerprint_computed_at, fingerprint_error_message
         FROM tracks WHERE filepath = ?1",
        [p.to_str().unwrap()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn assert_auralis_counts(
    st: &Value,
    version: i64,
    current: usize,
    placeholders: usize,
    older: usize,
) {
    let a = &st["auralis"];
    assert_eq!(a["version"], version, "{st}");
    assert_eq!(a["current"], current, "{st}");
    assert_eq!(a["placeholders"], placeholders, "{st}");
    assert_eq!(a["older_versions"], older, "{st}");
}

/// "N completed" and "M skipped" of a run's summary, when it prints them.
fn summary_number(out: &str, word: &str) -> Option<u64> {
    let i = out.find(&format!(" {word}"))?;
    out[..i]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// 1. run --max-tracks 3, then run: results in place, everything of the player's kept.

/// The library of the in-place tests: placeholder, version-0, player-current and newer-player
/// rows; returns it with the tracks `run` must compute.
fn seeded(kind: Kind) -> (Lib, Vec<PathBuf>) {
    let lib = Lib::new(kind, 8);
    let g = &lib.good;
    lib.put_fp(&g[0], &Fp::placeholder());
    // The player's workers claim a stale row by setting its version to 0.
    lib.put_fp(&g[1], &Fp::real(0, 0.3));
    // A current row the player wrote itself, and one of a newer player release.
    lib.put_fp(&g[2], &Fp::real(1, 0.4));
    lib.mark_completed_by_player(&g[2]);
    lib.put_fp(&g[3], &Fp::real(5, 0.2));
    lib.mark_completed_by_player(&g[3]);
    let compute: Vec<PathBuf> = [&g[0], &g[1]].into_iter().chain(&g[4..]).cloned().collect();
    (lib, compute)
}

fn fills_in_place(kind: Kind) {
    let (lib, compute) = seeded(kind);
    let db = lib.conn();
    install_write_log(&db);
    let before = dump(&db);
    let pending = compute.len() + lib.broken.len();

    let st = lib.status(&[]);
    for k in [
        "tracks",
        "fingerprinted_current",
        "pending",
        "failed",
        "failed_by_class",
    ] {
        assert!(st.get(k).is_some(), "status --json lacks {k}: {st}");
    }
    assert_eq!(st["tracks"], lib.all_tracks(), "{st}");
    assert_eq!(st["pending"], pending, "{st}");
    assert_auralis_counts(&st, 1, 2, 1, 1);

    lib.run(&["--max-tracks", "3"]);
    let st = lib.status(&[]);
    assert_eq!(st["pending"], pending - 3, "{st}");
    let w = writes(&db);
    assert!(w.values().all(|&(i, u)| i + u == 1), "{w:?}");

    let out = lib.run(&[]);
    assert!(out.contains("completed"), "{out}");
    assert_sound(&db, "after the runs");
    let w = writes(&db);
    for p in &compute {
        let expected = if p == &lib.good[0] || p == &lib.good[1] {
            (0, 1) // the existing row, upserted
        } else {
            (1, 0)
        };
        assert_eq!(
            w.get(p),
            Some(&expected),
            "{}: (inserts, updates)",
            p.display()
        );
    }
    assert_eq!(w.len(), compute.len(), "{w:?}");

    let after = dump(&db);
    let computed: BTreeSet<i64> = compute.iter().map(|p| lib.id(p)).collect();
    let failed: BTreeSet<i64> = lib.broken.iter().map(|b| lib.id(&b.0)).collect();
    assert_player_data_kept(&lib, &before, &after, &computed, &failed, 1);

    // The player's reader sees every result, and the rows it had.
    assert_eq!(player_reads(&db, 1), set(&lib.good));
    // Only the status columns of computed and failed tracks are written, and only where
    // the table has them.
    let tw = track_writes(&db);
    let touched: BTreeSet<PathBuf> = compute
        .iter()
        .chain(lib.broken.iter().map(|b| &b.0))
        .cloned()
        .collect();
    assert!(tw.keys().all(|p| touched.contains(p)), "{tw:?}");
    if !kind.status() {
        assert!(
            tw.is_empty(),
            "tracks written without status columns: {tw:?}"
        );
    }

    // Failures, in the player's columns where it has them, and in `failures`.
    if kind.status() {
        for (p, class) in &lib.broken {
            let (s, _, msg) = status_cols(&db, p);
            assert_eq!(s.as_deref(), Some("failed"), "{}", p.display());
            let msg = msg.unwrap_or_default();
            assert!(
                msg.contains(class),
                "{}: {msg:?} lacks {class}",
                p.display()
            );
        }
    }
    let f: Value = serde_json::from_str(&ok(lib.out(&["failures", "--json"]))).unwrap();
    let listed: BTreeSet<(String, String)> = f
        .as_array()
        .unwrap_or_else(|| panic!("{f}"))
        .iter()
        .map(|x| {
            assert!(x["message"].as_str().is_some_and(|m| !m.is_empty()), "{x}");
            (
                x["path"].as_str().unwrap_or_default().to_string(),
                x["class"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = lib
        .broken
        .iter()
        .map(|(p, c)| (p.to_str().unwrap().to_string(), c.to_string()))
        .collect();
    assert_eq!(listed, expected);

    let st = lib.status(&[]);
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["failed"], lib.broken.len(), "{st}");
    for (_, class) in &lib.broken {
        assert_eq!(st["failed_by_class"][class], 1, "{st}");
    }
    assert_auralis_counts(&st, 1, lib.good.len(), 0, 0);
    let table = ok(lib.out(&["status"])).to_lowercase();
    assert!(
        table.contains("auralis") && table.contains("placeholder"),
        "{table}"
    );

    // A second run computes nothing and writes nothing.
    lib.run(&[]);
    assert_eq!(writes(&db), w, "the second run wrote fingerprints");
    assert_eq!(track_writes(&db), tw, "the second run wrote tracks");
    let again = dump(&db);
    assert_eq!(other_tables(&again), other_tables(&after));
    assert_eq!(again.tables["tracks"], after.tables["tracks"]);
    assert_eq!(
        again.tables["track_fingerprints"],
        after.tables["track_fingerprints"]
    );
    assert!(
        !lib.data.join("library.db").exists(),
        "an own library was created in the data dir"
    );
}

#[test]
fn run_fills_a_migrated_database_in_place() {
    fills_in_place(Kind::Migrated);
}

#[test]
fn run_fills_an_orm_created_database_in_place() {
    fills_in_place(Kind::Orm { status: true });
}

#[test]
fn run_fills_a_database_without_the_status_columns() {
    fills_in_place(Kind::Orm { status: false });
}

// ---------------------------------------------------------------------------------------------
// 2. Refusal of what is not an Auralis database.

#[test]
fn a_database_that_is_not_auralis_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let full = schema_sql(Kind::Migrated);
    let without_column = |table: &str, col: &str| -> String {
        // The full schema with one column's line left out of one table.
        let start = full.find(&format!("CREATE TABLE {table} (")).unwrap();
        let end = start + full[start..].find(");").unwrap();
        let body: String = full[start..end]
            .lines()
            .filter(|l| !l.trim_start().starts_with(&format!("{col} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut s = format!("{}{}{}", &full[..start], body, &full[end..]);
        // Indexes that name a removed column go too.
        s = s
            .lines()
            .filter(|l| !(l.starts_with("CREATE INDEX") && l.contains(col)))
            .map(|l| format!("{l}\n"))
            .collect();
        s
    };
    let no_fp_table: String = {
        let start = full.find("CREATE TABLE track_fingerprints").unwrap();
        let end = full.find("CREATE TABLE similarity_graph").unwrap();
        format!("{}{}", &full[..start], &full[end..])
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("empty", String::new(), vec!["tracks"]),
        ("no-fingerprints", no_fp_table, vec!["track_fingerprints"]),
        (
            "no-tempo",
            without_column("track_fingerprints", "tempo_bpm"),
            vec!["tempo_bpm"],
        ),
        (
            "no-version",
            without_column("track_fingerprints", "fingerprint_version"),
            vec!["fingerprint_version"],
        ),
        (
            "no-filepath",
            without_column("tracks", "filepath"),
            vec!["filepath"],
        ),
    ];
    for (name, sql, needles) in cases {
        let db = root.join(format!("{name}.db"));
        {
            let c = Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
            c.execute_batch(&sql).unwrap();
            if sql.contains("CREATE TABLE tracks") {
                c.execute(
                    &format!(
                        "INSERT INTO tracks (title, {}) VALUES ('x', '/nowhere/x.wav')",
                        if name == "no-filepath" {
                            "format"
                        } else {
                            "filepath"
                        }
                    ),
                    [],
                )
                .unwrap();
            }
        }
        let bytes = fs::read(&db).unwrap();
        for cmd in [
            &["run", "--jobs", "1"][..],
            &["status", "--json"],
            &["forget"],
            &["failures", "--json"],
            &["serve", "--port", "0", "--jobs", "1"],
        ] {
            let mut c = Command::new(env!("CARGO_BIN_EXE_sonoprint"));
            c.arg("--data-dir")
                .arg(root.join("data"))
                .arg("--auralis")
                .arg(&db)
                .args(cmd)
                .env_remove("SONOPRINT_AURALIS")
                .env_remove("SONOPRINT_HOME");
            let (code, err) = exit_within(c, &root.join("stderr.txt"), Duration::from_secs(20));
            assert_eq!(code, Some(1), "{name} {cmd:?}: {err}");
            for n in &needles {
                assert!(
                    err.contains(n),
                    "{name} {cmd:?}: stderr does not name {n}: {err}"
                );
            }
            assert!(!err.contains("panicked"), "{err}");
            assert_bytes_kept(&db, &bytes, &format!("{name} {cmd:?}"));
            let c = Connection::open(&db).unwrap();
            assert_eq!(
                count(
                    &c,
                    "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'sonoprint%'"
                ),
                0,
                "{name}"
            );
        }
    }

    // Not SQLite at all.
    let junk = root.join("notes.db");
    fs::write(&junk, "these are my notes, not a database\n".repeat(40)).unwrap();
    let before = fs::read(&junk).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--auralis")
        .arg(&junk)
        .args(["run", "--jobs", "1"])
        .env_remove("SONOPRINT_AURALIS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_bytes_kept(&junk, &before, "not SQLite");

    // A path where there is no file: refused, and no file created there.
    let nothing = root.join("typo.db");
    let out = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--auralis")
        .arg(&nothing)
        .args(["run", "--jobs", "1"])
        .env_remove("SONOPRINT_AURALIS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !nothing.exists(),
        "a database was created at a mistyped path"
    );
}

#[test]
fn scan_is_refused_without_writing_the_players_database() {
    // `scan` is not used in this mode: refused, with a message that says why.
    let lib = Lib::new(Kind::Migrated, 2);
    let bytes = fs::read(&lib.db).unwrap();
    let out = lib.out(&["scan", lib.music.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "scan accepted with --auralis");
    assert!(err.contains("auralis"), "{err}");
    assert_bytes_kept(&lib.db, &bytes, "scan");
}

/// Runs `cmd` (stdout discarded, stderr to `log`) and returns its exit code and stderr; a
/// process still running after `limit` (a server that did not refuse to start) is killed and
/// gives `None`.
fn exit_within(mut cmd: Command, log: &Path, limit: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, fs::read_to_string(log).unwrap_or_default())
}

/// The file at `path` still holds exactly `before`; if not, says what sonoprint added.
fn assert_bytes_kept(path: &Path, before: &[u8], what: &str) {
    let now = fs::read(path).unwrap();
    if now != before {
        let added: Vec<String> = Connection::open(path)
            .and_then(|c| {
                c.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'sonoprint%'")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "{what}: the file was written ({} bytes before, {} after; sonoprint objects now in \
             it: {added:?})",
            before.len(),
            now.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 at random moments, two runners at once.

/// The end state of every complete run over `lib` (no player rows seeded but `placeholders`):
/// one current row per good file, written once (an upsert of the placeholder counts as the
/// one write), failures recorded and not fingerprinted, a sound file.
fn assert_complete(lib: &Lib, db: &Connection, placeholders: &BTreeSet<PathBuf>) {
    assert_sound(db, "complete");
    let w = writes(db);
    for p in &lib.good {
        let expected = if placeholders.contains(p) {
            (0, 1)
        } else {
            (1, 0)
        };
        assert_eq!(
            w.get(p),
            Some(&expected),
            "{}: (inserts, updates)",
            p.display()
        );
    }
    for (p, _) in &lib.broken {
        assert!(!w.contains_key(p), "{}", p.display());
        if lib.kind.status() {
            assert_eq!(
                status_cols(db, p).0.as_deref(),
                Some("failed"),
                "{}",
                p.display()
            );
        }
    }
    assert_eq!(player_reads(db, 1), set(&lib.good));
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM track_fingerprints"),
        lib.good.len() as i64
    );
    let st = lib.status(&[]);
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["failed"], lib.broken.len(), "{st}");
    assert_auralis_counts(&st, 1, lib.good.len(), 0, 0);
}

#[test]
fn kill_9_at_random_moments_then_finish() {
    let lib = Lib::new(Kind::Migrated, 400);
    let placeholders: BTreeSet<PathBuf> = lib.good.iter().step_by(7).cloned().collect();
    for p in &placeholders {
        lib.put_fp(p, &Fp::placeholder());
    }
    install_write_log(&lib.conn());
    let before = dump(&lib.conn());
    let mut killed_running = 0;
    let mut rng = Rng(0x5eed_a0a1_15db_000d);
    for round in 0..4 {
        let mut child = lib
            .cmd(&["run", "--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a random moment while the run is writing: once it has written a random
        // number of results more (a share of what is left), plus a random few milliseconds, so
        // that the kill lands between, before and inside transactions, whatever the machine's
        // speed.
        let so_far = count(&lib.conn(), "SELECT COUNT(*) FROM test_fp_writes");
        let left = (lib.good.len() as i64 - so_far).max(1) as u64;
        let target = so_far + rng.range(1, (left / 5).max(2)) as i64;
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none()
            && count(&lib.conn(), "SELECT COUNT(*) FROM test_fp_writes") < target
            && t0.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let wait = rng.range(0, 40);
        std::thread::sleep(Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let db = lib.conn();
        assert_sound(&db, &format!("after kill {round}"));
        eprintln!(
            "kill {round} at {target}+ writes and {wait} ms ({status}): {} fingerprint writes",
            count(&db, "SELECT COUNT(*) FROM test_fp_writes"),
        );
    }
    assert!(
        killed_running >= 3,
        "only {killed_running} of 4 kills hit a running `run`: the library is too small"
    );
    let db = lib.conn();
    let written = count(&db, "SELECT COUNT(*) FROM test_fp_writes");
    assert!(written > 0 && written < lib.good.len() as i64, "{written}");
    let started = Instant::now();
    ok(lib.out(&["run", "--jobs", "2"]));
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the final run waited for leases"
    );
    assert_complete(&lib, &db, &placeholders);
    let computed: BTreeSet<i64> = lib.good.iter().map(|p| lib.id(p)).collect();
    let failed: BTreeSet<i64> = lib.broken.iter().map(|b| lib.id(&b.0)).collect();
    assert_player_data_kept(&lib, &before, &dump(&db), &computed, &failed, 1);
}

#[test]
fn two_runners_at_once_never_compute_the_same_track() {
    let lib = Lib::new(Kind::Orm { status: true }, 200);
    let placeholders: BTreeSet<PathBuf> = lib.good.iter().step_by(5).cloned().collect();
    for p in &placeholders {
        lib.put_fp(p, &Fp::placeholder());
    }
    install_write_log(&lib.conn());
    let start = || {
        lib.cmd(&["run", "--jobs", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (a, b) = (ok(a), ok(b));
    assert_complete(&lib, &lib.conn(), &placeholders);
    // When the summaries say how many each computed: both worked, together exactly once each.
    if let (Some(ca), Some(cb)) = (
        summary_number(&a, "completed"),
        summary_number(&b, "completed"),
    ) {
        assert!(ca > 0 && cb > 0, "one runner did nothing:\n{a}\n{b}");
        assert_eq!(ca + cb, lib.good.len() as u64, "\n{a}\n{b}");
    }
    for out in [&a, &b] {
        if let Some(s) = summary_number(out, "skipped") {
            assert_eq!(s, 0, "a result was computed by both:\n{out}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Another writer holding a write transaction mid-run.

#[test]
fn another_writer_holding_the_database_only_delays_the_run() {
    writer_holding_the_database(Duration::from_secs(4));
}

/// Longer than the 10 s busy timeout: the run's claims and writes are retried, not failed.
#[test]
fn another_writer_holding_it_past_the_busy_timeout_still_costs_nothing() {
    writer_holding_the_database(Duration::from_secs(13));
}

fn writer_holding_the_database(hold: Duration) {
    let lib = Lib::new(Kind::Orm { status: false }, 150);
    install_write_log(&lib.conn());
    let mut child = lib
        .cmd(&["run", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has written something, then hold the write lock for `hold`, as the
    // player does when it writes a large scan.
    let player = lib.conn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&player, "SELECT COUNT(*) FROM test_fp_writes") == 0 {
        assert!(Instant::now() < deadline, "the run wrote nothing in 60 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    player.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the lock was taken: the library is too small"
    );
    player
        .execute(
            "INSERT INTO play_history (track_id, played_at) VALUES (1, '2026-01-01 00:00:00')",
            [],
        )
        .unwrap();
    let held_from = count(&player, "SELECT COUNT(*) FROM test_fp_writes");
    std::thread::sleep(hold);
    let running_at_commit = child.try_wait().unwrap().is_none();
    player.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    ok(out);
    assert!(
        running_at_commit,
        "the run finished while another connection held the write lock"
    );
    assert!(
        held_from < lib.good.len() as i64,
        "all written before the lock"
    );
    let db = lib.conn();
    assert_complete(&lib, &db, &BTreeSet::new());
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM play_history WHERE played_at = '2026-01-01 00:00:00'"
        ),
        1,
        "the other writer's row"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. forget.

#[test]
fn forget_restores_the_schema_and_keeps_the_results() {
    let (lib, _) = seeded(Kind::Migrated);
    let db = lib.conn();
    let original = dump(&db);
    lib.run(&[]);
    let ran = dump(&db);
    assert!(
        ran.schema.iter().any(|o| o.2.starts_with("sonoprint_")),
        "no sonoprint_* table: where does the bookkeeping live?"
    );
    drop(db);
    ok(lib.out(&["forget"]));
    let db = lib.conn();
    let forgot = dump(&db);
    assert_eq!(forgot.schema, original.schema, "schema after forget");
    assert_eq!(forgot.user_version, original.user_version);
    // The data: what the run left, minus sonoprint's tables; sqlite_sequence without their rows.
    let mut expected = ran.tables.clone();
    expected.retain(|n, _| !n.starts_with("sonoprint_"));
    if let Some(seq) = expected.get_mut("sqlite_sequence") {
        seq.rows
            .retain(|_, r| !text(&r[0]).is_some_and(|n| n.starts_with("sonoprint_")));
    }
    assert_eq!(forgot.tables, expected, "data after forget");
    assert_eq!(player_reads(&db, 1), set(&lib.good), "results lost");
    assert_sound(&db, "after forget");
    // And the original plus results: only the result columns differ from the original.
    let computed: BTreeSet<i64> = [&lib.good[0], &lib.good[1]]
        .into_iter()
        .chain(&lib.good[4..])
        .map(|p| lib.id(p))
        .collect();
    let failed: BTreeSet<i64> = lib.broken.iter().map(|b| lib.id(&b.0)).collect();
    assert_player_data_kept(&lib, &original, &forgot, &computed, &failed, 1);
}

// ---------------------------------------------------------------------------------------------
// 6. --auralis-version 2.

#[test]
fn a_higher_version_rewrites_older_rows_in_place() {
    let lib = Lib::new(Kind::Orm { status: true }, 4);
    let g = &lib.good;
    let old = lib.put_fp(&g[0], &Fp::real(1, 0.3)); // written by the December 2025 client
    lib.mark_completed_by_player(&g[0]);
    lib.put_fp(&g[1], &Fp::real(2, 0.4)); // already at version 2
    lib.mark_completed_by_player(&g[1]);
    let ph = lib.put_fp(&g[2], &Fp::placeholder());
    let db = lib.conn();
    install_write_log(&db);
    let before = dump(&db);

    let st = lib.status(&["--auralis-version", "2"]);
    assert_auralis_counts(&st, 2, 1, 1, 1);
    // The flag is global: before the subcommand too.
    let out = ok(lib.out(&["--auralis-version", "2", "status", "--json"]));
    let st2: Value = serde_json::from_str(&out).unwrap();
    assert_auralis_counts(&st2, 2, 1, 1, 1);
    assert_eq!(st["pending"], 3 + lib.broken.len(), "{st}");

    lib.run(&["--auralis-version", "2"]);
    let w = writes(&db);
    assert_eq!(w.get(&g[0]), Some(&(0, 1)));
    assert_eq!(w.get(&g[1]), None);
    assert_eq!(w.get(&g[2]), Some(&(0, 1)));
    assert_eq!(w.get(&g[3]), Some(&(1, 0)));
    let after = dump(&db);
    let computed: BTreeSet<i64> = [&g[0], &g[2], &g[3]].iter().map(|p| lib.id(p)).collect();
    let failed: BTreeSet<i64> = lib.broken.iter().map(|b| lib.id(&b.0)).collect();
    assert_player_data_kept(&lib, &before, &after, &computed, &failed, 2);
    let fa = &after.tables["track_fingerprints"];
    for id in [old, ph] {
        assert_eq!(fa.get(id, "fingerprint_version"), &Sql::Integer(2));
        assert_eq!(fa.get(id, "is_reference"), &Sql::Integer(1));
        assert_eq!(fa.get(id, "reference_weight"), &Sql::Real(0.7));
    }
    // The old row's values were computed anew, not kept.
    assert_ne!(
        fa.get(old, "lufs"),
        before.tables["track_fingerprints"].get(old, "lufs")
    );
    assert_eq!(player_reads(&db, 2), set(&lib.good));
    assert_auralis_counts(&lib.status(&["--auralis-version", "2"]), 2, 4, 0, 0);

    // At the default version 1 everything is current: nothing to do.
    lib.run(&[]);
    assert_eq!(writes(&db), w);
    assert_auralis_counts(&lib.status(&[]), 1, 4, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// 7. Changed files are recomputed; unchanged failures are not retried.

fn fp_values(db: &Connection, p: &Path) -> (i64, Vec<f64>) {
    let cols = DIMS.join(", ");
    db.query_row(
        &format!(
            "SELECT f.id, {cols} FROM track_fingerprints f JOIN tracks t ON t.id = f.track_id
             WHERE t.filepath = ?1"
        ),
        [p.to_str().unwrap()],
        |r| {
            let v: Vec<f64> = (1..=DIMS.len())
                .map(|i| r.get(i))
                .collect::<Result<_, _>>()?;
            Ok((r.get(0)?, v))
        },
    )
    .unwrap()
}

#[test]
fn a_changed_file_is_recomputed_and_an_unchanged_failure_is_not_retried() {
    let lib = Lib::new(Kind::Migrated, 5);
    lib.run(&[]);
    let db = lib.conn();
    install_write_log(&db);
    let before: HashMap<PathBuf, _> = lib
        .good
        .iter()
        .map(|p| (p.clone(), fp_values(&db, p)))
        .collect();

    // good[1]: other content, other size. good[2]: other content, same size, mtime moved on.
    std::thread::sleep(Duration::from_millis(1100));
    let (resized, same_size) = (&lib.good[1], &lib.good[2]);
    let old_size = fs::metadata(resized).unwrap().len();
    wav(resized, 2.7, 1234.0);
    assert_ne!(fs::metadata(resized).unwrap().len(), old_size);
    let size = fs::metadata(same_size).unwrap().len();
    let mtime = fs::metadata(same_size).unwrap().modified().unwrap();
    wav(same_size, 1.5 + 2.0 * 0.5, 987.0);
    assert_eq!(fs::metadata(same_size).unwrap().len(), size);
    fs::File::options()
        .write(true)
        .open(same_size)
        .unwrap()
        .set_modified(mtime + Duration::from_secs(7))
        .unwrap();
    // A failed file repaired: it changed, so it is tried again (and now succeeds).
    let (repaired, _) = lib.broken[2].clone();
    wav(&repaired, 2.0, 550.0);

    // `status` reads the database only; the files are looked at by `run` (as in own-library
    // mode, where `scan` does it), so its `pending` is not checked here.
    lib.run(&[]);
    let w = writes(&db);
    assert_eq!(w.get(resized), Some(&(0, 1)), "{w:?}");
    assert_eq!(w.get(same_size), Some(&(0, 1)), "{w:?}");
    assert_eq!(w.get(&repaired), Some(&(1, 0)), "{w:?}");
    assert_eq!(w.len(), 3, "{w:?}");
    for p in &lib.good {
        let now = fp_values(&db, p);
        assert_eq!(now.0, before[p].0, "{}: row id changed", p.display());
        if p == resized || p == same_size {
            assert_ne!(
                now.1,
                before[p].1,
                "{}: fingerprint did not change",
                p.display()
            );
        } else {
            assert_eq!(now, before[p], "{} was rewritten", p.display());
        }
    }
    let (s, _, msg) = status_cols(&db, &repaired);
    assert_eq!((s.as_deref(), msg), (Some("completed"), None));
    let unchanged: Vec<&PathBuf> = lib.broken[..2].iter().map(|b| &b.0).collect();
    let tw = track_writes(&db);
    for p in &unchanged {
        assert_eq!(
            tw.get(*p),
            None,
            "{}: retried without --retry-failed",
            p.display()
        );
    }

    // Nothing left: the failures are not retried...
    lib.run(&[]);
    assert_eq!(
        track_writes(&db),
        tw,
        "a run with nothing to do wrote tracks"
    );
    assert_eq!(writes(&db), w);
    // ...unless asked.
    lib.run(&["--retry-failed"]);
    let tw2 = track_writes(&db);
    for p in &unchanged {
        assert!(
            tw2.contains_key(*p),
            "{}: not retried with --retry-failed",
            p.display()
        );
        assert_eq!(status_cols(&db, p).0.as_deref(), Some("failed"));
    }
    assert_eq!(
        writes(&db),
        w,
        "a fingerprint was rewritten by --retry-failed"
    );
    assert_sound(&db, "end");
}

// ---------------------------------------------------------------------------------------------
// 8. serve.

fn fingerprint(s: &Server, id: i64, path: &Path) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let body = json!({"track_id": id, "filepath": path}).to_string();
    let mut r = agent
        .post(format!("{}/fingerprint", s.base))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

fn assert_same_values(answer: &Value, row: &[f64]) {
    for (d, v) in DIMS.iter().zip(row) {
        let a = answer["fingerprint"][d]
            .as_f64()
            .unwrap_or_else(|| panic!("{d} missing: {answer}"));
        assert!(
            (a - v).abs() <= 1e-6 * v.abs().max(1.0),
            "{d}: answered {a}, row has {v}"
        );
    }
}

#[test]
fn serve_answers_from_and_stores_into_the_players_table() {
    let lib = Lib::new(Kind::Migrated, 4);
    let g = &lib.good;
    lib.put_fp(&g[0], &Fp::real(1, 0.4)); // current: answered from the row
    lib.mark_completed_by_player(&g[0]);
    let ph = lib.put_fp(&g[1], &Fp::placeholder()); // computed, upserted into this row
    let outside = lib.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.wav");
    wav(&secret, 2.0, 330.0);
    let db = lib.conn();
    install_write_log(&db);
    let before = dump(&db);

    let s = start(lib.cmd(&["serve", "--port", "0", "--jobs", "1"]));

    let (st, v) = fingerprint(&s, lib.id(&g[0]), &g[0]);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["cached"], true, "{v}");
    assert_same_values(&v, &fp_values(&db, &g[0]).1);

    for p in [&g[1], &g[3]] {
        let (st, v) = fingerprint(&s, lib.id(p), p);
        assert_eq!(st, 200, "{}: {v}", p.display());
        assert_eq!(v["cached"], false, "{v}");
        let (_, row) = fp_values(&db, p);
        assert_same_values(&v, &row);
        assert_eq!(status_cols(&db, p).0.as_deref(), Some("completed"));
        // Asked again: from the row now.
        let (st, again) = fingerprint(&s, lib.id(p), p);
        assert_eq!(st, 200, "{again}");
        assert_eq!(again["cached"], true, "{again}");
        assert_same_values(&again, &row);
    }
    assert_eq!(
        fp_values(&db, &g[1]).0,
        ph,
        "the placeholder row was replaced"
    );

    // Outside every track folder.
    let (st, v) = fingerprint(&s, 999, &secret);
    assert_eq!(st, 403, "{v}");

    // A broken track: 400, and the failure in the player's columns.
    let (cut, class) = &lib.broken[2];
    let (st, v) = fingerprint(&s, lib.id(cut), cut);
    assert_eq!(st, 400, "{v}");
    let (status, _, msg) = status_cols(&db, cut);
    assert_eq!(status.as_deref(), Some("failed"));
    assert!(msg.unwrap_or_default().contains(class));
    drop(s);

    let w = writes(&db);
    assert_eq!(w.get(&g[0]), None);
    assert_eq!(w.get(&g[1]), Some(&(0, 1)));
    assert_eq!(w.get(&g[3]), Some(&(1, 0)));
    assert_eq!(w.len(), 2, "{w:?}");
    let computed: BTreeSet<i64> = [&g[1], &g[3]].iter().map(|p| lib.id(p)).collect();
    let failed: BTreeSet<i64> = [lib.id(cut)].into();
    assert_player_data_kept(&lib, &before, &dump(&db), &computed, &failed, 1);
    assert_sound(&db, "after serve");
}

// ---------------------------------------------------------------------------------------------
// 9. SONOPRINT_AURALIS.

#[test]
fn the_environment_variable_works_like_the_flag() {
    let lib = Lib::new(Kind::Orm { status: true }, 3);
    let env_cmd = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_sonoprint"))
            .arg("--data-dir")
            .arg(&lib.data)
            .args(args)
            .env("SONOPRINT_AURALIS", &lib.db)
            .env_remove("SONOPRINT_HOME")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let st: Value = serde_json::from_str(&ok(env_cmd(&["status", "--json"]))).unwrap();
    assert_auralis_counts(&st, 1, 0, 0, 0);
    ok(env_cmd(&["run", "--jobs", "2"]));
    let db = lib.conn();
    assert_eq!(player_reads(&db, 1), set(&lib.good));
    assert!(
        !lib.data.join("library.db").exists(),
        "an own library was created"
    );
    let st: Value = serde_json::from_str(&ok(env_cmd(&["status", "--json"]))).unwrap();
    assert_auralis_counts(&st, 1, lib.good.len(), 0, 0);
    assert_eq!(st["failed"], lib.broken.len(), "{st}");
    let f: Value = serde_json::from_str(&ok(env_cmd(&["failures", "--json"]))).unwrap();
    assert_eq!(f.as_array().map(Vec::len), Some(lib.broken.len()), "{f}");
    ok(env_cmd(&["forget"]));
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name LIKE 'sonoprint%'"
        ),
        0
    );
}

/// `run --graph` on the player's database: its `similarity_graph` is replaced by sonoprint's
/// (k rows per fingerprinted track, ranks 1..k, scores in [0, 1]); no row involves a track
/// without a fingerprint; every other table of the player's is as it was; an update after one
/// more track touches only what the change reaches.
#[test]
fn run_graph_fills_the_players_similarity_graph() {
    for kind in [Kind::Migrated, Kind::Orm { status: false }] {
        let lib = Lib::new(kind, 14);
        let db = lib.conn();
        let before = dump(&db);
        let out = lib.run(&["--graph"]);
        assert!(out.contains("Similarity graph of 14 tracks built"), "{out}");
        let rows: Vec<(i64, i64, f64, f64, i64)> = db
            .prepare(
                "SELECT track_id, similar_track_id, distance, similarity_score, rank
                 FROM similarity_graph ORDER BY track_id, rank",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 14 * 10, "the player's 3 old rows replaced");
        let good: BTreeSet<i64> = lib.good.iter().map(|p| lib.id(p)).collect();
        for (t, s, d, score, _) in &rows {
            assert!(good.contains(t) && good.contains(s) && t != s);
            assert!(d.is_finite() && *d >= 0.0 && (0.0..=1.0).contains(score));
        }
        for t in &good {
            let ranks: Vec<i64> = rows.iter().filter(|r| r.0 == *t).map(|r| r.4).collect();
            assert_eq!(ranks, (1..=10).collect::<Vec<_>>());
        }
        // The player's other tables are untouched.
        let after = dump(&db);
        for (name, table) in other_tables(&before) {
            if name != "similarity_graph" && name != "sqlite_sequence" {
                assert_eq!(Some(&table), other_tables(&after).get(&name), "{name}");
            }
        }
        // Nothing changed: nothing recomputed.
        let again = ok(lib.out(&["graph"]));
        assert!(
            again.contains("0 changed, 0 without a fingerprint now, 0 rows recomputed"),
            "{again}"
        );
        // One track's file goes: its rows and the rows pointing at it go too.
        let gone = lib.good[5].clone();
        fs::remove_file(&gone).unwrap();
        let gone_id = lib.id(&gone);
        db.execute(
            "DELETE FROM track_fingerprints WHERE track_id = ?1",
            [gone_id],
        )
        .unwrap();
        let upd = ok(lib.out(&["graph", "--json"]));
        let v: Value = serde_json::from_str(&upd).unwrap();
        assert_eq!(v["removed"], 1, "{v}");
        assert_eq!(v["rebuilt"], false, "{v}");
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) FROM similarity_graph WHERE track_id = {gone_id} OR similar_track_id = {gone_id}")),
            0
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM similarity_graph"), 13 * 10);
    }
}
