//! The 25 dimensions, grouped by the signal each one reads.

pub mod hpss;
pub mod pitch;
