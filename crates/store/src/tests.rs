//! Unit tests on real database files in temporary folders.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use sonoprint_core::{Analysis, ErrorClass, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};

use super::*;

const LONG: Duration = Duration::from_secs(600);

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("library.db");
    (dir, path)
}

fn file(i: usize, size: u64, mtime_ns: i64) -> ScannedFile {
    ScannedFile {
        path: PathBuf::from(format!("/music/a/{i:05}.flac")),
        filesize: size,
        mtime_ns,
        title: Some(format!("Song {i}")),
    }
}

/// A store with `n` scanned tracks under /music.
fn library(path: &Path, n: usize) -> Store {
    let mut s = Store::open(path).unwrap();
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    let files: Vec<_> = (0..n).map(|i| file(i, 1000 + i as u64, 7)).collect();
    let c = s.upsert_scanned(&scan, &files).unwrap();
    assert_eq!(c.added, n as u64);
    s.finish_scan(&scan, &[]).unwrap();
    s
}

fn analysis(seed: f64) -> Analysis {
    let mut values = [0.0; 25];
    for (i, v) in values.iter_mut().enumerate() {
        *v = seed + i as f64 / 100.0;
    }
    Analysis {
        fingerprint: Fingerprint::from_array(values),
        metadata: Metadata {
            duration_sec: 200.0,
            sample_rate: 44100,
            channels: 2,
            bits_per_sample: Some(16),
            format: "flac".into(),
            codec: "flac".into(),
            analyzed_sec: 90.0,
            mode: Mode::Excerpt,
            decoder: "symphonia".into(),
            fingerprint_version: FINGERPRINT_VERSION,
            access: "seek".into(),
            duration_known: true,
            truncated: false,
            skipped_packets: 0,
        },
    }
}

fn done(job: &Job) -> Outcome {
    Outcome::Done {
        job: job.clone(),
        analysis: analysis(job.track_id.0 as f64),
        computed_ms: 5,
    }
}

fn failed(job: &Job) -> Outcome {
    Outcome::Failed {
        job: job.clone(),
        class: ErrorClass::Corrupt,
        message: "broken stream".into(),
        decoders: vec!["symphonia".into(), "ffmpeg".into()],
    }
}

fn count(s: &Store, sql: &str) -> i64 {
    s.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A pid that existed and is gone: a child that ran and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn migrations_are_idempotent_and_newer_databases_refused() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let s = Store::open(&path).unwrap();
    assert_eq!(count(&s, "PRAGMA user_version"), SCHEMA_VERSION);
    let mode: String = s
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&s, "PRAGMA foreign_keys"), 1);
    drop(s);

    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    match Store::open(&path) {
        Err(e @ StoreError::TooNew { .. }) => {
            assert!(e.to_string().contains("newer sonoprint"), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[test]
fn track_fingerprints_is_auralis_compatible() {
    let (_dir, path) = temp_db();
    let s = Store::open(&path).unwrap();
    let mut stmt = s
        .conn()
        .prepare("PRAGMA table_info(track_fingerprints)")
        .unwrap();
    // (name, type, notnull, pk)
    let cols: Vec<(String, String, bool, bool)> = stmt
        .query_map([], |r| {
            Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(5)? > 0))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut expected: Vec<(String, String, bool, bool)> = vec![
        ("id".into(), "INTEGER".into(), false, true),
        ("track_id".into(), "INTEGER".into(), true, false),
    ];
    for n in Fingerprint::NAMES {
        expected.push((n.into(), "REAL".into(), true, false));
    }
    expected.push(("fingerprint_version".into(), "INTEGER".into(), true, false));
    assert_eq!(cols[..expected.len()], expected[..]);
    assert_eq!(cols[expected.len()].0, "created_at");
    assert_eq!(cols[expected.len() + 1].0, "updated_at");
    // sonoprint's own columns come after, and are nullable, so Auralis-style inserts still work.
    assert!(cols[expected.len() + 2..].iter().all(|c| !c.2 && !c.3));

    let fk: (String, String, String) = s
        .conn()
        .query_row(
            "SELECT \"table\", \"from\", on_delete FROM pragma_foreign_key_list('track_fingerprints')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(fk, ("tracks".into(), "track_id".into(), "CASCADE".into()));
    // track_id is UNIQUE: a second row for one track is refused.
    s.conn()
        .execute("INSERT INTO tracks (filepath) VALUES ('/x.flac')", [])
        .unwrap();
    let cols = Fingerprint::NAMES.join(", ");
    let vals = vec!["0"; 25].join(", ");
    let insert = format!(
        "INSERT INTO track_fingerprints (track_id, {cols}, fingerprint_version) VALUES (1, {vals}, 1)"
    );
    s.conn().execute(&insert, []).unwrap();
    assert!(s.conn().execute(&insert, []).is_err());
    // Without fingerprint_version the insert fails loudly (the Auralis bug cannot be silent).
    let without = format!("INSERT INTO track_fingerprints (track_id, {cols}) VALUES (1, {vals})");
    assert!(s.conn().execute(&without, []).is_err());
    let tracks: Vec<String> = s
        .conn()
        .prepare("SELECT name FROM pragma_table_info('tracks')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for c in [
        "id",
        "title",
        "filepath",
        "duration",
        "sample_rate",
        "channels",
        "format",
        "filesize",
    ] {
        assert!(tracks.iter().any(|t| t == c), "tracks lacks {c}");
    }
}

#[test]
fn scan_counts_added_updated_unchanged_missing_revived() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 3);
    assert_eq!(s.roots().unwrap(), vec![PathBuf::from("/music")]);
    // One changed, one gone, one unchanged; a folder outside the root is not touched.
    let other = s.begin_scan(&[PathBuf::from("/other")]).unwrap();
    s.upsert_scanned(
        &other,
        &[ScannedFile {
            path: "/other/x.mp3".into(),
            filesize: 1,
            mtime_ns: 1,
            title: None,
        }],
    )
    .unwrap();
    s.finish_scan(&other, &[]).unwrap();

    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    let mut changed = file(0, 1000, 8);
    changed.title = None;
    let c = s
        .upsert_scanned(&scan, &[changed, file(1, 1001, 7)])
        .unwrap();
    assert_eq!((c.added, c.updated, c.unchanged, c.revived), (0, 1, 1, 0));
    assert_eq!(s.finish_scan(&scan, &[]).unwrap(), 1);
    let st = s.status().unwrap();
    assert_eq!((st.tracks, st.present, st.missing), (4, 3, 1));
    // A title of None keeps the stored one.
    let t0 = s.track(TrackId(1)).unwrap().unwrap();
    assert_eq!(t0.title.as_deref(), Some("Song 0"));

    // The vanished file comes back.
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    let c = s
        .upsert_scanned(
            &scan,
            &[file(0, 1000, 8), file(1, 1001, 7), file(2, 1002, 7)],
        )
        .unwrap();
    assert_eq!((c.updated, c.unchanged, c.revived), (0, 2, 1));
    assert_eq!(s.finish_scan(&scan, &[]).unwrap(), 0);

    // An unreadable folder does not make its files missing.
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    assert_eq!(
        s.finish_scan(&scan, &[PathBuf::from("/music/a")]).unwrap(),
        0
    );
    assert_eq!(s.status().unwrap().missing, 0);
    let known = s.known_files(Path::new("/music")).unwrap();
    assert_eq!(known.len(), 3);
    assert_eq!(known[Path::new("/music/a/00000.flac")].mtime_ns, Some(8));
}

#[test]
fn missing_files_keep_their_fingerprints() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 2);
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 10, LONG, &ClaimOptions::default()).unwrap();
    s.record(&r, &jobs.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    s.upsert_scanned(&scan, &[file(1, 1001, 7)]).unwrap();
    assert_eq!(s.finish_scan(&scan, &[]).unwrap(), 1);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM track_fingerprints"), 2);
    let t = s.track(TrackId(1)).unwrap().unwrap();
    assert_eq!(t.state, TrackState::Missing);
    assert!(t.fingerprint.is_some());
    let st = s.status().unwrap();
    assert_eq!(
        (st.fingerprinted_current, st.pending, st.missing),
        (1, 0, 1)
    );
}

#[test]
fn claims_never_hand_a_track_to_two_runners() {
    let (_dir, path) = temp_db();
    drop(library(&path, 400));
    for round in 0..5 {
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut s = Store::open(&path).unwrap();
                    let r = RunnerId::for_this_process();
                    let mut got = Vec::new();
                    loop {
                        let jobs = s.claim(&r, 7, LONG, &ClaimOptions::default()).unwrap();
                        if jobs.is_empty() {
                            break;
                        }
                        got.extend(jobs.into_iter().map(|j| j.track_id));
                    }
                    (r, got)
                })
            })
            .collect();
        let results: Vec<_> = claimers.into_iter().map(|h| h.join().unwrap()).collect();
        let mut all = HashSet::new();
        for (_, got) in &results {
            for id in got {
                assert!(all.insert(*id), "round {round}: track {id} claimed twice");
            }
        }
        assert_eq!(all.len(), 400, "round {round}");
        let mut s = Store::open(&path).unwrap();
        for (r, got) in &results {
            assert_eq!(s.release(r).unwrap(), got.len() as u64);
        }
    }
}

#[test]
fn a_dead_runners_claims_are_free_at_once_a_live_ones_after_expiry() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 6);
    let opts = ClaimOptions::default();
    let dead = RunnerId::from_parts(&hostname(), dead_pid(), "dead");
    let a = s.claim(&dead, 3, LONG, &opts).unwrap();
    assert_eq!(a.len(), 3);

    let live = RunnerId::for_this_process();
    let b = s.claim(&live, 6, LONG, &opts).unwrap();
    assert_eq!(b.len(), 6, "the dead runner's tracks were not reclaimed");
    // The dead runner's late write is stale: the live runner's counts.
    let late = s
        .record(&dead, &a.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((late.written(), late.stale), (0, 3));

    // A live runner's claims stay until they expire.
    let other = RunnerId::for_this_process();
    assert!(s.claim(&other, 6, LONG, &opts).unwrap().is_empty());
    assert_eq!(s.renew(&live, Duration::from_millis(1)).unwrap(), 6);
    std::thread::sleep(Duration::from_millis(20));
    let c = s.claim(&other, 6, LONG, &opts).unwrap();
    assert_eq!(c.len(), 6);
    // Now `live` lost them: its results are stale, `other`'s are written, each counted once.
    let stale = s
        .record(&live, &b.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((stale.written(), stale.stale), (0, 6));
    let ok = s
        .record(&other, &c.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((ok.done, ok.stale), (6, 0));
    assert_eq!(count(&s, "SELECT COUNT(*) FROM claims"), 0);
    assert_eq!(s.status().unwrap().fingerprinted_current, 6);

    // A runner on another host is judged by its lease alone.
    let far = RunnerId::from_parts("elsewhere", dead_pid(), "x");
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    s.upsert_scanned(&scan, &[file(9, 1, 1)]).unwrap();
    assert_eq!(s.claim(&far, 5, LONG, &opts).unwrap().len(), 1);
    assert!(s.claim(&other, 5, LONG, &opts).unwrap().is_empty());
    assert_eq!(s.release(&far).unwrap(), 1);
    assert_eq!(s.claim(&other, 5, LONG, &opts).unwrap().len(), 1);
}

#[test]
fn record_is_all_or_nothing() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 3);
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 3, LONG, &ClaimOptions::default()).unwrap();
    s.conn()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON track_fingerprints WHEN NEW.track_id = 3
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let batch = vec![done(&jobs[0]), failed(&jobs[1]), done(&jobs[2])];
    let err = s.record(&r, &batch).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("write a fingerprint") && msg.contains("track 3"),
        "{msg}"
    );
    assert!(msg.contains("injected failure"), "{msg}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM track_fingerprints"), 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM failures"), 0);
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM tracks WHERE duration IS NOT NULL"),
        0
    );
    assert_eq!(count(&s, "SELECT COUNT(*) FROM claims"), 3);

    // Once the fault is gone the same batch goes through, each result once.
    s.conn().execute_batch("DROP TRIGGER boom").unwrap();
    let c = s.record(&r, &batch).unwrap();
    assert_eq!((c.done, c.failed, c.stale), (2, 1, 0));
    let again = s.record(&r, &batch).unwrap();
    assert_eq!((again.written(), again.stale), (0, 3));

    // A non-finite value is refused, not stored.
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    s.upsert_scanned(&scan, &[file(7, 1, 1)]).unwrap();
    let jobs = s.claim(&r, 3, LONG, &ClaimOptions::default()).unwrap();
    assert_eq!(jobs.len(), 1);
    let mut a = analysis(1.0);
    a.fingerprint.lufs = f64::NAN;
    let bad = Outcome::Done {
        job: jobs[0].clone(),
        analysis: a,
        computed_ms: 1,
    };
    assert!(matches!(
        s.record(&r, &[bad]),
        Err(StoreError::NonFinite {
            dimension: "lufs",
            ..
        })
    ));
    assert_eq!(count(&s, "SELECT COUNT(*) FROM track_fingerprints"), 2);
}

#[test]
fn a_write_to_a_read_only_database_fails_loudly() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 1);
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 1, LONG, &ClaimOptions::default()).unwrap();
    s.conn().execute_batch("PRAGMA query_only = ON").unwrap();
    assert!(s.record(&r, &[done(&jobs[0])]).is_err());
    s.conn().execute_batch("PRAGMA query_only = OFF").unwrap();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM track_fingerprints"), 0);
    assert_eq!(s.record(&r, &[done(&jobs[0])]).unwrap().done, 1);
}

#[test]
fn a_changed_file_is_pending_again() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 1);
    let r = RunnerId::for_this_process();
    let opts = ClaimOptions::default();
    let jobs = s.claim(&r, 5, LONG, &opts).unwrap();
    s.record(&r, &[done(&jobs[0])]).unwrap();
    let st = s.status().unwrap();
    assert_eq!((st.fingerprinted_current, st.stale, st.pending), (1, 0, 0));
    assert!(s.claim(&r, 5, LONG, &opts).unwrap().is_empty());
    let t = s.track(TrackId(1)).unwrap().unwrap();
    assert_eq!(
        (t.duration, t.sample_rate, t.channels),
        (Some(200.0), Some(44100), Some(2))
    );
    let fp = t.fingerprint.unwrap();
    assert!(fp.current);
    assert_eq!(fp.fingerprint, analysis(1.0).fingerprint);

    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    let c = s.upsert_scanned(&scan, &[file(0, 1000, 99)]).unwrap();
    assert_eq!(c.updated, 1);
    let st = s.status().unwrap();
    assert_eq!((st.fingerprinted_current, st.stale, st.pending), (0, 1, 1));
    let again = s.claim(&r, 5, LONG, &opts).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].mtime_ns, 99);
    s.record(&r, &[done(&again[0])]).unwrap();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM track_fingerprints"), 1);
    assert_eq!(s.status().unwrap().fingerprinted_current, 1);

    // An older fingerprint version is stale too.
    s.conn()
        .execute("UPDATE track_fingerprints SET fingerprint_version = 0", [])
        .unwrap();
    assert_eq!(s.status().unwrap().stale, 1);
    assert_eq!(s.claim(&r, 5, LONG, &opts).unwrap().len(), 1);
    s.release(&r).unwrap();

    // An excerpt fingerprint does not satisfy a full-mode run; a full one satisfies both.
    s.conn()
        .execute(
            "UPDATE track_fingerprints SET fingerprint_version = ?1",
            [FINGERPRINT_VERSION],
        )
        .unwrap();
    let full = ClaimOptions {
        mode: Mode::Full,
        ..Default::default()
    };
    assert!(s.claim(&r, 5, LONG, &opts).unwrap().is_empty());
    assert_eq!(s.pending(&opts).unwrap(), 0);
    assert_eq!(s.pending(&full).unwrap(), 1);
    assert_eq!(s.claim(&r, 5, LONG, &full).unwrap().len(), 1);
    s.release(&r).unwrap();
    s.conn()
        .execute("UPDATE track_fingerprints SET mode = 'full'", [])
        .unwrap();
    assert!(s.claim(&r, 5, LONG, &full).unwrap().is_empty());
}

#[test]
fn an_unchanged_failure_waits_for_retry_failed() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 2);
    let r = RunnerId::for_this_process();
    let opts = ClaimOptions::default();
    let retry = ClaimOptions {
        retry_failed: true,
        ..Default::default()
    };
    let jobs = s.claim(&r, 1, LONG, &opts).unwrap();
    s.record(&r, &[failed(&jobs[0])]).unwrap();
    let st = s.status().unwrap();
    assert_eq!(st.failed_by_class, vec![("corrupt".to_string(), 1)]);
    assert_eq!(st.pending, 1);
    // What a run would claim: `--retry-failed` also counts the unchanged failure.
    assert_eq!(s.pending(&opts).unwrap(), 1);
    assert_eq!(s.pending(&retry).unwrap(), 2);
    let left = s.claim(&r, 5, LONG, &opts).unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].track_id, jobs[0].track_id);
    s.release(&r).unwrap();

    let again = s.claim(&r, 5, LONG, &retry).unwrap();
    assert_eq!(again.len(), 2);
    s.record(&r, &[failed(&again[0])]).unwrap();
    s.release(&r).unwrap();
    let rows = s.failures(Some("corrupt")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].decoders, vec!["symphonia", "ffmpeg"]);
    assert_eq!(rows[0].path, PathBuf::from("/music/a/00000.flac"));
    assert!(s.failures(Some("timeout")).unwrap().is_empty());

    // The file changes: it is tried again, and a success clears the failure.
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    s.upsert_scanned(&scan, &[file(0, 5, 5), file(1, 1001, 7)])
        .unwrap();
    assert!(s.failures(None).unwrap().is_empty());
    let jobs = s.claim(&r, 5, LONG, &opts).unwrap();
    assert_eq!(jobs.len(), 2);
    s.record(&r, &jobs.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM failures"), 0);
    let st = s.status().unwrap();
    assert_eq!(
        (st.fingerprinted_current, st.pending, st.failed()),
        (2, 0, 0)
    );
}

#[test]
fn runs_and_paging() {
    let (_dir, path) = temp_db();
    let mut s = library(&path, 5);
    assert!(s.status().unwrap().last_run.is_none());
    let r = RunnerId::for_this_process();
    let run = s.begin_run(&r, Mode::Excerpt).unwrap();
    assert_eq!(
        s.last_run().unwrap().unwrap().summary.status,
        RunStatus::Running
    );
    let summary = RunSummary {
        completed: 4,
        failed: 1,
        skipped: 0,
        wall_sec: 2.5,
        cpu_sec: 4.0,
        status: RunStatus::Finished,
    };
    s.finish_run(run, &summary).unwrap();
    let last = s.status().unwrap().last_run.unwrap();
    assert_eq!(last.summary, summary);
    assert!(last.finished_at_ms.is_some());

    // A run left "running" by a process that is gone shows as died.
    let ghost = RunnerId::from_parts(&hostname(), dead_pid(), "g");
    s.begin_run(&ghost, Mode::Full).unwrap();
    let last = s.last_run().unwrap().unwrap();
    assert_eq!(
        (last.summary.status, last.mode),
        (RunStatus::Died, Mode::Full)
    );

    let page = s
        .tracks(
            Page {
                after: Some(TrackId(2)),
                limit: 2,
            },
            TrackFilter::default(),
        )
        .unwrap();
    assert_eq!(
        page.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![TrackId(3), TrackId(4)]
    );
    let jobs = s.claim(&r, 1, LONG, &ClaimOptions::default()).unwrap();
    s.record(&r, &[done(&jobs[0])]).unwrap();
    let fp_only = TrackFilter {
        fingerprinted: Some(true),
        ..Default::default()
    };
    let all = Page {
        after: None,
        limit: 100,
    };
    assert_eq!(s.tracks(all, fp_only).unwrap().len(), 1);
    let missing_only = TrackFilter {
        state: Some(TrackState::Missing),
        ..Default::default()
    };
    assert!(s.tracks(all, missing_only).unwrap().is_empty());
    assert_eq!(
        s.track_id_by_path(Path::new("/music/a/00001.flac"))
            .unwrap(),
        Some(TrackId(2))
    );
    assert!(s.track(TrackId(99)).unwrap().is_none());
}

#[test]
fn store_fingerprint_writes_one_current_result_without_a_claim() {
    let (_d, path) = temp_db();
    let mut s = library(&path, 2);
    let id = s
        .track_id_by_path(Path::new("/music/a/00000.flac"))
        .unwrap()
        .unwrap();
    // Against the file as scanned: current at once, metadata copied, no longer pending.
    s.store_fingerprint(id, 1000, 7, &analysis(0.5), 12)
        .unwrap();
    let row = s.track(id).unwrap().unwrap();
    let fp = row.fingerprint.unwrap();
    assert!(fp.current);
    assert_eq!(fp.fingerprint, analysis(0.5).fingerprint);
    assert_eq!(row.sample_rate, Some(44100));
    assert_eq!(s.status().unwrap().pending, 1);
    // Against a changed file: stored, but not current until a scan sees that file.
    s.store_fingerprint(id, 999, 8, &analysis(0.7), 12).unwrap();
    assert!(!s.track(id).unwrap().unwrap().fingerprint.unwrap().current);
    // A non-finite value is refused and nothing is written.
    let mut bad = analysis(0.9);
    bad.fingerprint.lufs = f64::NAN;
    assert!(s.store_fingerprint(id, 1000, 7, &bad, 1).is_err());
    let kept = s.track(id).unwrap().unwrap().fingerprint.unwrap();
    assert_eq!(kept.fingerprint, analysis(0.7).fingerprint);
}
