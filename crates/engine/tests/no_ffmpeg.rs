//! Without ffmpeg, the formats only ffmpeg reads fail with their class and a message saying
//! that installing ffmpeg would let sonoprint read them.
//!
//! This is its own test binary (its own process) because it sets `SONOPRINT_FFMPEG`, which
//! `decode::ffmpeg::locate` reads: a path that is not a file means "no ffmpeg", whatever the
//! PATH holds. One test function does all the checks, so nothing in this process races on the
//! variable, and the other binaries never see it.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

mod common;

use common::fixture;
use sonoprint_engine::{analyze_file, ErrorClass, Options};

#[test]
fn opus_and_wma_without_ffmpeg() {
    std::env::set_var("SONOPRINT_FFMPEG", "/nonexistent/sonoprint-test/ffmpeg");
    for name in ["opus.opus", "wma.wma"] {
        let e = analyze_file(&fixture(name), &Options::default())
            .expect_err("only ffmpeg reads this format");
        assert!(
            matches!(e.class, ErrorClass::UnsupportedCodec | ErrorClass::NotAudio),
            "{name}: {e}"
        );
        // Both are containers the sniffer knows as audio: the codec is what is missing.
        assert_eq!(e.class, ErrorClass::UnsupportedCodec, "{name}: {e}");
        assert!(e.message.contains("installing ffmpeg"), "{name}: {e}");
        assert_eq!(e.decoders_tried, ["symphonia"], "{name}");
    }
    // What symphonia reads does not need ffmpeg.
    analyze_file(&fixture("flac-16bit.flac"), &Options::default()).expect("FLAC without ffmpeg");
}
