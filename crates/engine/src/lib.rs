//! sonoprint's engine: decodes audio files and computes the 25-dimension fingerprint of
//! `docs/fingerprint-v1.md`. No I/O policy and no CLI concerns live here.
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

pub use analyze::{
    analyze_file, analyze_file_guarded, analyze_pcm, analyze_source, decode_file, DecodeStats,
    Options,
};
pub use decode::OpenOptions;
// The shared vocabulary, re-exported so that users of the engine need one import.
pub use sonoprint_core::{
    Analysis, AnalysisError, Dimension, ErrorClass, Fingerprint, Metadata, Mode, DIMENSIONS,
    FINGERPRINT_VERSION,
};
