//! Where the analysis time goes: each stage of the pipeline timed on its own, on 30 s of
//! generated stereo audio at 44.1 kHz (a chord, a drum pattern and noise, so that every
//! extractor does its real work: voiced frames, onsets, active frames).
//!
//! `cargo bench -p sonoprint-engine --bench extractors` prints, per stage, the CPU time per
//! second of audio (thread CPU time, the median of several rounds) and its share of the total. Compare two
//! builds by running both in one sitting: this machine's speed drifts between hours.

use std::hint::black_box;

use sonoprint_engine::decode::StreamInfo;
use sonoprint_engine::dsp::resample::Resampler;
use sonoprint_engine::dsp::stft::{Frame, Stft};
use sonoprint_engine::dsp::N_BINS;
use sonoprint_engine::features::{self, Extractor, Output, Summary};

const RATE: u32 = 44_100;
const SECONDS: usize = 30;
const ROUNDS: usize = 7;

/// Deterministic pseudo-random numbers in [-1, 1) (no dependency needed for a test signal).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn music() -> Vec<f32> {
    let n = RATE as usize * SECONDS;
    let mut rng = Lcg(7);
    let mut out = Vec::with_capacity(2 * n);
    let tau = 2.0 * std::f32::consts::PI;
    for i in 0..n {
        let t = i as f32 / RATE as f32;
        // A chord that changes every 2 s, a kick every 0.5 s (120 BPM), a hi-hat of noise.
        let root = [220.0, 196.0, 246.9, 174.6][(t / 2.0) as usize % 4];
        let chord: f32 = [1.0, 1.26, 1.5]
            .iter()
            .map(|m| (tau * root * m * t).sin())
            .sum::<f32>()
            * 0.12;
        let beat = t % 0.5;
        let kick = (tau * 60.0 * beat).sin() * (-beat * 30.0).exp() * 0.5;
        let hat = rng.next() * (-(t % 0.25) * 80.0).exp() * 0.1;
        let l = chord + kick + hat;
        let r = 0.8 * chord + kick - hat;
        out.push(l);
        out.push(r);
    }
    out
}

/// CPU seconds of this thread: unlike wall time, not inflated when other processes share the
/// cores (a build, another benchmark).
fn thread_cpu() -> f64 {
    // SAFETY: `timespec` is plain old data and `clock_gettime` only writes into it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a valid, writable `timespec`.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        panic!("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Median CPU seconds of `f` over `ROUNDS` runs.
fn time(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t0 = thread_cpu();
            f();
            thread_cpu() - t0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[ROUNDS / 2]
}

/// A frame of the STFT, owned.
struct OwnedFrame {
    mag: Vec<f32>,
    power: Vec<f32>,
    rms: f32,
}

fn main() {
    let info = StreamInfo {
        sample_rate: RATE,
        channels: 2,
        bits_per_sample: Some(16),
        format: "bench".into(),
        codec: "pcm".into(),
        total_frames: None,
        lfe: None,
        decoder: "bench",
    };
    let x = music();
    let mono: Vec<f32> = x.chunks_exact(2).map(|f| 0.5 * (f[0] + f[1])).collect();
    let mut mono22 = Vec::new();
    let mut frames: Vec<OwnedFrame> = Vec::new();
    {
        let mut r = Resampler::new(RATE).expect("44.1 kHz is supported");
        r.push(&mono, &mut mono22);
        r.finish(&mut mono22);
        let mut stft = Stft::new();
        stft.begin_segment();
        let mut keep = |fr: &Frame<'_>| {
            frames.push(OwnedFrame {
                mag: fr.mag.to_vec(),
                power: fr.power.to_vec(),
                rms: fr.rms,
            })
        };
        stft.push(&mono22, &mut keep);
        stft.end_segment(&mut keep);
    }
    assert!(frames.iter().all(|f| f.power.len() == N_BINS));

    let mut rows: Vec<(String, f64)> = Vec::new();
    // What every file pays before its first sample: the extractors, the resampler and the STFT
    // (filterbanks, windows, FFT plans). Reported apart: it does not scale with the audio.
    let setup = time(|| {
        black_box(features::extractors(&info));
        black_box(Resampler::new(RATE).expect("44.1 kHz is supported"));
        black_box(Stft::new());
    });
    // Chunks of 4096 frames, as a decoder hands them out.
    let chunk = 8192;
    rows.push((
        "resample 44.1k->22.05k".into(),
        time(|| {
            let mut r = Resampler::new(RATE).expect("44.1 kHz is supported");
            let mut out = Vec::new();
            for c in mono.chunks(chunk / 2) {
                r.push(c, &mut out);
                out.clear();
            }
            r.finish(&mut out);
            black_box(&out);
        }),
    ));
    rows.push((
        "stft 2048/512".into(),
        time(|| {
            let mut stft = Stft::new();
            stft.begin_segment();
            let mut n = 0usize;
            for c in mono22.chunks(chunk / 4) {
                stft.push(c, &mut |fr| n += fr.power.len());
            }
            stft.end_segment(&mut |fr| n += fr.power.len());
            black_box(n);
        }),
    ));
    let names: Vec<&'static str> = features::extractors(&info)
        .iter()
        .map(|e| e.name())
        .collect();
    for name in names {
        let secs = time(|| {
            let mut e: Box<dyn Extractor> = features::extractors(&info)
                .into_iter()
                .find(|e| e.name() == name)
                .expect("the extractor is in the list");
            let needs = e.needs();
            e.begin_segment();
            if needs.interleaved {
                for c in x.chunks(chunk) {
                    e.push_interleaved(c);
                }
            }
            if needs.mono {
                for c in mono.chunks(chunk / 2) {
                    e.push_mono(c);
                }
            }
            if needs.mono22 {
                for c in mono22.chunks(chunk / 4) {
                    e.push_mono22(c);
                }
            }
            if needs.frames {
                for f in &frames {
                    e.push_frame(&Frame {
                        mag: &f.mag,
                        power: &f.power,
                        rms: f.rms,
                    });
                }
            }
            e.end_segment();
            let mut out = Output::new();
            out.start(e.as_ref());
            e.finish(
                &Summary {
                    analyzed_sec: SECONDS as f64,
                },
                &mut out,
            );
            black_box(out.into_fingerprint().ok());
        });
        rows.push((format!("extractor {name}"), secs));
    }
    let total: f64 = rows.iter().map(|r| r.1).sum();
    println!("{SECONDS} s of generated stereo audio at {RATE} Hz, median of {ROUNDS} rounds");
    println!("{:<26} {:>14} {:>7}", "stage", "CPU ms/audio s", "share");
    for (name, secs) in &rows {
        println!(
            "{:<26} {:>14.3} {:>6.1}%",
            name,
            1e3 * secs / SECONDS as f64,
            100.0 * secs / total
        );
    }
    println!(
        "{:<26} {:>14.3} {:>6.1}%",
        "total",
        1e3 * total / SECONDS as f64,
        100.0
    );
    println!("setup per file: {:.3} ms CPU", 1e3 * setup);
}
