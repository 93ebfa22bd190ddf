//! sonoprint's engine: decodes audio files and computes the 25-dimension fingerprint defined in
//! `docs/fingerprint.md` (in the repository). No I/O policy and no CLI concerns live here.
//!
//! - [`decode`]: files to `f32` samples, and the choice of decoder (symphonia, then ffmpeg);
//! - [`features`]: one [`Extractor`](features::Extractor) per family of dimensions, and the list;
//! - [`dsp`]: the shared building blocks (resampler, STFT, mel and chroma filterbanks);
//! - `analyze`: the excerpt plan and the pipeline that drives the extractors.
//!
//! ```no_run
//! let opts = sonoprint_engine::Options::default();
//! let a = sonoprint_engine::analyze_file("song.flac".as_ref(), &opts)?;
//! println!("{} LUFS, {} BPM", a.fingerprint.lufs, a.fingerprint.tempo_bpm);
//! # Ok::<(), sonoprint_engine::AnalysisError>(())
//! ```

mod analyze;
pub mod decode;
pub mod dsp;
pub mod features;
#[cfg(test)]
mod test_rng;

pub use analyze::{
    analyze_file, analyze_file_guarded, analyze_pcm, analyze_source, decode_file, DecodeStats,
    Options, DEFAULT_MIN_COVERAGE,
};
pub use decode::OpenOptions;
// The shared vocabulary, re-exported so that users of the engine need one import.
pub use sonoprint_core::{
    Analysis, AnalysisError, Dimension, ErrorClass, Fingerprint, Metadata, Mode, DIMENSIONS,
    FINGERPRINT_VERSION,
};
