//! The analysis of one file: the excerpt plan (`docs/fingerprint.md`, "Excerpt and full
//! mode") and the streaming pipeline that feeds every extractor of [`features`] from one pass
//! over the decoded audio.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::decode::{self, Access, AudioSource, Failure, OpenOptions, Stop, StreamInfo};
use crate::dsp::resample::{ResampleError, Resampler};
use crate::dsp::stft::{Frame, Stft};
use crate::features::{self, Extractor, Needs, Output, Summary};
use sonoprint_core::{Analysis, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};
use sonoprint_core::{AnalysisError, ErrorClass};

/// Tracks up to this long are analysed whole in excerpt mode.
const WHOLE_UP_TO_SEC: u64 = 120;
/// Excerpt length and where the excerpts are centred.
const EXCERPT_SEC: u64 = 30;
const EXCERPT_CENTRES: [f64; 3] = [0.25, 0.50, 0.75];
/// Shortest audio that gets a fingerprint.
const MIN_SECONDS: f64 = 1.0;
/// Sample rates analysed: 1 kHz (below, no audio band survives: a stated rate of 1 Hz turned
/// 4 samples into "4 s" of music) to 1.536 MHz (8 × 192 kHz; the resampler's filters and buffers
/// are sized by the ratio). Anything else is a damaged header.
const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 1_536_000;
/// Most channels analysed (the buffers grow with them; no music format carries more).
const MAX_CHANNELS: usize = 64;
/// Largest sample magnitude analysed (+60 dBFS): beyond it a float stream is damaged, and values
/// near `f32::MAX` overflow to infinity in the mono mix and the resampler's FFT (rubato then
/// panics on the non-finite spectrum; found by fuzzing `analyze_pcm`). Clamped.
const MAX_SAMPLE: f32 = 1_000.0;

/// Default share of its declared duration a file must decode to be analysed.
pub const DEFAULT_MIN_COVERAGE: f64 = 0.9;

/// How to analyse a file.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub open: OpenOptions,
    /// A file whose decodable audio covers less than this share of the duration its container
    /// declares fails as `truncated`; above it, what decodes is analysed and flagged
    /// `truncated`. 0 analyses any partial file (of at least 1 s).
    pub min_coverage: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::default(),
            open: OpenOptions::default(),
            min_coverage: DEFAULT_MIN_COVERAGE,
        }
    }
}

impl Options {
    /// Checks a `min_coverage` given by a user: a share in [0, 1].
    pub fn check_min_coverage(v: f64) -> Result<f64, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "the minimum coverage must be a share between 0 and 1 (0.9 = 90 %), not {v}"
            ))
        }
    }
}

/// A stretch of the track to analyse, in sample frames.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    /// `None`: to the end of the stream.
    len: Option<u64>,
}

fn plan(mode: Mode, info: &StreamInfo) -> Vec<Segment> {
    let sr = info.sample_rate as u64;
    match (mode, info.total_frames) {
        (Mode::Full, _) => vec![Segment {
            start: 0,
            len: None,
        }],
        (Mode::Excerpt, Some(total)) if total > WHOLE_UP_TO_SEC * sr => EXCERPT_CENTRES
            .iter()
            .map(|&c| Segment {
                start: ((total as f64 * c) as u64).saturating_sub(EXCERPT_SEC * sr / 2),
                len: Some(EXCERPT_SEC * sr),
            })
            .collect(),
        (Mode::Excerpt, Some(_)) => vec![Segment {
            start: 0,
            len: None,
        }],
        // Unknown duration: the first 120 s.
        (Mode::Excerpt, None) => vec![Segment {
            start: 0,
            len: Some(WHOLE_UP_TO_SEC * sr),
        }],
    }
}

/// Analyses one file. The decoder is chosen by [`decode::decode_with`].
pub fn analyze_file(path: &Path, opts: &Options) -> Result<Analysis, AnalysisError> {
    decode::decode_with(path, &opts.open, |opened| {
        match run(opened.source(), opts.mode, opts.min_coverage) {
            // The excerpts could not all be reached (a file shorter than its header says):
            // analyse what decodes, from the start, with the same decoder.
            Err(RunError::PlanBroken) => {
                opened.reopen().map_err(|failure| Stop {
                    failure,
                    before_audio: false,
                })?;
                run_whole_after_broken_plan(opened.source(), opts.mode, opts.min_coverage).map_err(
                    |e| Stop {
                        failure: e.into_failure(),
                        before_audio: false,
                    },
                )
            }
            Err(RunError::Failed { failure, audio }) => Err(Stop {
                failure,
                before_audio: !audio,
            }),
            Ok(a) => Ok(a),
        }
    })
}

/// The whole stream from the start, after an excerpt plan that ran out of audio.
fn run_whole_after_broken_plan(
    src: &mut dyn AudioSource,
    mode: Mode,
    min_coverage: f64,
) -> Result<Analysis, RunError> {
    run_plan(
        src,
        &[Segment {
            start: 0,
            len: None,
        }],
        mode,
        min_coverage,
        true,
    )
}

/// Analyses audio from any source (for example a [`MemorySource`](crate::decode::MemorySource)).
/// `name` only labels errors.
pub fn analyze_source(
    src: &mut dyn AudioSource,
    mode: Mode,
    name: &Path,
) -> Result<Analysis, AnalysisError> {
    let result = match run(src, mode, DEFAULT_MIN_COVERAGE) {
        Err(RunError::PlanBroken) => {
            src.seek(0)
                .map_err(|f| AnalysisError::new(f.class, name, f.message))?;
            run_whole_after_broken_plan(src, mode, DEFAULT_MIN_COVERAGE)
        }
        other => other,
    };
    result.map_err(|e| {
        let f = e.into_failure();
        AnalysisError::new(f.class, name, f.message)
    })
}

/// Analyses interleaved `f32` samples in memory.
pub fn analyze_pcm(
    samples: Vec<f32>,
    sample_rate: u32,
    channels: usize,
    mode: Mode,
) -> Result<Analysis, AnalysisError> {
    let mut src = decode::MemorySource::new(samples, sample_rate, channels);
    analyze_source(&mut src, mode, Path::new("<memory>"))
}

/// Analyses one file on a worker thread, so that a decoder that panics or never returns costs
/// this call a classified error instead of the caller. A stuck thread cannot be killed: it is
/// left behind, and a process that must stay clean (the batch runner) isolates decodes in
/// worker processes instead.
pub fn analyze_file_guarded(
    path: &Path,
    opts: &Options,
    timeout: Duration,
) -> Result<Analysis, AnalysisError> {
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut o = opts.clone();
    o.open.cancel = Some(Arc::clone(&cancel));
    let p = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("analyze".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyze_file(&p, &o)));
            if tx.send(r).is_err() {
                // The caller stopped waiting (timeout): the result has nobody to go to.
            }
        });
    if let Err(e) = spawned {
        return Err(AnalysisError::new(
            ErrorClass::Io,
            path,
            format!("cannot start an analysis thread: {e}"),
        ));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(AnalysisError::new(
                ErrorClass::Panic,
                path,
                format!("the decoder or analyser panicked: {what}; please report this file"),
            ))
        }
        Err(_) => {
            // The thread stops at its next packet; a decoder stuck inside one packet cannot be
            // stopped from here (the worker processes of `run` and `serve` are killed instead).
            cancel.store(true, Ordering::Relaxed);
            Err(AnalysisError::new(
                ErrorClass::Timeout,
                path,
                format!(
                    "analysis did not finish within {} s; the file may be damaged",
                    timeout.as_secs_f64()
                ),
            ))
        }
    }
}

/// The pipeline cannot be built for this stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PipelineError {
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

enum RunError {
    /// An excerpt could not be reached or ended early.
    PlanBroken,
    Failed {
        failure: Failure,
        audio: bool,
    },
}

impl RunError {
    fn into_failure(self) -> Failure {
        match self {
            RunError::PlanBroken => {
                Failure::new(ErrorClass::Corrupt, "the excerpts could not be reached")
            }
            RunError::Failed { failure, .. } => failure,
        }
    }
}

fn run(src: &mut dyn AudioSource, mode: Mode, min_coverage: f64) -> Result<Analysis, RunError> {
    let segments = plan(mode, src.info());
    run_plan(src, &segments, mode, min_coverage, false)
}

/// Whether audio decodes at `frame`: the excerpts of a file cut after them would not notice
/// that most of its declared length is missing.
fn decodes_at(src: &mut dyn AudioSource, frame: u64) -> bool {
    match src.seek(frame) {
        Ok(_) => matches!(src.next_chunk(), Ok(Some(c)) if !c.is_empty()),
        Err(_) => false,
    }
}

fn run_plan(
    src: &mut dyn AudioSource,
    segments: &[Segment],
    mode: Mode,
    min_coverage: f64,
    fallback: bool,
) -> Result<Analysis, RunError> {
    let info = src.info().clone();
    let failed = |failure: Failure, audio: bool| RunError::Failed { failure, audio };
    if info.channels == 0 {
        return Err(failed(
            Failure::new(ErrorClass::Corrupt, "the stream states no channel count"),
            false,
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&info.sample_rate) {
        return Err(failed(
            Failure::new(
                ErrorClass::UnsupportedCodec,
                format!(
                    "the stream states a sample rate of {} Hz; sonoprint analyses 1 kHz to \
                     1.536 MHz (the header may be damaged)",
                    info.sample_rate
                ),
            ),
            false,
        ));
    }
    if info.channels > MAX_CHANNELS {
        return Err(failed(
            Failure::new(
                ErrorClass::UnsupportedCodec,
                format!(
                    "the stream states {} channels; sonoprint analyses at most {MAX_CHANNELS} \
                     (the header may be damaged)",
                    info.channels
                ),
            ),
            false,
        ));
    }
    let ch = info.channels;
    let mut pipe = Pipeline::new(&info).map_err(|e| {
        failed(
            Failure::new(ErrorClass::UnsupportedCodec, e.to_string()),
            false,
        )
    })?;
    let mut access = if segments.len() == 1 { "whole" } else { "seek" };
    let mut total_frames = 0u64;
    let mut short_segment = false;
    for seg in segments {
        if seg.start > 0 {
            match src.seek(seg.start) {
                Ok(Access::Seek) => {}
                Ok(Access::Sequential) => access = "sequential",
                Err(_) => return Err(RunError::PlanBroken),
            }
        }
        pipe.begin_segment();
        let mut got = 0u64;
        loop {
            let chunk = match src.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(f) => return Err(failed(f, total_frames + got > 0)),
            };
            let frames = (chunk.len() / ch) as u64;
            let take = seg.len.map_or(frames, |l| frames.min(l - got));
            pipe.push(&chunk[..take as usize * ch]);
            got += take;
            if seg.len.is_some_and(|l| got >= l) {
                break;
            }
        }
        pipe.end_segment();
        total_frames += got;
        if seg.len.is_some_and(|l| got < l) {
            short_segment = true;
        }
    }
    let sr = info.sample_rate as f64;
    let analyzed = total_frames as f64 / sr;
    let whole = segments.len() == 1 && segments[0].len.is_none();
    // An excerpt plan that ran out of audio means the file is shorter than its header says.
    if short_segment && segments.len() > 1 && !fallback {
        return Err(RunError::PlanBroken);
    }
    // The excerpts end at about 90 % of the track: check that audio decodes up to the minimum
    // coverage, else measure the whole file from the start.
    if let (Some(t), false, true) = (info.total_frames, fallback, segments.len() > 1) {
        let last_needed = (t as f64 * min_coverage - sr).max(0.0) as u64;
        let reached = segments
            .iter()
            .any(|s| s.start + s.len.unwrap_or(0) >= last_needed);
        if !reached && !decodes_at(src, last_needed) {
            return Err(RunError::PlanBroken);
        }
    }
    let stated_short = info
        .total_frames
        .is_some_and(|t| whole && (total_frames as f64) + 0.5 * sr < t as f64 * 0.99);
    let truncated = src.ended_early() || stated_short || fallback;
    // Too little of the declared duration decodes: this is not the track.
    if let (Some(t), true) = (info.total_frames, whole) {
        let declared = t as f64 / sr;
        if truncated && analyzed < declared * min_coverage {
            return Err(failed(
                Failure::new(
                    ErrorClass::Truncated,
                    format!(
                        "the file appears corrupted or truncated: {analyzed:.1} s of audio decode \
                         out of the {declared:.1} s its header declares ({:.0} %, under the \
                         {:.0} % required; --min-coverage sets the share)",
                        100.0 * analyzed / declared,
                        100.0 * min_coverage
                    ),
                ),
                total_frames > 0,
            ));
        }
    }
    if analyzed < MIN_SECONDS {
        let (class, what) = if truncated {
            (ErrorClass::Truncated, "the file is truncated and")
        } else {
            (ErrorClass::TooShort, "the track")
        };
        return Err(failed(
            Failure::new(
                class,
                format!(
                    "{what} holds {analyzed:.2} s of audio; at least {MIN_SECONDS} s is needed"
                ),
            ),
            total_frames > 0,
        ));
    }
    let fingerprint = pipe.finish(analyzed).map_err(|m| {
        failed(
            Failure::new(
                ErrorClass::Analysis,
                format!("{m}; this is a bug in sonoprint, please report the file"),
            ),
            true,
        )
    })?;
    if let Some(dim) = fingerprint.first_non_finite() {
        return Err(failed(
            Failure::new(ErrorClass::Analysis, format!("dimension {dim} came out non-finite; this is a bug in sonoprint, please report the file")),
            true,
        ));
    }
    let duration_known = info.total_frames.is_some();
    // The declared duration where the container knows it, truncated or not.
    let duration_sec = info.duration_sec().unwrap_or(analyzed);
    Ok(Analysis {
        fingerprint,
        metadata: Metadata {
            duration_sec,
            sample_rate: info.sample_rate,
            channels: ch as u32,
            bits_per_sample: info.bits_per_sample,
            format: info.format.clone(),
            codec: info.codec.clone(),
            analyzed_sec: analyzed,
            mode,
            decoder: info.decoder.to_string(),
            fingerprint_version: FINGERPRINT_VERSION,
            access: if fallback {
                "sequential".into()
            } else {
                access.into()
            },
            duration_known,
            truncated,
            skipped_packets: src.skipped_packets(),
        },
    })
}

/// Every extractor, fed from one pass over the decoded audio. Only the signals some extractor
/// needs are computed: the mono mix, its 22 050 Hz resampling, the STFT.
pub(crate) struct Pipeline {
    channels: usize,
    lfe: Option<usize>,
    extractors: Vec<Box<dyn Extractor>>,
    /// Indices into `extractors` of those reading each signal.
    interleaved: Vec<usize>,
    mono: Vec<usize>,
    mono22: Vec<usize>,
    frames: Vec<usize>,
    /// `None` when no extractor reads 22 050 Hz audio.
    resampler: Option<Resampler>,
    stft: Stft,
    mono_buf: Vec<f32>,
    mono22_buf: Vec<f32>,
    clean: Vec<f32>,
}

impl Pipeline {
    /// The pipeline of the fingerprint: every extractor of [`features::extractors`].
    pub(crate) fn new(info: &StreamInfo) -> Result<Pipeline, PipelineError> {
        Pipeline::with_extractors(info, features::extractors(info))
    }

    /// A pipeline driving `extractors`.
    pub(crate) fn with_extractors(
        info: &StreamInfo,
        extractors: Vec<Box<dyn Extractor>>,
    ) -> Result<Pipeline, PipelineError> {
        let which = |f: fn(&Needs) -> bool| -> Vec<usize> {
            (0..extractors.len())
                .filter(|&i| f(&extractors[i].needs()))
                .collect()
        };
        let interleaved = which(|n| n.interleaved);
        let mono = which(|n| n.mono);
        let mono22 = which(|n| n.mono22);
        let frames = which(|n| n.frames);
        let resampler = if mono22.is_empty() && frames.is_empty() {
            None
        } else {
            Some(Resampler::new(info.sample_rate)?)
        };
        Ok(Pipeline {
            channels: info.channels,
            lfe: info.lfe,
            extractors,
            interleaved,
            mono,
            mono22,
            frames,
            resampler,
            stft: Stft::new(),
            mono_buf: Vec::new(),
            mono22_buf: Vec::new(),
            clean: Vec::new(),
        })
    }

    fn begin_segment(&mut self) {
        self.stft.begin_segment();
        for e in &mut self.extractors {
            e.begin_segment();
        }
    }

    fn push(&mut self, x: &[f32]) {
        // A decoder may emit NaN or infinity on a damaged packet: read it as silence; absurd
        // magnitudes are clamped (`MAX_SAMPLE`).
        let x = if all_in_range(x) {
            x
        } else {
            self.clean.clear();
            self.clean.extend(x.iter().map(|&v| {
                if v.is_finite() {
                    v.clamp(-MAX_SAMPLE, MAX_SAMPLE)
                } else {
                    0.0
                }
            }));
            &self.clean
        };
        for &i in &self.interleaved {
            self.extractors[i].push_interleaved(x);
        }
        if self.mono.is_empty() && self.resampler.is_none() {
            return;
        }
        mono_mix(x, self.channels, self.lfe, &mut self.mono_buf);
        for &i in &self.mono {
            self.extractors[i].push_mono(&self.mono_buf);
        }
        if let Some(r) = self.resampler.as_mut() {
            r.push(&self.mono_buf, &mut self.mono22_buf);
            self.feed22(false);
        }
    }

    /// Feeds the resampled mono mix to the extractors of 22 050 Hz audio; `last` ends the
    /// segment's STFT.
    fn feed22(&mut self, last: bool) {
        let Pipeline {
            extractors,
            mono22,
            frames,
            stft,
            mono22_buf,
            ..
        } = self;
        if !frames.is_empty() {
            let mut each = |fr: &Frame<'_>| {
                for &i in frames.iter() {
                    extractors[i].push_frame(fr);
                }
            };
            stft.push(mono22_buf, &mut each);
            if last {
                stft.end_segment(&mut each);
            }
        }
        for &i in mono22.iter() {
            extractors[i].push_mono22(mono22_buf);
        }
        mono22_buf.clear();
    }

    fn end_segment(&mut self) {
        if let Some(r) = self.resampler.as_mut() {
            r.finish(&mut self.mono22_buf);
            self.feed22(true);
        }
        for e in &mut self.extractors {
            e.end_segment();
        }
    }

    /// The fingerprint: each extractor's dimensions. An extractor that sets a dimension it did
    /// not declare, or leaves one unset, is a bug, reported as such.
    fn finish(mut self, analyzed_sec: f64) -> Result<Fingerprint, String> {
        let summary = Summary { analyzed_sec };
        let mut out = Output::new();
        for e in &mut self.extractors {
            out.start(e.as_ref());
            e.finish(&summary, &mut out);
        }
        out.into_fingerprint()
    }
}

/// Whether every sample is finite and within ±`MAX_SAMPLE` (NaN fails the comparison). Checked
/// in blocks without an early exit inside a block, so the comparisons vectorise: a plain
/// `all` stops at each sample to decide, and cost as much as the mono mix.
fn all_in_range(x: &[f32]) -> bool {
    x.chunks(256)
        .all(|c| c.iter().fold(true, |ok, v| ok & (v.abs() <= MAX_SAMPLE)))
}

/// The mono mix: the mean of all channels but the LFE.
fn mono_mix(x: &[f32], channels: usize, lfe: Option<usize>, out: &mut Vec<f32>) {
    out.clear();
    match (channels, lfe) {
        (1, _) => out.extend_from_slice(x),
        (2, _) => out.extend(x.chunks_exact(2).map(|f| 0.5 * (f[0] + f[1]))),
        (n, lfe) => {
            let used = n - usize::from(lfe.is_some_and(|l| l < n));
            let scale = 1.0 / used.max(1) as f32;
            out.extend(x.chunks_exact(n).map(|f| {
                let s: f32 = f
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != lfe)
                    .map(|(_, v)| v)
                    .sum();
                s * scale
            }));
        }
    }
}

/// What decoding alone produced: the floor the analysis is measured against.
#[derive(Debug, Clone, Copy)]
pub struct DecodeStats {
    /// Seconds of audio decoded.
    pub decoded_sec: f64,
    /// Duration of the track.
    pub duration_sec: f64,
}

/// Decodes exactly what `analyze_file` would analyse (same excerpt plan, same seeks) and
/// discards it: the cost of decoding alone, for benchmarks.
pub fn decode_file(path: &Path, opts: &Options) -> Result<DecodeStats, AnalysisError> {
    let mut src = decode::open(path, &opts.open)?;
    let info = src.info().clone();
    let wrap = |f: Failure| AnalysisError::new(f.class, path, f.message);
    let ch = info.channels.max(1) as u64;
    let mut frames = 0u64;
    for seg in plan(opts.mode, &info) {
        if seg.start > 0 {
            src.seek(seg.start).map_err(wrap)?;
        }
        let mut got = 0u64;
        while let Some(chunk) = src.next_chunk().map_err(wrap)? {
            got += chunk.len() as u64 / ch;
            if seg.len.is_some_and(|l| got >= l) {
                got = seg.len.unwrap_or(got);
                break;
            }
        }
        frames += got;
    }
    let decoded_sec = frames as f64 / info.sample_rate as f64;
    Ok(DecodeStats {
        decoded_sec,
        duration_sec: info.duration_sec().unwrap_or(decoded_sec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the dummy extractor was given.
    #[derive(Debug, Default, Clone, Copy, PartialEq)]
    struct Seen {
        segments: usize,
        interleaved: usize,
        mono: usize,
        mono22: usize,
        frames: usize,
    }

    /// An extractor written in the test build: it reads every signal and claims
    /// `pitch_stability` (every dimension has an owner already, so it replaces one).
    struct Dummy(Arc<Mutex<Seen>>);

    impl Extractor for Dummy {
        fn name(&self) -> &'static str {
            "dummy"
        }
        fn dimensions(&self) -> &'static [&'static str] {
            &["pitch_stability"]
        }
        fn needs(&self) -> Needs {
            Needs {
                interleaved: true,
                mono: true,
                mono22: true,
                frames: true,
            }
        }
        fn begin_segment(&mut self) {
            self.0.lock().unwrap().segments += 1;
        }
        fn push_interleaved(&mut self, x: &[f32]) {
            self.0.lock().unwrap().interleaved += x.len();
        }
        fn push_mono(&mut self, x: &[f32]) {
            self.0.lock().unwrap().mono += x.len();
        }
        fn push_mono22(&mut self, x: &[f32]) {
            self.0.lock().unwrap().mono22 += x.len();
        }
        fn push_frame(&mut self, fr: &Frame<'_>) {
            assert_eq!(fr.power.len(), crate::dsp::N_BINS);
            self.0.lock().unwrap().frames += 1;
        }
        fn finish(&mut self, summary: &Summary, out: &mut Output) {
            out.set("pitch_stability", summary.analyzed_sec / 100.0);
        }
    }

    fn info() -> StreamInfo {
        StreamInfo {
            sample_rate: 44_100,
            channels: 2,
            bits_per_sample: None,
            format: "memory".into(),
            codec: "pcm_f32le".into(),
            total_frames: None,
            lfe: None,
            decoder: "test",
        }
    }

    /// Two segments of 3 s of a stereo chirp, fed in uneven chunks.
    fn feed(pipe: &mut Pipeline) -> f64 {
        let n = 3 * 44_100;
        let x: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t = i as f32 / 44_100.0;
                let v = 0.3 * (2.0 * std::f32::consts::PI * (200.0 + 300.0 * t) * t).sin();
                [v, 0.5 * v]
            })
            .collect();
        for _ in 0..2 {
            pipe.begin_segment();
            for chunk in x.chunks(2 * 1000 + 2) {
                pipe.push(chunk);
            }
            pipe.end_segment();
        }
        6.0
    }

    #[test]
    fn a_dummy_extractor_is_driven_and_seen_in_the_output() {
        let info = info();
        let mut normal = Pipeline::new(&info).unwrap();
        let secs = feed(&mut normal);
        let want = normal.finish(secs).unwrap();

        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut list = features::extractors(&info);
        list.retain(|e| e.name() != "pitch");
        list.push(Box::new(Dummy(seen.clone())));
        let mut pipe = Pipeline::with_extractors(&info, list).unwrap();
        feed(&mut pipe);
        let got = pipe.finish(secs).unwrap();

        assert_eq!(got.pitch_stability, 0.06);
        let mut expected = want;
        expected.pitch_stability = 0.06;
        assert_eq!(got, expected, "the other extractors are unaffected");

        let seen = *seen.lock().unwrap();
        assert_eq!(seen.segments, 2);
        assert_eq!(seen.interleaved, 2 * 2 * 3 * 44_100);
        assert_eq!(seen.mono, 2 * 3 * 44_100);
        // 3 s at 22 050 Hz per segment, and one centred frame per hop of it.
        assert_eq!(seen.mono22, 2 * 3 * 22_050);
        assert_eq!(seen.frames, 2 * (1 + 3 * 22_050 / crate::dsp::HOP));
    }

    #[test]
    fn a_dimension_nobody_sets_is_a_reported_bug() {
        let info = info();
        let mut list = features::extractors(&info);
        list.retain(|e| e.name() != "hpss");
        let mut pipe = Pipeline::with_extractors(&info, list).unwrap();
        let secs = feed(&mut pipe);
        assert_eq!(
            pipe.finish(secs).unwrap_err(),
            "no extractor set harmonic_ratio"
        );
    }

    #[test]
    fn samples_out_of_range_are_found_anywhere() {
        let mut x = vec![0.5f32; 1000];
        assert!(all_in_range(&x));
        for bad in [f32::NAN, f32::INFINITY, -f32::INFINITY, 1001.0, -1e30] {
            for at in [0, 255, 256, 999] {
                x[at] = bad;
                assert!(!all_in_range(&x), "{bad} at {at}");
                x[at] = 0.5;
            }
        }
        x[10] = -MAX_SAMPLE;
        assert!(all_in_range(&x));
        assert!(all_in_range(&[]));
    }

    #[test]
    fn only_needed_signals_are_computed() {
        // No extractor of 22 050 Hz audio: no resampler (any rate is accepted).
        let mut odd = info();
        odd.sample_rate = 7;
        let list: Vec<Box<dyn Extractor>> =
            vec![Box::new(crate::features::native::Native::new(7, 2))];
        let pipe = Pipeline::with_extractors(&odd, list).unwrap();
        assert!(pipe.resampler.is_none());
        assert!(Pipeline::new(&info()).unwrap().resampler.is_some());
    }
}
