//! sonoprint's engine: decodes audio files and computes the 25-dimension fingerprint of
//! `docs/fingerprint-v1.md`. No I/O policy and no CLI concerns live here.

pub mod dsp;
mod error;
pub mod features;
mod fingerprint;

pub use error::{AnalysisError, ErrorClass};
pub use fingerprint::{Analysis, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};
