//! Unit tests on real database files in temporary folders.

use rusqlite::Connection;
use std::path::PathBuf;
use std::time::Duration;

use sonoprint_core::{Fingerprint, Mode};

use super::*;
use crate::conformance::analysis;

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
fn library(path: &Path, n: usize) -> SqliteLibrary {
    let mut s = SqliteLibrary::open(path).unwrap();
    let scan = s.begin_scan(&[PathBuf::from("/music")]).unwrap();
    let files: Vec<_> = (0..n).map(|i| file(i, 1000 + i as u64, 7)).collect();
    let c = s.upsert_scanned(&scan, &files).unwrap();
    assert_eq!(c.added, n as u64);
    s.finish_scan(&scan, &[]).unwrap();
    s
}

fn done(job: &Job) -> Outcome {
    Outcome::Done {
        job: job.clone(),
        analysis: analysis(job.track_id.0 as f64, Mode::Excerpt),
        computed_ms: 5,
    }
}

fn count(s: &SqliteLibrary, sql: &str) -> i64 {
    s.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn migrations_are_idempotent_and_newer_databases_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteLibrary::open(&path).unwrap());
    let s = SqliteLibrary::open(&path).unwrap();
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
    match SqliteLibrary::open(&path) {
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
    let s = SqliteLibrary::open(&path).unwrap();
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
