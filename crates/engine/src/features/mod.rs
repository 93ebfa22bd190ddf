//! The dimension families, each an [`Extractor`] that the pipeline (`analyze.rs`) drives.
//!
//! What each dimension means, how it is computed and its range are in `docs/fingerprint.md`.
//! An extractor declares the signals it reads ([`Needs`]) and the dimensions it fills
//! ([`Extractor::dimensions`], names from [`sonoprint_core::DIMENSIONS`]); the pipeline feeds
//! it segment by segment and collects its values at the end. Every dimension is filled by
//! exactly one extractor of [`extractors`] (checked by a test and at run time).
//!
//! Adding a dimension: one line in `crates/core/src/fingerprint.rs` (its name, unit, range and
//! description), one file here with its extractor, and one line in [`extractors`].

pub mod bands;
pub mod hpss;
pub mod loudness;
pub mod native;
pub mod pitch;
pub mod rhythm;
pub mod spectral;

use sonoprint_core::{Fingerprint, DIMENSIONS, DIMENSION_COUNT};

use crate::decode::StreamInfo;
use crate::dsp::stft::Frame;

/// Which signals an extractor reads; the pipeline computes only what some extractor needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The decoded samples at the file's own rate, interleaved, every channel.
    pub interleaved: bool,
    /// The mono mix (mean of the channels but the LFE) at the file's own rate.
    pub mono: bool,
    /// The mono mix resampled to 22 050 Hz.
    pub mono22: bool,
    /// The frames of the 22 050 Hz STFT (2048-point Hann, hop 512, magnitude and power).
    pub frames: bool,
}

/// What is known once every segment has been fed.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Seconds of audio analysed (all segments together).
    pub analyzed_sec: f64,
}

/// One family of dimensions. The pipeline calls, for each segment of the excerpt plan,
/// `begin_segment`, then the `push_*` methods the extractor [`needs`](Extractor::needs) with
/// the segment's audio in order (chunks of any size), then `end_segment`; after the last
/// segment, `finish` once.
pub trait Extractor: Send {
    /// A short name for errors and tests.
    fn name(&self) -> &'static str;
    /// The dimensions [`finish`](Extractor::finish) fills, by name.
    fn dimensions(&self) -> &'static [&'static str];
    /// The signals it reads.
    fn needs(&self) -> Needs;
    /// A new segment starts: the next samples are not contiguous with the previous ones.
    fn begin_segment(&mut self) {}
    /// Interleaved samples at the file's rate (whole frames), if `needs().interleaved`.
    fn push_interleaved(&mut self, _x: &[f32]) {}
    /// The mono mix at the file's rate, if `needs().mono`.
    fn push_mono(&mut self, _x: &[f32]) {}
    /// The mono mix at 22 050 Hz, if `needs().mono22`.
    fn push_mono22(&mut self, _x: &[f32]) {}
    /// One STFT frame at 22 050 Hz, if `needs().frames`.
    fn push_frame(&mut self, _frame: &Frame<'_>) {}
    /// The segment ended.
    fn end_segment(&mut self) {}
    /// Writes the dimensions it declared into `out`.
    fn finish(&mut self, summary: &Summary, out: &mut Output);
}

/// Every extractor of the fingerprint, for a stream described by `info`: the one list.
pub fn extractors(info: &StreamInfo) -> Vec<Box<dyn Extractor>> {
    vec![
        Box::new(bands::Bands::new(info.sample_rate)),
        Box::new(loudness::Loudness::new(
            info.sample_rate,
            info.channels,
            info.lfe,
        )),
        Box::new(native::Native::new(info.sample_rate, info.channels)),
        Box::new(rhythm::Rhythm::new()),
        Box::new(spectral::Spectral::new()),
        Box::new(hpss::Hpss::new()),
        Box::new(pitch::PitchTracker::new()),
    ]
}

/// The fingerprint being filled: each dimension once, by the extractor that declared it.
pub struct Output {
    fingerprint: Fingerprint,
    /// Which extractor set each dimension (index in [`DIMENSIONS`]).
    set_by: [Option<&'static str>; DIMENSION_COUNT],
    /// The extractor now writing and the dimensions it declared.
    current: (&'static str, &'static [&'static str]),
    /// The first rule broken, if any (a bug in an extractor).
    error: Option<String>,
}

impl Default for Output {
    fn default() -> Self {
        Self::new()
    }
}

impl Output {
    pub fn new() -> Self {
        Output {
            fingerprint: Fingerprint::default(),
            set_by: [None; DIMENSION_COUNT],
            current: ("", &[]),
            error: None,
        }
    }

    /// The next values come from `extractor`.
    pub fn start(&mut self, extractor: &dyn Extractor) {
        self.current = (extractor.name(), extractor.dimensions());
    }

    /// Sets dimension `name`.
    pub fn set(&mut self, name: &str, value: f64) {
        let (who, declared) = self.current;
        let Some(i) = DIMENSIONS.iter().position(|d| d.name == name) else {
            return self.fail(format!("{who} sets {name}, which is not a dimension"));
        };
        if !declared.contains(&name) {
            return self.fail(format!("{who} sets {name}, which it did not declare"));
        }
        if let Some(first) = self.set_by[i] {
            return self.fail(format!("{who} sets {name}, already set by {first}"));
        }
        self.set_by[i] = Some(who);
        match self.fingerprint.get_mut(name) {
            Some(slot) => *slot = value,
            None => self.fail(format!("{name} is in DIMENSIONS but not in Fingerprint")),
        }
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
        }
    }

    /// The fingerprint, once every dimension was set exactly once; otherwise what went wrong.
    pub fn into_fingerprint(self) -> Result<Fingerprint, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.set_by.iter().position(Option::is_none) {
            Some(i) => Err(format!("no extractor set {}", DIMENSIONS[i].name)),
            None => Ok(self.fingerprint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rate: u32, channels: usize) -> StreamInfo {
        StreamInfo {
            sample_rate: rate,
            channels,
            bits_per_sample: None,
            format: "test".into(),
            codec: "test".into(),
            total_frames: None,
            lfe: None,
            decoder: "test",
        }
    }

    #[test]
    fn every_dimension_is_declared_by_exactly_one_extractor() {
        let list = extractors(&info(44_100, 2));
        for d in DIMENSIONS {
            let owners: Vec<&str> = list
                .iter()
                .filter(|e| e.dimensions().contains(&d.name))
                .map(|e| e.name())
                .collect();
            assert_eq!(owners.len(), 1, "{}: declared by {owners:?}", d.name);
        }
        for e in &list {
            for name in e.dimensions() {
                assert!(
                    DIMENSIONS.iter().any(|d| d.name == *name),
                    "{} declares {name}, not a dimension",
                    e.name()
                );
            }
            assert_ne!(e.needs(), Needs::default(), "{} reads nothing", e.name());
        }
        let mut names: Vec<&str> = list.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), list.len(), "extractor names are unique");
    }

    #[test]
    fn output_enforces_the_declarations() {
        struct Fake(&'static [&'static str]);
        impl Extractor for Fake {
            fn name(&self) -> &'static str {
                "fake"
            }
            fn dimensions(&self) -> &'static [&'static str] {
                self.0
            }
            fn needs(&self) -> Needs {
                Needs::default()
            }
            fn finish(&mut self, _: &Summary, _: &mut Output) {}
        }
        let mut out = Output::new();
        out.start(&Fake(&["lufs"]));
        out.set("lufs", -14.0);
        let err = out.into_fingerprint().unwrap_err();
        assert!(err.starts_with("no extractor set sub_bass_pct"), "{err}");

        let mut out = Output::new();
        out.start(&Fake(&["lufs"]));
        out.set("tempo_bpm", 120.0);
        assert!(out
            .into_fingerprint()
            .unwrap_err()
            .contains("did not declare"));

        let mut out = Output::new();
        out.start(&Fake(&["lufs"]));
        out.set("lufs", -14.0);
        out.set("lufs", -15.0);
        assert!(out.into_fingerprint().unwrap_err().contains("already set"));

        let mut out = Output::new();
        out.start(&Fake(&["bogus"]));
        out.set("bogus", 1.0);
        assert!(out
            .into_fingerprint()
            .unwrap_err()
            .contains("not a dimension"));

        let mut out = Output::new();
        out.start(&Fake(&Fingerprint::NAMES));
        for (i, name) in Fingerprint::NAMES.iter().enumerate() {
            out.set(name, i as f64);
        }
        let fp = out.into_fingerprint().unwrap();
        assert_eq!(fp.to_array()[7], 7.0);
    }
}
