//! `sonoprint run` as the real binary on generated libraries, against a real SQLite file that
//! the tests inspect with rusqlite: kill -9 at random moments, two runners at once, a failing
//! result write, changed files and unchanged failures, a decoder stuck for ever, `--max-tracks`.
//!
//! "Computed twice after it was written" is observed with a write log the tests add to the
//! database: triggers on `track_fingerprints` append one row per INSERT and per UPDATE to a
//! table of their own, inside the writing transaction (so a write rolled back by a kill leaves
//! no log row either). A track whose result is written again shows an UPDATE there. The
//! `created_at`/`updated_at` columns only have 1 s resolution, too coarse to prove it alone.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

/// WAVs in the libraries of the kill and two-runner tests: enough that a run with 2 jobs
/// lasts several seconds, longer than the kills leave it together (an optimised build
/// analyses a 3 s file in about 30 ms).
const BIG: usize = 400;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/tests/fixtures");

mod common;
use common::{command, ok, sonoprint, Rng};

fn spawn(data: &Path, args: &[&str]) -> Child {
    command(data, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn status_json(data: &Path) -> Value {
    serde_json::from_str(&ok(sonoprint(data, &["status", "--json"]))).unwrap()
}

/// A mono 16-bit WAV of `secs` seconds of a tone.
fn wav(path: &Path, secs: f64, freq: f64) {
    let rate = 22050u32;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(secs * rate as f64) as usize {
        let t = i as f64 / rate as f64;
        let s = (t * freq * std::f64::consts::TAU).sin() * 0.6
            + (t * freq * 2.01 * std::f64::consts::TAU).sin() * 0.2;
        w.write_sample((s * 12000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

struct Lib {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    /// Files every decoder path can read: each must end with one fingerprint.
    good: Vec<PathBuf>,
    /// Files that must end with one failure row and no fingerprint.
    broken: Vec<PathBuf>,
}

impl Lib {
    /// `wavs` tones of 2–4 s, plus (with `extras`) copies of the FLAC, MP3, OGG, M4A fixtures
    /// and three broken files: an empty FLAC, a FLAC cut after 300 bytes, a 0.5 s WAV.
    fn new(wavs: usize, extras: bool) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let dir = root.join("lib");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let mut good = Vec::new();
        let mut broken = Vec::new();
        for i in 0..wavs {
            let sub = if i % 3 == 0 { "sub" } else { "" };
            let p = dir.join(sub).join(format!("tone-{i:02}.wav"));
            wav(&p, 2.0 + (i % 5) as f64 * 0.5, 110.0 + 37.0 * i as f64);
            good.push(p);
        }
        if extras {
            for f in [
                "flac-16bit.flac",
                "mp3-cbr-id3.mp3",
                "mp3-vbr.mp3",
                "vorbis.ogg",
                "aac.m4a",
                "alac-mono.m4a",
            ] {
                let p = dir.join(format!("fixture-{f}"));
                fs::copy(Path::new(FIXTURES).join(f), &p).unwrap();
                good.push(p);
            }
            let empty = dir.join("empty.flac");
            fs::write(&empty, b"").unwrap();
            let flac = fs::read(Path::new(FIXTURES).join("flac-16bit.flac")).unwrap();
            let cut = dir.join("truncated.flac");
            fs::write(&cut, &flac[..300]).unwrap();
            let short = dir.join("short.wav");
            wav(&short, 0.5, 440.0);
            broken.extend([empty, cut, short]);
        }
        let data = root.join("data");
        let lib = Lib {
            _tmp: tmp,
            root,
            dir,
            data,
            good,
            broken,
        };
        let out = ok(sonoprint(&lib.data, &["scan", lib.dir.to_str().unwrap()]));
        let n = lib.good.len() + lib.broken.len();
        assert!(out.contains(&format!("added {n},")), "{out}");
        lib
    }

    fn db(&self) -> Connection {
        let c = Connection::open(self.data.join("library.db")).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        sonoprint(&self.data, &all)
    }
}

/// Logs every INSERT and UPDATE of `track_fingerprints` into `test_fp_writes`.
fn install_write_log(db: &Connection) {
    db.execute_batch(
        "CREATE TABLE test_fp_writes (track_id INTEGER NOT NULL, op TEXT NOT NULL);
         CREATE TRIGGER test_fp_insert AFTER INSERT ON track_fingerprints
           BEGIN INSERT INTO test_fp_writes VALUES (new.track_id, 'insert'); END;
         CREATE TRIGGER test_fp_update AFTER UPDATE ON track_fingerprints
           BEGIN INSERT INTO test_fp_writes VALUES (new.track_id, 'update'); END;",
    )
    .unwrap();
}

/// (inserts, updates) per file path, from the write log.
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

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn integrity(db: &Connection) -> String {
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Per path: (fingerprint rows, fingerprint_version, created_at == updated_at, failure rows,
/// failure attempts).
#[derive(Debug, Default, Clone, PartialEq)]
struct Row {
    fingerprints: i64,
    version: Option<i64>,
    same_times: Option<bool>,
    failures: i64,
    attempts: Option<i64>,
}

fn rows(db: &Connection) -> HashMap<PathBuf, Row> {
    let mut stmt = db
        .prepare(
            "SELECT t.filepath,
               (SELECT COUNT(*) FROM track_fingerprints f WHERE f.track_id = t.id),
               (SELECT MAX(fingerprint_version) FROM track_fingerprints f WHERE f.track_id = t.id),
               (SELECT MIN(created_at = updated_at) FROM track_fingerprints f WHERE f.track_id = t.id),
               (SELECT COUNT(*) FROM failures fl WHERE fl.track_id = t.id),
               (SELECT MAX(attempts) FROM failures fl WHERE fl.track_id = t.id)
             FROM tracks t",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            PathBuf::from(r.get::<_, String>(0)?),
            Row {
                fingerprints: r.get(1)?,
                version: r.get(2)?,
                same_times: r.get(3)?,
                failures: r.get(4)?,
                attempts: r.get(5)?,
            },
        ))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// The end state every complete run must leave: one current fingerprint per good file, computed
/// and written once; one failure (one attempt) per broken file and no fingerprint; no claims
/// left; a sound database file.
fn assert_complete(lib: &Lib, db: &Connection) {
    assert_eq!(integrity(db), "ok");
    assert_eq!(count(db, "SELECT COUNT(*) FROM claims"), 0, "claims left");
    let rows = rows(db);
    let writes = writes(db);
    assert_eq!(rows.len(), lib.good.len() + lib.broken.len());
    for p in &lib.good {
        let r = &rows[p];
        assert_eq!(r.fingerprints, 1, "{}: {r:?}", p.display());
        assert_eq!(r.version, Some(1), "{}", p.display());
        assert_eq!(r.same_times, Some(true), "{}: rewritten", p.display());
        assert_eq!(r.failures, 0, "{}: {r:?}", p.display());
        assert_eq!(
            writes.get(p),
            Some(&(1, 0)),
            "{}: (inserts, updates) of its fingerprint",
            p.display()
        );
    }
    for p in &lib.broken {
        let r = &rows[p];
        assert_eq!(r.fingerprints, 0, "{}: {r:?}", p.display());
        assert_eq!(r.failures, 1, "{}: {r:?}", p.display());
        assert_eq!(
            r.attempts,
            Some(1),
            "{}: failure recorded again",
            p.display()
        );
        assert!(!writes.contains_key(p));
    }
    let st = status_json(&lib.data);
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["fingerprinted_current"], lib.good.len(), "{st}");
    assert_eq!(st["failed"], lib.broken.len(), "{st}");
}

#[test]
fn kill_9_at_random_moments_then_finish() {
    let lib = Lib::new(BIG, true);
    install_write_log(&lib.db());
    let mut killed_running = 0;
    let mut rng = Rng(0x5eed_0f50_0f9a_1e00);
    for round in 0..4 {
        let mut child = spawn(&lib.data, &["run", "--jobs", "2"]);
        // Kill at a random moment while the run writes: once it has written a random number of
        // results more (a share of what is left), plus a random few milliseconds, whatever the
        // machine's speed (fixed waits killed before the first write on a loaded machine).
        let so_far = count(&lib.db(), "SELECT COUNT(*) FROM track_fingerprints");
        let left = (lib.good.len() as i64 - so_far).max(1) as u64;
        let target = so_far + rng.range(1, (left / 5).max(2)) as i64;
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none()
            && count(&lib.db(), "SELECT COUNT(*) FROM track_fingerprints") < target
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
        let db = lib.db();
        assert_eq!(integrity(&db), "ok", "after kill {round}");
        eprintln!(
            "kill {round} at {target}+ results and {wait} ms ({status}): {} fingerprints, {} failures, {} claims",
            count(&db, "SELECT COUNT(*) FROM track_fingerprints"),
            count(&db, "SELECT COUNT(*) FROM failures"),
            count(&db, "SELECT COUNT(*) FROM claims"),
        );
    }
    assert!(
        killed_running >= 3,
        "only {killed_running} of 4 kills hit a running `run`: the library is too small"
    );
    let db = lib.db();
    let written = count(&db, "SELECT COUNT(*) FROM track_fingerprints");
    assert!(written > 0 && written < lib.good.len() as i64, "{written}");
    // The killed runs left their claims behind; the next run takes them over at once (their
    // pid is gone), without waiting for the lease to expire.
    let started = Instant::now();
    let out = ok(lib.run(&["--jobs", "2"]));
    assert!(out.contains("Run finished"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the final run waited for leases"
    );
    assert_complete(&lib, &lib.db());
}

#[test]
fn two_runners_at_once_never_compute_the_same_track() {
    let lib = Lib::new(BIG, true);
    install_write_log(&lib.db());
    let start = || {
        command(&lib.data, &["run", "--jobs", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (a, b) = (ok(a), ok(b));
    let db = lib.db();
    assert_complete(&lib, &db);
    let runs: Vec<(i64, i64, i64, String)> = db
        .prepare("SELECT completed, failed, skipped, status FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (completed, _, skipped, status) in &runs {
        assert_eq!(status, "finished", "{runs:?}");
        assert!(*completed > 0, "one runner did nothing: {runs:?}\n{a}\n{b}");
        assert_eq!(*skipped, 0, "a result was computed by both: {runs:?}");
    }
    assert_eq!(
        runs.iter().map(|r| r.0).sum::<i64>(),
        lib.good.len() as i64,
        "{runs:?}"
    );
    assert_eq!(
        runs.iter().map(|r| r.1).sum::<i64>(),
        lib.broken.len() as i64,
        "{runs:?}"
    );
}

#[test]
fn a_failing_result_write_stops_the_run_and_writes_nothing_half() {
    let lib = Lib::new(6, false);
    // A write that fails inside SQLite. A read-only database file would be the obvious
    // simulation, but these tests may run as root, whom file permissions do not stop; a trigger
    // that aborts every fingerprint INSERT fails the same statement on every account.
    lib.db()
        .execute_batch(
            "CREATE TRIGGER test_fail_write BEFORE INSERT ON track_fingerprints
               BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
        )
        .unwrap();
    let out = lib.run(&["--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 despite the failed write");
    assert!(
        stderr.contains("cannot write") && stderr.contains("simulated write failure"),
        "the error does not name the write: {stderr}"
    );
    let db = lib.db();
    assert_eq!(integrity(&db), "ok");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM track_fingerprints"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM failures"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM claims"), 0, "claims left");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'failed'"),
        1
    );
    assert_eq!(status_json(&lib.data)["pending"], 6);

    db.execute_batch("DROP TRIGGER test_fail_write").unwrap();
    install_write_log(&db);
    ok(lib.run(&["--jobs", "2"]));
    assert_complete(&lib, &db);
}

#[test]
fn changed_file_is_recomputed_and_unchanged_failure_is_not_retried() {
    let lib = Lib::new(5, true);
    let db = lib.db();
    ok(lib.run(&["--jobs", "2"]));
    install_write_log(&db);
    let fp =
        |p: &Path| -> (Vec<f64>, i64, String) {
            db.query_row(
            "SELECT f.spectral_centroid, f.tempo_bpm, f.lufs, f.bass_pct, f.filesize, f.updated_at
             FROM track_fingerprints f JOIN tracks t ON t.id = f.track_id WHERE t.filepath = ?1",
            [p.to_str().unwrap()],
            |r| Ok((vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?], r.get(4)?, r.get(5)?)),
        )
        .unwrap()
        };
    let before: HashMap<PathBuf, _> = lib.good.iter().map(|p| (p.clone(), fp(p))).collect();

    // Rewrite one file with other content and another size; let the 1 s `updated_at` clock
    // tick so that a rewrite of any other row would show.
    let changed = &lib.good[1];
    std::thread::sleep(Duration::from_millis(1100));
    wav(changed, 3.7, 1234.0);
    let new_size = fs::metadata(changed).unwrap().len() as i64;
    assert_ne!(new_size, before[changed].1);
    let out = ok(sonoprint(&lib.data, &["scan", lib.dir.to_str().unwrap()]));
    assert!(out.contains("updated 1,"), "{out}");
    assert_eq!(status_json(&lib.data)["pending"], 1);

    let out = ok(lib.run(&["--jobs", "2"]));
    assert!(out.contains("1 completed, 0 failed"), "{out}");
    let w = writes(&db);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w.get(changed), Some(&(0, 1)));
    for p in &lib.good {
        let now = fp(p);
        if p == changed {
            assert_ne!(now.0, before[p].0, "the fingerprint did not change");
            assert_eq!(now.1, new_size);
        } else {
            assert_eq!(now, before[p], "{} was rewritten", p.display());
        }
    }
    let attempts = |db: &Connection| -> Vec<i64> {
        lib.broken
            .iter()
            .map(|p| {
                db.query_row(
                    "SELECT fl.attempts FROM failures fl JOIN tracks t ON t.id = fl.track_id
                     WHERE t.filepath = ?1",
                    [p.to_str().unwrap()],
                    |r| r.get(0),
                )
                .unwrap()
            })
            .collect()
    };
    assert_eq!(attempts(&db), vec![1; lib.broken.len()]);

    // Nothing left to do: the failures are not retried...
    ok(lib.run(&["--jobs", "2"]));
    assert_eq!(attempts(&db), vec![1; lib.broken.len()]);
    // ...unless asked.
    let out = ok(lib.run(&["--jobs", "2", "--retry-failed"]));
    assert!(
        out.contains(&format!("0 completed, {} failed", lib.broken.len())),
        "{out}"
    );
    assert_eq!(attempts(&db), vec![2; lib.broken.len()]);
    assert_eq!(writes(&db).len(), 1, "a fingerprint was rewritten");
}

/// Whether `pid` still runs (a zombie counts as gone).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 1..].trim_start().chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

#[test]
fn a_decoder_stuck_for_ever_is_stopped_at_the_time_limit() {
    let lib = Lib::new(3, false);
    // Only ffmpeg reads WMA: point sonoprint at an "ffmpeg" (and the "ffprobe" beside it,
    // which is called first) that never answers and never ends. They note their pids so the
    // test can tell whether they outlive the run (and end them if so).
    let stuck = lib.dir.join("stuck.wma");
    fs::copy(Path::new(FIXTURES).join("wma.wma"), &stuck).unwrap();
    let out = ok(sonoprint(&lib.data, &["scan", lib.dir.to_str().unwrap()]));
    assert!(out.contains("added 1,"), "{out}");
    let bin = lib.root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let pids = lib.root.join("stuck.pids");
    for name in ["ffmpeg", "ffprobe"] {
        let p = bin.join(name);
        fs::write(
            &p,
            format!(
                "#!/bin/sh\necho $$ >> '{}'\nwhile :; do sleep 1; done\n",
                pids.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    let started = Instant::now();
    let out = command(&lib.data, &["run", "--jobs", "2", "--timeout", "2"])
        .env("SONOPRINT_FFMPEG", bin.join("ffmpeg"))
        .output()
        .unwrap();
    let wall = started.elapsed();
    let survivors: Vec<u32> = fs::read_to_string(&pids)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    // Give a killed process group a moment to go, then note who is left and end them.
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<u32> = survivors.iter().copied().filter(|&p| running(p)).collect();
    for &p in &left {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .status();
    }
    let out = ok(out);
    assert!(out.contains("3 completed, 1 failed (timeout: 1)"), "{out}");
    assert!(wall < Duration::from_secs(10), "took {wall:?}");
    assert!(!survivors.is_empty(), "the stuck decoder never ran");
    assert!(
        left.is_empty(),
        "the stuck decoder process(es) {left:?} outlived the run"
    );
    let f: Value = serde_json::from_str(&ok(sonoprint(
        &lib.data,
        &["failures", "--class", "timeout", "--json"],
    )))
    .unwrap();
    assert!(f.to_string().contains("stuck.wma"), "{f}");
    let db = lib.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM track_fingerprints"), 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM claims"), 0);
}

#[test]
fn max_tracks_writes_exactly_that_many() {
    let lib = Lib::new(6, false);
    let out = ok(lib.run(&["--jobs", "2", "--max-tracks", "3"]));
    assert!(out.contains("3 completed, 0 failed"), "{out}");
    let db = lib.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM track_fingerprints"), 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM claims"), 0);
    let st = status_json(&lib.data);
    assert_eq!(st["fingerprinted_current"], 3, "{st}");
    assert_eq!(st["pending"], 3, "{st}");
    assert_eq!(st["last_run"]["completed"], 3, "{st}");
    assert_eq!(st["last_run"]["status"], "finished", "{st}");
}
