//! The real binary against a real PostgreSQL server (`SONOPRINT_TEST_POSTGRES`, which
//! `scripts/with-postgres.sh` provides; without it these tests fail): scan, run, status and
//! failures; kill -9 at random moments then a final run; two runners at once; path maps; a
//! database of a newer sonoprint refused; the SQLite -> PostgreSQL -> SQLite copy.
//!
//! "Written twice" is observed with a write log the tests add to the database: a trigger on
//! `track_fingerprints` appends one row per INSERT and per UPDATE, inside the writing
//! transaction (so a write rolled back by a kill leaves no log row either).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{ok, pg, pg_count, pg_database, Rng};

/// WAVs of the kill and two-runner tests: enough that a run with 2 jobs lasts several seconds.
const BIG: usize = 300;

/// `sonoprint --data-dir DATA --db URL ARGS...`.
fn cmd(data: &Path, url: &str, args: &[&str]) -> Command {
    let mut all = vec!["--db", url];
    all.extend_from_slice(args);
    common::command(data, &all)
}

fn sono(data: &Path, url: &str, args: &[&str]) -> Output {
    cmd(data, url, args).output().unwrap()
}

fn spawn(data: &Path, url: &str, args: &[&str]) -> Child {
    cmd(data, url, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wav(path: &Path, secs: f64, freq: f64) {
    common::wav(path, secs, freq)
}

struct Lib {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    url: String,
    good: Vec<PathBuf>,
    broken: Vec<PathBuf>,
}

impl Lib {
    /// `wavs` tones of 1.5–3.5 s and two broken files (an empty FLAC, text named .mp3), scanned
    /// into a new database.
    fn new(tag: &str, wavs: usize) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let dir = root.join("music");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let mut good = Vec::new();
        for i in 0..wavs {
            let sub = if i % 3 == 0 { "sub" } else { "" };
            let p = dir.join(sub).join(format!("tone-{i:03}.wav"));
            wav(&p, 1.5 + (i % 5) as f64 * 0.5, 110.0 + 37.0 * i as f64);
            good.push(p);
        }
        let empty = dir.join("empty.flac");
        fs::write(&empty, b"").unwrap();
        let text = dir.join("notes.mp3");
        fs::write(&text, b"ID3 but not really audio, just text\n".repeat(20)).unwrap();
        let lib = Lib {
            _tmp: tmp,
            data: root.join("data"),
            root,
            dir,
            url: pg_database(tag),
            good,
            broken: vec![empty, text],
        };
        let out = ok(lib.sono(&["scan", lib.dir.to_str().unwrap()]));
        // The empty FLAC and the text named .mp3 are kept, so that their failures are recorded.
        let n = lib.good.len() + lib.broken.len();
        assert!(out.contains(&format!("added {n},")), "{out}");
        lib
    }

    fn sono(&self, args: &[&str]) -> Output {
        sono(&self.data, &self.url, args)
    }

    fn count(&self, sql: &str) -> i64 {
        pg_count(&self.url, sql)
    }

    fn status(&self) -> Value {
        serde_json::from_str(&ok(self.sono(&["status", "--json"]))).unwrap()
    }
}

/// Logs every INSERT and UPDATE of `track_fingerprints` into `test_fp_writes`.
fn install_write_log(url: &str) {
    pg(url)
        .batch_execute(
            "CREATE TABLE test_fp_writes (track_id BIGINT NOT NULL, op TEXT NOT NULL);
             CREATE FUNCTION test_fp_log() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO test_fp_writes VALUES (NEW.track_id, lower(TG_OP)); RETURN NEW; END $$;
             CREATE TRIGGER test_fp_log AFTER INSERT OR UPDATE ON track_fingerprints
               FOR EACH ROW EXECUTE FUNCTION test_fp_log();",
        )
        .unwrap();
}

/// Per path: (fingerprint rows, inserts logged, updates logged, failure rows).
fn rows(url: &str) -> HashMap<PathBuf, (i64, i64, i64, i64)> {
    pg(url)
        .query(
            "SELECT t.filepath,
               (SELECT COUNT(*) FROM track_fingerprints f WHERE f.track_id = t.id),
               (SELECT COUNT(*) FROM test_fp_writes w WHERE w.track_id = t.id AND w.op = 'insert'),
               (SELECT COUNT(*) FROM test_fp_writes w WHERE w.track_id = t.id AND w.op = 'update'),
               (SELECT COUNT(*) FROM failures fl WHERE fl.track_id = t.id)
             FROM tracks t",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                PathBuf::from(r.get::<_, String>(0)),
                (r.get(1), r.get(2), r.get(3), r.get(4)),
            )
        })
        .collect()
}

/// Every good file has one fingerprint, inserted once and never updated; every broken one one
/// failure; no claims left; status agrees.
fn assert_complete(lib: &Lib) {
    assert_eq!(lib.count("SELECT COUNT(*) FROM claims"), 0, "claims left");
    let rows = rows(&lib.url);
    assert_eq!(rows.len(), lib.good.len() + lib.broken.len());
    for p in &lib.good {
        assert_eq!(
            rows[p],
            (1, 1, 0, 0),
            "{}: (rows, inserts, updates, failures)",
            p.display()
        );
    }
    for p in &lib.broken {
        assert_eq!(rows[p], (0, 0, 0, 1), "{}", p.display());
    }
    let st = lib.status();
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["fingerprinted_current"], lib.good.len(), "{st}");
    assert_eq!(st["failed"], lib.broken.len(), "{st}");
}

#[test]
fn scan_run_status_and_failures_against_postgres() {
    let lib = Lib::new("basic", 10);
    let st = lib.status();
    assert_eq!(
        (st["tracks"].as_u64(), st["pending"].as_u64()),
        (Some(12), Some(12)),
        "{st}"
    );
    assert!(
        st["db_path"].as_str().unwrap().starts_with("postgres://"),
        "{st}"
    );
    let out = ok(lib.sono(&["run", "--jobs", "2"]));
    assert!(
        out.contains("Run finished: 10 completed, 2 failed"),
        "{out}"
    );
    let st = lib.status();
    assert_eq!(st["fingerprinted_current"], 10, "{st}");
    assert_eq!(st["failed_by_class"]["empty"], 1, "{st}");
    assert_eq!(st["last_run"]["status"], "finished", "{st}");
    assert_eq!(st["runners"].as_array().map(Vec::len), Some(0), "{st}");
    let text = ok(lib.sono(&["status"]));
    assert!(text.contains("Fingerprinted         10"), "{text}");
    let failures: Value = serde_json::from_str(&ok(lib.sono(&["failures", "--json"]))).unwrap();
    let list = failures.as_array().unwrap();
    assert_eq!(list.len(), 2, "{failures}");
    assert_eq!(list[0]["class"], "empty");
    assert_eq!(list[0]["path"], lib.broken[0].to_str().unwrap());
    assert_eq!(list[1]["class"], "not_audio");
    // The database holds what status says, in the Auralis-compatible table.
    assert_eq!(
        lib.count("SELECT COUNT(*) FROM track_fingerprints WHERE fingerprint_version = 1"),
        10
    );
    // Nothing left to do; the graph and similar work on the same database.
    let again = ok(lib.sono(&["run"]));
    assert!(again.contains("Nothing to do"), "{again}");
    let g = ok(lib.sono(&["graph", "--k", "2"]));
    assert!(g.contains("postgres://"), "{g}");
    assert_eq!(lib.count("SELECT COUNT(*) FROM similarity_graph"), 20);
    let sim = ok(lib.sono(&[
        "similar",
        lib.good[0].to_str().unwrap(),
        "-n",
        "2",
        "--json",
    ]));
    assert!(sim.contains("tone-001") || sim.contains("tone-00"), "{sim}");

    // The environment variable selects the database too.
    let out = common::command(&lib.data, &["status", "--json"])
        .env("SONOPRINT_DATABASE_URL", &lib.url)
        .output()
        .unwrap();
    let st: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(st["fingerprinted_current"], 10, "{st}");
}

#[test]
fn the_password_is_not_shown() {
    let url = pg_database("pw");
    let mut c = pg(&url);
    let role = format!("sono_pw_{}", std::process::id());
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 's3cretpw' SUPERUSER"
    ))
    .unwrap();
    let with_pw = url.replacen("://", &format!("://{role}:s3cretpw@"), 1);
    // Strip a user the server URL may already carry (user@host).
    let with_pw = match with_pw.split_once('@') {
        Some((a, b)) if b.contains('@') => format!("{a}@{}", b.split_once('@').unwrap().1),
        _ => with_pw,
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = sono(tmp.path(), &with_pw, &["status"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains(&format!("{role}@")), "{all}");
    assert!(!all.contains("s3cretpw"), "{all}");
}

#[test]
fn kill_9_at_random_moments_then_finish() {
    let lib = Lib::new("kill", BIG);
    install_write_log(&lib.url);
    let mut killed_running = 0;
    let mut rng = Rng(0x5eed_0f50_0f9a_1e01);
    for round in 0..4 {
        let mut child = spawn(&lib.data, &lib.url, &["run", "--jobs", "2"]);
        let so_far = lib.count("SELECT COUNT(*) FROM track_fingerprints");
        let left = (lib.good.len() as i64 - so_far).max(1) as u64;
        let target = so_far + rng.range(1, (left / 5).max(2)) as i64;
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none()
            && lib.count("SELECT COUNT(*) FROM track_fingerprints") < target
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
        eprintln!(
            "kill {round} at {target}+ results and {wait} ms ({status}): {} fingerprints, {} claims",
            lib.count("SELECT COUNT(*) FROM track_fingerprints"),
            lib.count("SELECT COUNT(*) FROM claims"),
        );
    }
    assert!(
        killed_running >= 3,
        "only {killed_running} of 4 kills hit a running `run`: the library is too small"
    );
    let written = lib.count("SELECT COUNT(*) FROM track_fingerprints");
    assert!(written > 0 && written < lib.good.len() as i64, "{written}");
    // The killed runs' claims are taken over at once (same host, pid gone), not after the lease.
    let started = Instant::now();
    let out = ok(lib.sono(&["run", "--jobs", "2"]));
    assert!(out.contains("Run finished"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the final run waited for leases"
    );
    assert_complete(&lib);
}

#[test]
fn two_runners_at_once_never_compute_the_same_track() {
    let lib = Lib::new("two", BIG);
    install_write_log(&lib.url);
    let start = || {
        cmd(&lib.data, &lib.url, &["run", "--jobs", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (
        ok(a.wait_with_output().unwrap()),
        ok(b.wait_with_output().unwrap()),
    );
    assert_complete(&lib);
    let runs: Vec<(i64, i64, i64, String)> = pg(&lib.url)
        .query(
            "SELECT completed, failed, skipped, status FROM runs ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (completed, _, skipped, status) in &runs {
        assert_eq!(status, "finished", "{runs:?}");
        assert!(*completed > 0, "one runner did nothing: {runs:?}\n{a}\n{b}");
        assert_eq!(*skipped, 0, "a result was computed by both: {runs:?}");
    }
    assert_eq!(runs.iter().map(|r| r.0).sum::<i64>(), lib.good.len() as i64);
    assert_eq!(
        runs.iter().map(|r| r.1).sum::<i64>(),
        lib.broken.len() as i64
    );
    // The runners' own counters agree with the runs.
    assert_eq!(
        lib.count("SELECT SUM(done + failed)::int8 FROM runners"),
        (lib.good.len() + lib.broken.len()) as i64
    );
}

#[test]
fn path_maps_keep_one_canonical_path_and_leave_missing_files_to_other_machines() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    // The canonical folder exists nowhere here; machine A sees the music at a/, machine B has
    // its own copy at b/ (same sizes and times, as another mount of the same share), machine C
    // has an empty folder.
    let canon = Path::new("/srv/sonoprint-canonical-music");
    let a = root.join("a");
    fs::create_dir_all(a.join("x")).unwrap();
    for i in 0..10 {
        wav(
            &a.join("x").join(format!("t{i}.wav")),
            1.5,
            200.0 + 50.0 * i as f64,
        );
    }
    let b = root.join("b");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(cp.success());
    let c = root.join("c");
    fs::create_dir_all(&c).unwrap();
    let url = pg_database("map");
    let data = root.join("data");
    let map = |local: &Path| format!("{}={}", canon.display(), local.display());
    let run_on = |local: &Path, args: &[&str]| {
        let m = map(local);
        let mut all = vec!["--path-map", m.as_str()];
        all.extend_from_slice(args);
        sono(&data, &url, &all)
    };
    let out = ok(run_on(&a, &["scan", a.to_str().unwrap()]));
    assert!(out.contains("added 10,"), "{out}");
    let stored: Vec<String> = pg(&url)
        .query("SELECT filepath FROM tracks ORDER BY filepath", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 10);
    for p in &stored {
        assert!(p.starts_with("/srv/sonoprint-canonical-music/x/t"), "{p}");
    }
    // A rescan from another machine's mount finds the same tracks unchanged.
    let out = ok(run_on(&b, &["scan", b.to_str().unwrap()]));
    assert!(
        out.contains("added 0,") && out.contains("unchanged 10"),
        "{out}"
    );

    // Machine C has none of the files: nothing is written, no failure, every claim handed back.
    let out = ok(run_on(&c, &["run", "--jobs", "1"]));
    assert!(
        out.contains("10 not found here under the path map"),
        "{out}"
    );
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM failures"), 0);
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM track_fingerprints"), 0);
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM claims"), 0);
    // Machine B does them, through its own mount.
    let out = ok(run_on(&b, &["run", "--jobs", "2"]));
    assert!(
        out.contains("Run finished: 10 completed, 0 failed"),
        "{out}"
    );
    // Paths shown are local to the machine asking; lookups by a local path work.
    ok(run_on(&b, &["graph", "--k", "2"]));
    let q = b.join("x/t0.wav");
    let sim = ok(run_on(
        &b,
        &["similar", q.to_str().unwrap(), "-n", "2", "--json"],
    ));
    assert!(sim.contains(b.join("x/t").to_str().unwrap()), "{sim}");
    assert!(!sim.contains("/srv/sonoprint-canonical-music"), "{sim}");
}

#[test]
fn a_database_of_a_newer_sonoprint_is_refused() {
    let lib = Lib::new("newer", 1);
    pg(&lib.url)
        .batch_execute("UPDATE sonoprint_meta SET value = 999 WHERE key = 'schema_version'")
        .unwrap();
    let out = lib.sono(&["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("newer sonoprint") && err.contains("999"),
        "{err}"
    );
    // Not migrated, not written.
    assert_eq!(
        lib.count("SELECT value FROM sonoprint_meta WHERE key = 'schema_version'"),
        999
    );
    let run = lib.sono(&["run"]);
    assert!(!run.status.success());
    assert_eq!(lib.count("SELECT COUNT(*) FROM runs"), 0);
    let _ = &lib.root;
}

/// Every row of the tables `copy` carries, as text, from a SQLite library.
fn sqlite_rows(db: &Path) -> Vec<(String, Vec<Vec<String>>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let dims = dimension_names();
    let queries = [
        (
            "tracks",
            "SELECT id, title, filepath, duration, sample_rate, channels, format, filesize, \
             mtime_ns, state FROM tracks ORDER BY id"
                .to_string(),
        ),
        (
            "track_fingerprints",
            format!(
                "SELECT track_id, {dims}, fingerprint_version, filesize, mtime_ns, mode, decoder, \
                 analyzed_sec, computed_ms FROM track_fingerprints ORDER BY track_id"
            ),
        ),
        (
            "failures",
            "SELECT track_id, class, message, decoders, attempts, filesize, mtime_ns, first_at, \
             last_at FROM failures ORDER BY track_id"
                .to_string(),
        ),
        ("roots", "SELECT path FROM roots ORDER BY path".to_string()),
        (
            "similarity_graph",
            "SELECT track_id, similar_track_id, distance, similarity_score, rank \
             FROM similarity_graph ORDER BY track_id, rank"
                .to_string(),
        ),
        (
            "similarity_model",
            "SELECT model, model_id, k, fitted_on, built_at FROM similarity_model".to_string(),
        ),
        (
            "similarity_nodes",
            "SELECT track_id, digest FROM similarity_nodes ORDER BY track_id".to_string(),
        ),
    ];
    queries
        .iter()
        .map(|(name, sql)| {
            let mut stmt = c.prepare(sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            (name.to_string(), rows)
        })
        .collect()
}

fn dimension_names() -> String {
    sonoprint_engine::Fingerprint::NAMES.join(", ")
}

#[test]
fn copy_sqlite_to_postgres_to_sqlite_gives_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let music = root.join("music");
    fs::create_dir_all(&music).unwrap();
    for i in 0..12 {
        wav(
            &music.join(format!("t{i:02}.wav")),
            1.5,
            150.0 + 40.0 * i as f64,
        );
    }
    fs::write(music.join("empty.flac"), b"").unwrap();
    let (d1, d2) = (root.join("one"), root.join("two"));
    ok(common::sonoprint(&d1, &["scan", music.to_str().unwrap()]));
    ok(common::sonoprint(&d1, &["run", "--jobs", "2"]));
    ok(common::sonoprint(&d1, &["graph", "--k", "3"]));
    let url = pg_database("copy");
    let (db1, db2) = (d1.join("library.db"), d2.join("library.db"));
    let out = ok(common::sonoprint(
        &d1,
        &["copy", "--from", db1.to_str().unwrap(), "--to", &url],
    ));
    assert!(
        out.contains("13 tracks, 12 fingerprints, 1 failures, 36 similarity graph rows"),
        "{out}"
    );
    // The PostgreSQL library answers like the original.
    let st: Value = serde_json::from_str(&ok(sono(&d1, &url, &["status", "--json"]))).unwrap();
    assert_eq!(
        (st["fingerprinted_current"].as_u64(), st["failed"].as_u64()),
        (Some(12), Some(1))
    );
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM similarity_graph"), 36);
    // Copying into a library that has tracks is refused, and changes nothing.
    let again = common::sonoprint(
        &d1,
        &["copy", "--from", db1.to_str().unwrap(), "--to", &url],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty library"));
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM tracks"), 13);
    ok(common::sonoprint(
        &d2,
        &["copy", "--from", &url, "--to", db2.to_str().unwrap()],
    ));
    let (a, b) = (sqlite_rows(&db1), sqlite_rows(&db2));
    for ((name, ra), (_, rb)) in a.iter().zip(&b) {
        assert!(!ra.is_empty(), "{name}: nothing to compare");
        assert_eq!(
            ra, rb,
            "{name} differs after SQLite -> PostgreSQL -> SQLite"
        );
    }
    // A new track added in PostgreSQL gets an id past the copied ones.
    wav(&music.join("new.wav"), 1.5, 999.0);
    ok(sono(&d1, &url, &["scan", music.to_str().unwrap()]));
    assert_eq!(pg_count(&url, "SELECT MAX(id) FROM tracks"), 14);
}
