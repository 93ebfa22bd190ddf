//! What only the player's database has: its schema checks, its own columns, placeholder rows,
//! versions, status columns and `forget`. What every backend does is in `conformance.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use sonoprint_core::{Analysis, Fingerprint, Metadata, Mode};

use super::*;
use crate::conformance::{make_files, AURALIS_SCHEMA};
use crate::Outcome;

const LONG: Duration = Duration::from_secs(600);

/// The ORM's variant: no SQL default on the version, a `fingerprint_blob`, and (here) a
/// NOT NULL column without a default that sonoprint does not know, and no status columns.
fn orm_schema() -> String {
    AURALIS_SCHEMA
        .replace(
            "fingerprint_version INTEGER NOT NULL DEFAULT 1",
            "fingerprint_version INTEGER NOT NULL",
        )
        .replace(
            "reference_weight REAL NOT NULL DEFAULT 0.0",
            "reference_weight REAL NOT NULL DEFAULT 0.0, fingerprint_blob BLOB, \
             source_tag TEXT NOT NULL",
        )
        .replace(
            "    fingerprint_status TEXT DEFAULT 'pending',
    fingerprint_computed_at DATETIME,
    fingerprint_error_message TEXT,
    fingerprint_vector TEXT\n",
            "    fingerprint_vector TEXT\n",
        )
}

fn player_db(dir: &Path, schema: &str, n: usize) -> PathBuf {
    let db = dir.join("library.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(schema).unwrap();
    for f in make_files(dir, n) {
        conn.execute(
            "INSERT INTO tracks (title, filepath) VALUES ('t', ?1)",
            [f.to_str().unwrap()],
        )
        .unwrap();
    }
    db
}

fn analysis(seed: f64) -> Analysis {
    let mut v = [0.0; 25];
    for (i, x) in v.iter_mut().enumerate() {
        *x = seed + i as f64;
    }
    Analysis {
        fingerprint: Fingerprint::from_array(v),
        metadata: Metadata {
            duration_sec: 3.0,
            sample_rate: 44100,
            channels: 2,
            bits_per_sample: Some(16),
            format: "flac".into(),
            codec: "flac".into(),
            analyzed_sec: 3.0,
            mode: Mode::Excerpt,
            decoder: "symphonia".into(),
            fingerprint_version: 1,
            access: "whole".into(),
            duration_known: true,
            truncated: false,
            skipped_packets: 0,
        },
    }
}

fn finish(lib: &mut AuralisLibrary) -> Vec<TrackId> {
    let r = RunnerId::for_this_process();
    let jobs = lib.claim(&r, 100, LONG, &ClaimOptions::default()).unwrap();
    let outcomes: Vec<Outcome> = jobs
        .iter()
        .map(|j| Outcome::Done {
            job: j.clone(),
            analysis: analysis(j.track_id.0 as f64),
            computed_ms: 1,
        })
        .collect();
    lib.record(&r, &outcomes).unwrap();
    jobs.iter().map(|j| j.track_id).collect()
}

fn q(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_database_that_is_not_the_players_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "CREATE TABLE songs (id INTEGER PRIMARY KEY)",
            "table tracks",
        ),
        (
            "CREATE TABLE tracks (id INTEGER PRIMARY KEY, filepath TEXT)",
            "table track_fingerprints",
        ),
        (
            "CREATE TABLE tracks (id INTEGER PRIMARY KEY, path TEXT);
             CREATE TABLE track_fingerprints (id INTEGER PRIMARY KEY, track_id INTEGER UNIQUE)",
            "column tracks.filepath",
        ),
    ];
    for (i, (schema, missing)) in cases.iter().enumerate() {
        let db = dir.path().join(format!("other{i}.db"));
        Connection::open(&db)
            .unwrap()
            .execute_batch(schema)
            .unwrap();
        let before = std::fs::read(&db).unwrap();
        let err = AuralisLibrary::open(&db, 1).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::NotAuralis { .. }), "{msg}");
        assert!(msg.contains(missing), "{missing}: {msg}");
        assert_eq!(std::fs::read(&db).unwrap(), before, "{msg}");
        assert!(!Path::new(&format!("{}-wal", db.display())).exists());
    }
    // The dimension columns are named.
    let db = dir.path().join("no_lufs.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(&AURALIS_SCHEMA.replace("lufs REAL NOT NULL,", ""))
        .unwrap();
    let msg = AuralisLibrary::open(&db, 1).err().unwrap().to_string();
    assert!(msg.contains("track_fingerprints.lufs"), "{msg}");
    // Not a database at all, and no file.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, this is not SQLite at all, not even close").unwrap();
    assert!(AuralisLibrary::open(&text, 1).is_err());
    assert_eq!(
        std::fs::read(&text).unwrap(),
        b"hello, this is not SQLite at all, not even close"
    );
    assert!(matches!(
        AuralisLibrary::open(&dir.path().join("none.db"), 1),
        Err(StoreError::NoDatabase(_))
    ));
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn results_are_upserted_keeping_the_players_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = player_db(dir.path(), AURALIS_SCHEMA, 3);
    // Track 1: the player's placeholder row with its own column values set.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO track_fingerprints (track_id, sub_bass_pct, bass_pct, low_mid_pct,
               mid_pct, upper_mid_pct, presence_pct, air_pct, lufs, crest_db, bass_mid_ratio,
               tempo_bpm, rhythm_stability, transient_density, silence_ratio, spectral_centroid,
               spectral_rolloff, spectral_flatness, harmonic_ratio, pitch_stability,
               chroma_energy, dynamic_range_variation, loudness_variation_std,
               peak_consistency, stereo_width, phase_correlation, created_at, is_reference,
               reference_weight)
             VALUES (1, 0,0,0,0,0,0,0, -100, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
               '2020-01-01 00:00:00', 1, 0.7);",
        )
        .unwrap();
    let mut lib = AuralisLibrary::open(&db, 1).unwrap();
    let st = lib.status().unwrap();
    assert_eq!(st.pending, 3, "a placeholder is not a result");
    assert_eq!(st.auralis.unwrap().placeholders, 1);
    assert_eq!(finish(&mut lib).len(), 3);
    assert_eq!(
        q(
            &db,
            "SELECT COUNT(*) FROM track_fingerprints WHERE track_id = 1 AND id = 1
                AND created_at = '2020-01-01 00:00:00' AND is_reference = 1
                AND reference_weight = 0.7 AND lufs = 8 AND fingerprint_version = 1"
        ),
        1
    );
    assert_eq!(
        q(
            &db,
            "SELECT COUNT(*) FROM tracks WHERE fingerprint_status = 'completed'
                AND fingerprint_computed_at IS NOT NULL AND fingerprint_error_message IS NULL"
        ),
        3
    );
    let st = lib.status().unwrap();
    let a = st.auralis.unwrap();
    assert_eq!(
        (st.pending, a.current, a.placeholders, a.older_versions),
        (0, 3, 0, 0)
    );
    // The player's reading query sees every result.
    assert_eq!(
        q(&db, "SELECT COUNT(*) FROM track_fingerprints WHERE lufs != -100 AND fingerprint_version >= 1"),
        3
    );
}

#[test]
fn the_orm_schema_without_defaults_or_status_columns_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = player_db(dir.path(), &orm_schema(), 2);
    let mut lib = AuralisLibrary::open(&db, 1).unwrap();
    assert_eq!(finish(&mut lib).len(), 2);
    assert_eq!(
        q(
            &db,
            "SELECT COUNT(*) FROM track_fingerprints WHERE fingerprint_version = 1
                AND fingerprint_blob IS NULL AND source_tag = ''"
        ),
        2
    );
    // A player value in a NOT NULL column is kept on update.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE track_fingerprints SET source_tag = 'mine', fingerprint_blob = x'0102'",
        )
        .unwrap();
    std::fs::write(dir.path().join("music/00000.flac"), b"new").unwrap();
    assert_eq!(lib.prepare_run().unwrap(), 1);
    assert_eq!(finish(&mut lib).len(), 1);
    assert_eq!(
        q(
            &db,
            "SELECT COUNT(*) FROM track_fingerprints WHERE source_tag = 'mine'
                AND fingerprint_blob = x'0102'"
        ),
        2
    );
}

#[test]
fn older_versions_are_pending_and_newer_ones_current() {
    let dir = tempfile::tempdir().unwrap();
    let db = player_db(dir.path(), AURALIS_SCHEMA, 3);
    let mut lib = AuralisLibrary::open(&db, 1).unwrap();
    finish(&mut lib);
    // The player recomputes track 3 with its own version 8: current for a stamp of 2 too.
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE track_fingerprints SET fingerprint_version = 8 WHERE track_id = 3")
        .unwrap();
    let mut v2 = AuralisLibrary::open(&db, 2).unwrap();
    let st = v2.status().unwrap();
    let a = st.auralis.unwrap();
    assert_eq!((st.pending, a.current, a.older_versions), (2, 1, 2));
    let ids = finish(&mut v2);
    assert_eq!(ids, vec![TrackId(1), TrackId(2)]);
    assert_eq!(
        q(&db, "SELECT COUNT(*) FROM track_fingerprints WHERE fingerprint_version = 2 AND id IN (1, 2)"),
        2
    );
}

#[test]
fn a_failure_sets_the_players_status_and_forget_removes_the_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let db = player_db(dir.path(), AURALIS_SCHEMA, 2);
    let schema_before: Vec<String> = {
        let c = Connection::open(&db).unwrap();
        let mut s = c
            .prepare("SELECT sql FROM sqlite_master ORDER BY name")
            .unwrap();
        let v = s.query_map([], |r| r.get::<_, Option<String>>(0)).unwrap();
        v.map(|x| x.unwrap().unwrap_or_default()).collect()
    };
    let mut lib = AuralisLibrary::open(&db, 1).unwrap();
    let r = RunnerId::for_this_process();
    let jobs = lib.claim(&r, 10, LONG, &ClaimOptions::default()).unwrap();
    lib.record(
        &r,
        &[Outcome::Failed {
            job: jobs[0].clone(),
            class: ErrorClass::NotAudio,
            message: "content is text, not audio".into(),
            decoders: vec![],
        }],
    )
    .unwrap();
    lib.release(&r).unwrap();
    assert_eq!(
        q(
            &db,
            "SELECT COUNT(*) FROM tracks WHERE id = 1 AND fingerprint_status = 'failed'
                AND fingerprint_error_message LIKE 'not_audio: content is text%'"
        ),
        1
    );
    assert_eq!(lib.failures(None).unwrap().len(), 1);
    let roots = lib.roots().unwrap();
    assert_eq!(roots, vec![dir.path().join("music")]);
    drop(lib);
    let dropped = AuralisLibrary::forget(&db).unwrap();
    assert!(dropped.iter().all(|t| t.starts_with("sonoprint_")) && dropped.len() == 8);
    let c = Connection::open(&db).unwrap();
    let mut s = c
        .prepare("SELECT sql FROM sqlite_master ORDER BY name")
        .unwrap();
    let after: Vec<String> = s
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|x| x.unwrap().unwrap_or_default())
        .collect();
    assert_eq!(after, schema_before);
}

#[test]
fn a_graph_needs_the_players_similarity_graph_table() {
    let dir = tempfile::tempdir().unwrap();
    let schema = AURALIS_SCHEMA
        .split("CREATE TABLE similarity_graph")
        .next()
        .unwrap();
    let db = player_db(dir.path(), schema, 2);
    let mut lib = AuralisLibrary::open(&db, 1).unwrap();
    let state = crate::GraphState {
        model: "{}".into(),
        model_id: "m".into(),
        k: 10,
        fitted_on: 0,
        built_at_ms: 0,
    };
    let err = lib
        .write_graph(&crate::GraphUpdate {
            state: &state,
            rebuild: true,
            rows_of: &[],
            edges: &[],
            nodes: &[],
            removed: &[],
        })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotAuralis { missing, .. } if missing == &["table similarity_graph"]),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(lib.graph_state().unwrap().is_none());
}
