//! PostgreSQL-specific checks (the conformance suite covers the Library contract).

use crate::conformance::{fresh_database, test_server};
use crate::*;

#[test]
fn a_database_of_a_newer_sonoprint_is_refused() {
    let url = fresh_database();
    drop(PostgresLibrary::open(&url).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute(
        "UPDATE sonoprint_meta SET value = $1 WHERE key = 'schema_version'",
        &[&(PG_SCHEMA_VERSION + 1)],
    )
    .unwrap();
    let err = PostgresLibrary::open(&url).err().expect("refused");
    assert!(
        matches!(err, StoreError::TooNewDatabase { found, supported, .. }
            if found == PG_SCHEMA_VERSION + 1 && supported == PG_SCHEMA_VERSION),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("newer sonoprint"), "{msg}");
    // Nothing was changed by the refused open.
    let v: i64 = c
        .query_one(
            "SELECT value FROM sonoprint_meta WHERE key = 'schema_version'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, PG_SCHEMA_VERSION + 1);
}

#[test]
fn the_password_is_never_shown() {
    let shown = describe_url("postgres://sono:s3cret@db.example:5433/music?sslmode=disable");
    assert_eq!(shown, "postgres://sono@db.example:5433/music");
    assert!(!describe_url("postgres://u:s3cret@h/d").contains("s3cret"));
    let lib = PostgresLibrary::open(&test_server()).unwrap();
    assert_eq!(
        lib.location().display().to_string(),
        describe_url(&test_server())
    );
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_operation() {
    // A port nothing listens on (the test server's port + 1 is not guaranteed free, so a
    // closed port of 127.0.0.1 from a socket we bind and drop).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = PostgresLibrary::open(&format!("postgres://nobody:pw@127.0.0.1:{port}/x"))
        .err()
        .expect("no server");
    let msg = err.to_string();
    assert!(msg.contains("connect to the PostgreSQL server"), "{msg}");
    assert!(!msg.contains("pw@"), "{msg}");
}

#[test]
fn a_result_after_a_takeover_is_not_written_and_runners_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let files = crate::conformance::make_files(dir.path(), 4);
    let url = fresh_database();
    let mut lib = PostgresLibrary::open(&url).unwrap();
    let cat = lib.catalog().unwrap();
    let scan = cat.begin_scan(&[dir.path().join("music")]).unwrap();
    let scanned: Vec<ScannedFile> = files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).unwrap();
            ScannedFile {
                path: p.clone(),
                filesize: m.len(),
                mtime_ns: mtime_ns(&m),
                title: None,
            }
        })
        .collect();
    assert_eq!(cat.upsert_scanned(&scan, &scanned).unwrap().added, 4);
    assert_eq!(cat.upsert_scanned(&scan, &scanned).unwrap().unchanged, 4);
    cat.finish_scan(&scan, &[]).unwrap();

    let far = RunnerId::from_parts("machine-a", 1, "a");
    let near = RunnerId::from_parts("machine-b", 2, "b");
    let opts = ClaimOptions::default();
    let a = lib
        .claim(&far, 4, std::time::Duration::from_millis(300), &opts)
        .unwrap();
    assert_eq!(a.len(), 4);
    let listed = lib.runners().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].host.as_str(), listed[0].claimed),
        ("machine-a", 4)
    );
    // machine-a goes silent (no heartbeat from another process would renew; here the
    // library's own heartbeat is stopped by releasing nothing and waiting past the lease
    // with the heartbeat told a lease far longer than the wait).
    lib.heartbeats.clear();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let b = lib
        .claim(&near, 4, std::time::Duration::from_secs(60), &opts)
        .unwrap();
    assert_eq!(b.len(), 4, "expired claims return to the pool");
    let outcome = |j: &Job| Outcome::Done {
        job: j.clone(),
        analysis: crate::conformance::analysis(1.0, sonoprint_core::Mode::Excerpt),
        computed_ms: 1,
    };
    let late = lib
        .record(&far, &a.iter().map(outcome).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((late.written(), late.stale), (0, 4));
    let ok = lib
        .record(&near, &b.iter().map(outcome).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(ok.done, 4);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (fps, done): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM track_fingerprints),
                        (SELECT done FROM runners WHERE runner = $1)",
                &[&near.as_str()],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((fps, done), (4, 4));
    assert!(lib.round_trips() > 0);
}
