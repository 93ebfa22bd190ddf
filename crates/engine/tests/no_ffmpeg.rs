//! Without ffmpeg, the formats only ffmpeg reads (WMA here) fail with their class and a message saying
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
fn wma_without_ffmpeg() {
    std::env::set_var("SONOPRINT_FFMPEG", "/nonexistent/sonoprint-test/ffmpeg");
    let e = analyze_file(&fixture("wma.wma"), &Options::default())
        .expect_err("only ffmpeg reads this format");
    // A container the sniffer knows as audio: the codec is what is missing.
    assert_eq!(e.class, ErrorClass::UnsupportedCodec, "{e}");
    assert!(e.message.contains("installing ffmpeg"), "{e}");
    assert_eq!(e.decoders_tried, ["symphonia"]);
    // What symphonia reads does not need ffmpeg: Ogg Opus included (`decode/opus.rs`).
    analyze_file(&fixture("flac-16bit.flac"), &Options::default()).expect("FLAC without ffmpeg");
    let a = analyze_file(&fixture("opus.opus"), &Options::default()).expect("Opus without ffmpeg");
    assert_eq!(a.metadata.decoder, "symphonia");
    assert_eq!(a.metadata.codec, "opus");
}
