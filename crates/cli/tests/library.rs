//! The library commands (`scan`, `status`, `failures`) run as the real binary on generated
//! folders, with `--data-dir` in a temporary folder.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sonoprint_engine::ErrorClass;
use sonoprint_store::{
    ClaimOptions, Library, Outcome, RunStatus, RunSummary, RunnerId, SqliteLibrary as Store,
    TrackState,
};

mod common;
use common::{ok, sonoprint, wav};

fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(sonoprint(data, args))).unwrap()
}

/// lib/ with three WAVs (one in a subfolder), a text file named .flac, a picture, a symlink
/// loop and a FIFO named .flac.
fn library(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    fs::create_dir_all(lib.join("sub")).unwrap();
    wav(&lib.join("a.wav"), 3.0, 440.0);
    wav(&lib.join("b.wav"), 3.0, 660.0);
    wav(&lib.join("sub").join("c.wav"), 3.0, 220.0);
    fs::write(
        lib.join("fake.flac"),
        "This is a text file that only claims to be a FLAC.\n",
    )
    .unwrap();
    fs::write(lib.join("cover.jpg"), [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
    std::os::unix::fs::symlink("..", lib.join("sub").join("loop")).unwrap();
    let fifo = lib.join("pipe.flac");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    lib
}

#[test]
fn scan_follows_symlinks_to_files_and_folders_each_real_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = tmp.path().join("lib");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(lib.join("a")).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    wav(&lib.join("a").join("one.wav"), 2.0, 440.0);
    wav(&elsewhere.join("two.wav"), 2.0, 660.0);
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, lib.join(name)).unwrap();
    link(&elsewhere.join("two.wav"), "two-link.wav"); // a file outside the root
    link(&elsewhere.join("two.wav"), "two-again.wav"); // the same file twice
    link(&lib.join("a"), "a-link"); // a folder inside the root: its file once
    link(&elsewhere, "elsewhere-link"); // a folder outside the root
    link(&lib, "loop"); // a loop
    link(&tmp.path().join("gone.wav"), "dangling.wav");
    let out = ok(sonoprint(&data, &["scan", lib.to_str().unwrap()]));
    assert!(out.contains("added 2,"), "{out}");
    assert!(out.contains("1 broken symlinks"), "{out}");
    let st = json(&data, &["status", "--json"]);
    assert_eq!(st["tracks"], 2, "{st}");
    // A rescan finds the same two files, unchanged.
    let out = ok(sonoprint(&data, &["scan", lib.to_str().unwrap()]));
    assert!(out.contains("added 0, updated 0, unchanged 2"), "{out}");
}

fn counts_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.trim_start().starts_with("added"))
        .unwrap()
}

#[test]
fn scan_adds_updates_and_marks_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = library(tmp.path());
    let lib_s = lib.to_str().unwrap();

    let out = ok(sonoprint(&data, &["scan", lib_s]));
    assert_eq!(
        counts_line(&out).trim(),
        "added 3, updated 0, unchanged 0, revived 0, missing 0",
        "{out}"
    );
    assert!(
        out.contains(
            "skipped 3: 1 not audio by name, 1 not audio by content, 0 broken symlinks, 1 special files"
        ),
        "{out}"
    );
    let st = json(&data, &["status", "--json"]);
    assert_eq!(st["tracks"], 3);
    assert_eq!(st["pending"], 3);

    // Nothing changed: nothing is opened. Replace a.wav's content by text of the same size and
    // put its mtime back: a scan that sniffed it would drop it, the stat-only rescan keeps it.
    let a = lib.join("a.wav");
    let meta = fs::metadata(&a).unwrap();
    fs::write(&a, vec![b'x'; meta.len() as usize]).unwrap();
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();
    let out = ok(sonoprint(&data, &["scan", lib_s]));
    assert_eq!(
        counts_line(&out).trim(),
        "added 0, updated 0, unchanged 3, revived 0, missing 0",
        "{out}"
    );
    wav(&a, 3.0, 440.0);
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();

    // Fingerprint c.wav through the store, as `run` will.
    let c = lib.join("sub").join("c.wav");
    let mut store = Store::open(&data.join("library.db")).unwrap();
    let runner = RunnerId::for_this_process();
    let jobs = store
        .claim(
            &runner,
            10,
            Duration::from_secs(60),
            &ClaimOptions::default(),
        )
        .unwrap();
    let job = jobs.into_iter().find(|j| j.path == c).unwrap();
    let analysis = sonoprint_engine::analyze_file(&c, &Default::default()).unwrap();
    let rec = store
        .record(
            &runner,
            &[Outcome::Done {
                job: job.clone(),
                analysis,
                computed_ms: 1,
            }],
        )
        .unwrap();
    assert_eq!(rec.done, 1);
    store.release(&runner).unwrap();

    // b.wav touched (mtime only), a.wav rewritten (new size), c.wav deleted.
    let b = lib.join("b.wav");
    fs::File::options()
        .write(true)
        .open(&b)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    wav(&a, 4.0, 440.0);
    fs::remove_file(&c).unwrap();
    let out = ok(sonoprint(&data, &["scan", lib_s]));
    assert_eq!(
        counts_line(&out).trim(),
        "added 0, updated 2, unchanged 0, revived 0, missing 1",
        "{out}"
    );
    let st = json(&data, &["status", "--json"]);
    assert_eq!(
        (st["present"].clone(), st["missing"].clone()),
        (2.into(), 1.into())
    );
    // The vanished track keeps its fingerprint.
    let t = store.track(job.track_id).unwrap().unwrap();
    assert_eq!(t.state, TrackState::Missing);
    assert!(t.fingerprint.is_some_and(|f| f.current));

    // A file at that path comes back: the track is revived (and, being a new file, pending).
    wav(&c, 3.0, 220.0);
    let out = ok(sonoprint(&data, &["scan", lib_s]));
    assert!(counts_line(&out).contains("revived 1"), "{out}");
    let st = json(&data, &["status", "--json"]);
    assert_eq!(st["missing"], 0);
    assert_eq!(st["tracks"], 3);
}

#[test]
fn status_and_failures_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Asking about a library that does not exist is an error, not an empty report.
    let out = sonoprint(&data, &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no library"));
    assert!(!data.join("library.db").exists());

    let lib = library(tmp.path());
    ok(sonoprint(&data, &["scan", lib.to_str().unwrap()]));
    let st = json(&data, &["status", "--json"]);
    for key in [
        "tracks",
        "present",
        "missing",
        "fingerprinted_current",
        "stale",
        "pending",
        "claimed",
        "failed",
        "db_size_bytes",
    ] {
        assert!(st[key].is_u64(), "{key} in {st}");
    }
    assert!(st["failed_by_class"].is_object());
    assert!(st["last_run"].is_null());
    assert_eq!(
        st["db_path"].as_str().unwrap(),
        data.join("library.db").to_str().unwrap()
    );
    assert_eq!(
        st["logs_dir"].as_str().unwrap(),
        data.join("logs").to_str().unwrap()
    );

    // A failure and a run, written through the store as `run` will write them.
    let mut store = Store::open(&data.join("library.db")).unwrap();
    let runner = RunnerId::for_this_process();
    let run = store
        .begin_run(&runner, sonoprint_engine::Mode::Excerpt)
        .unwrap();
    let jobs = store
        .claim(
            &runner,
            1,
            Duration::from_secs(60),
            &ClaimOptions::default(),
        )
        .unwrap();
    store
        .record(
            &runner,
            &[Outcome::Failed {
                job: jobs[0].clone(),
                class: ErrorClass::Corrupt,
                message: "the stream breaks before any audio".into(),
                decoders: vec!["symphonia".into(), "ffmpeg".into()],
            }],
        )
        .unwrap();
    let summary = RunSummary {
        completed: 0,
        failed: 1,
        skipped: 0,
        wall_sec: 1.5,
        cpu_sec: 1.0,
        status: RunStatus::Finished,
    };
    store.finish_run(run, &summary).unwrap();

    let st = json(&data, &["status", "--json"]);
    assert_eq!(st["failed"], 1);
    assert_eq!(st["failed_by_class"]["corrupt"], 1);
    assert_eq!(st["pending"], 2);
    let last = &st["last_run"];
    assert_eq!(last["status"], "finished");
    assert_eq!(last["mode"], "excerpt");
    assert_eq!(last["failed"], 1);
    assert!(last["started_at"].as_str().unwrap().ends_with("UTC"));

    let f = json(&data, &["failures", "--json"]);
    let rows = f.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row["path"].as_str().unwrap(),
        jobs[0].path.to_str().unwrap()
    );
    assert_eq!(row["class"], "corrupt");
    assert_eq!(row["message"], "the stream breaks before any audio");
    assert_eq!(row["decoders"], serde_json::json!(["symphonia", "ffmpeg"]));
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["track_id"], jobs[0].track_id.0);
    assert_eq!(
        json(&data, &["failures", "--class", "corrupt", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(&data, &["failures", "--class", "timeout", "--json"]),
        serde_json::json!([])
    );
    assert!(!sonoprint(&data, &["failures", "--class", "bogus"])
        .status
        .success());

    // The human forms name the figures.
    let table = ok(sonoprint(&data, &["status"]));
    assert!(
        table.contains("corrupt") && table.contains("Pending"),
        "{table}"
    );
    let table = ok(sonoprint(&data, &["failures"]));
    assert!(
        table.contains("the stream breaks before any audio"),
        "{table}"
    );
}

#[test]
fn sonoprint_home_chooses_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let lib = tmp.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    wav(&lib.join("x.wav"), 1.5, 440.0);
    let out = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .args(["scan", lib.to_str().unwrap()])
        .env("SONOPRINT_HOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(home.join("library.db").exists());
    // --data-dir wins over the variable.
    let other = tmp.path().join("other");
    let out = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .args(["--data-dir", other.to_str().unwrap(), "status", "--json"])
        .env("SONOPRINT_HOME", &home)
        .output()
        .unwrap();
    assert!(!out.status.success(), "status found a library in {other:?}");
}

/// `cargo test -p sonoprint --test library -- --ignored --nocapture rescan_is_fast`;
/// `SONOPRINT_RESCAN_FILES` sets the number of files (default 20,000).
#[test]
#[ignore = "benchmark: creates tens of thousands of files"]
fn rescan_is_fast() {
    let n: usize = std::env::var("SONOPRINT_RESCAN_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = tmp.path().join("lib");
    // 100 files per folder, in artist/album folders, each a FLAC header and a little padding.
    for i in 0..n {
        let dir = lib
            .join(format!("artist{:03}", i / 1000))
            .join(format!("album{:02}", i / 100 % 10));
        if i % 100 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        let mut bytes = b"fLaC\0\0\0\x22".to_vec();
        bytes.resize(256 + i % 100, 0);
        fs::write(dir.join(format!("{i:06} track.flac")), bytes).unwrap();
    }
    let lib_s = lib.to_str().unwrap();
    let t = Instant::now();
    let out = ok(sonoprint(&data, &["scan", lib_s]));
    let first = t.elapsed();
    assert!(counts_line(&out).contains(&format!("added {n},")), "{out}");
    let t = Instant::now();
    let out = ok(sonoprint(&data, &["scan", lib_s]));
    let rescan = t.elapsed();
    assert!(
        counts_line(&out).contains(&format!("unchanged {n},")),
        "{out}"
    );
    println!(
        "{n} files: first scan {:.2} s, rescan {:.2} s",
        first.as_secs_f64(),
        rescan.as_secs_f64()
    );
    assert!(rescan < Duration::from_secs(10), "rescan took {rescan:?}");
}
