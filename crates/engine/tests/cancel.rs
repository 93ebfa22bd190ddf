//! A decoder whose file has failed (its time limit passed) stops working: the cancel flag of
//! `OpenOptions` is checked before every packet. Its own test binary, so that no other test's
//! threads are counted.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sonoprint_engine::decode::{self, OpenOptions};
use sonoprint_engine::{analyze_file_guarded, ErrorClass, Mode, Options};

/// Threads of this process named `analyze` (the guarded analysis's worker thread).
fn analyze_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "analyze")
        })
        .count()
}

#[test]
fn a_timed_out_analysis_stops_decoding() {
    let dir = TempDir::new("cancel");
    let p = dir.path("long.flac");
    ffmpeg_sine(&p, 44_100, 300.0, &["-sample_fmt", "s16", "-c:a", "flac"]);
    let opts = Options {
        mode: Mode::Full,
        ..Default::default()
    };
    let e = analyze_file_guarded(&p, &opts, Duration::from_millis(100)).unwrap_err();
    assert_eq!(e.class, ErrorClass::Timeout, "{e}");
    // Without the cancel flag the thread would go on decoding the 300 s for seconds.
    let t = Instant::now();
    while analyze_threads() > 0 {
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "the analysis thread is still running after its file failed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // The flag itself: set before reading, the first packet read fails as `timeout`.
    let flag = Arc::new(AtomicBool::new(false));
    let open = OpenOptions {
        cancel: Some(Arc::clone(&flag)),
        ..Default::default()
    };
    let mut src = decode::open(&p, &open).unwrap();
    assert!(src.next_chunk().unwrap().is_some());
    flag.store(true, Ordering::Relaxed);
    let stop = src.next_chunk().unwrap_err();
    assert_eq!(stop.class, ErrorClass::Timeout);
}
