//! The vocabulary every part of sonoprint shares: the 25-dimension [`Fingerprint`] and the
//! definition of its dimensions ([`DIMENSIONS`]), the [`Metadata`] of an analysis, the analysis
//! [`Mode`], and the classified failure of one file ([`AnalysisError`], [`ErrorClass`]).
//!
//! It holds no algorithm and no I/O, so that storage and the servers depend on this small crate
//! rather than on the DSP engine. What each dimension means is in `docs/fingerprint.md`.

mod error;
mod fingerprint;

pub use error::{AnalysisError, ErrorClass};
pub use fingerprint::{
    Analysis, Dimension, Fingerprint, Metadata, Mode, DIMENSIONS, DIMENSION_COUNT,
    FINGERPRINT_VERSION,
};
