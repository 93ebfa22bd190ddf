//! The 25 dimensions, grouped by the signal each one reads.

pub mod hpss;
pub mod loudness;
pub mod native;
pub mod pitch;
pub mod rhythm;
pub mod spectral;
