//! The fuzz targets' bodies, shared by the libFuzzer targets (`fuzz_targets/`) and the stable
//! mutation driver (`src/bin/drive.rs`). Each must return for any input, without panicking, in
//! bounded time and memory.

use std::path::Path;

use sonoprint_engine::decode;
use sonoprint_engine::{analyze_source, Mode};

/// Chunks read at most from one input (a tiny file cannot hold more; a loop that never ends
/// is what the fuzzer's time limit catches).
const MAX_CHUNKS: usize = 100_000;

/// Decodes arbitrary bytes as a file: sniffing and probing ([`decode::open_memory`]), every
/// chunk, a seek to the middle, then the analysis of the same bytes.
pub fn decode(data: &[u8]) {
    let Ok(mut src) = decode::open_memory(data.to_vec()) else {
        return;
    };
    let info = src.info().clone();
    let mut frames = 0u64;
    for _ in 0..MAX_CHUNKS {
        let ch = src.info().channels.max(1);
        match src.next_chunk() {
            Ok(Some(c)) => {
                assert_eq!(c.len() % ch, 0, "a chunk splits a frame");
                frames += (c.len() / ch) as u64;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let middle = info.total_frames.unwrap_or(frames) / 2;
    if src.seek(middle).is_ok() {
        for _ in 0..4 {
            if !matches!(src.next_chunk(), Ok(Some(_))) {
                break;
            }
        }
    }
    drop(src);
    if let Ok(mut src) = decode::open_memory(data.to_vec()) {
        let r = analyze_source(src.as_mut(), Mode::Excerpt, Path::new("<fuzz>"));
        if let Ok(a) = r {
            assert!(a.fingerprint.first_non_finite().is_none());
        }
    }
}

/// Sample rates tried: odd ones at both ends and the common ones.
const RATES: [u32; 14] = [
    1, 7, 999, 1_000, 8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 192_000, 384_000, 1_536_000,
    1_536_001,
];

/// Analyses a short odd buffer made from the input: byte 0 picks the sample rate (or, past the
/// list, bytes 4..8 give any u32), byte 1 the channels (1 to 8), byte 2 the signal (the input's
/// bytes as f32 or i16, NaN and infinities, denormals, a full-scale square, a single sample,
/// silence), byte 3 the length (a single frame to 2.5 s), byte 4 the mode.
pub fn analyze_pcm(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let rate = match RATES.get(data[0] as usize % 16) {
        Some(&r) => r,
        None => u32::from_le_bytes([data[4], data[5], data[6], data[7]]),
    };
    let ch = 1 + data[1] as usize % 8;
    let body = &data[8..];
    // At most 2.5 s, and at most 2 M samples in all: enough for every code path, fast enough.
    let max_frames = ((rate as u64 * 5 / 2).min(2_000_000 / ch as u64)).max(1) as usize;
    let frames = match data[3] % 4 {
        0 => 1,
        1 => (body.len() / 4 / ch).max(1),
        _ => max_frames * (data[3] as usize) / 255,
    }
    .clamp(1, max_frames);
    let n = frames * ch;
    let byte = |i: usize| body.get(i % body.len().max(1)).copied().unwrap_or(0);
    let samples: Vec<f32> = match data[2] % 8 {
        0 => (0..n)
            .map(|i| {
                f32::from_le_bytes([
                    byte(4 * i),
                    byte(4 * i + 1),
                    byte(4 * i + 2),
                    byte(4 * i + 3),
                ])
            })
            .collect(),
        1 => (0..n)
            .map(|i| match byte(i) % 4 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                _ => byte(i) as f32 / 255.0 - 0.5,
            })
            .collect(),
        2 => (0..n)
            .map(|i| {
                f32::from_bits(u32::from(byte(i)) * 0x1F3) * if i % 2 == 0 { 1.0 } else { -1.0 }
            })
            .collect(),
        3 => {
            let period = 1 + byte(0) as usize;
            (0..n)
                .map(|i| {
                    if (i / ch / period).is_multiple_of(2) {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect()
        }
        4 => {
            let mut v = vec![0.0; n];
            v[byte(0) as usize % n] = 1.0;
            v
        }
        5 => vec![0.0; n],
        _ => (0..n)
            .map(|i| i16::from_le_bytes([byte(2 * i), byte(2 * i + 1)]) as f32 / 32768.0)
            .collect(),
    };
    let mode = if data[4].is_multiple_of(2) {
        Mode::Excerpt
    } else {
        Mode::Full
    };
    if let Ok(a) = sonoprint_engine::analyze_pcm(samples, rate, ch, mode) {
        assert!(a.fingerprint.first_non_finite().is_none());
        assert!(a.metadata.analyzed_sec > 0.0);
    }
}
