//! A library's rows, out of one database and into another (`sonoprint copy`): tracks with their
//! ids, fingerprints with how they were computed, failures, roots. The similarity graph goes
//! through [`crate::Library`]'s own graph methods.

use sonoprint_core::Fingerprint;

use crate::{Result, TrackId, TrackState};

/// A row of `tracks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRecord {
    pub id: TrackId,
    pub title: Option<String>,
    pub filepath: String,
    pub duration: Option<f64>,
    pub sample_rate: Option<i64>,
    pub channels: Option<i64>,
    pub format: Option<String>,
    pub filesize: Option<i64>,
    pub mtime_ns: Option<i64>,
    pub state: TrackState,
}

/// A row of `track_fingerprints` (the Auralis columns and sonoprint's own).
#[derive(Debug, Clone, PartialEq)]
pub struct FingerprintRecord {
    pub track_id: TrackId,
    pub fingerprint: Fingerprint,
    pub version: i64,
    pub filesize: Option<i64>,
    pub mtime_ns: Option<i64>,
    pub mode: Option<String>,
    pub decoder: Option<String>,
    pub analyzed_sec: Option<f64>,
    pub computed_ms: Option<i64>,
}

/// A row of `failures`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRecord {
    pub track_id: TrackId,
    pub class: String,
    pub message: String,
    pub decoders: String,
    pub attempts: i64,
    pub filesize: Option<i64>,
    pub mtime_ns: Option<i64>,
    pub first_at: i64,
    pub last_at: i64,
}

/// Everything `copy` carries but the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    pub roots: Vec<String>,
    pub tracks: Vec<TrackRecord>,
    pub fingerprints: Vec<FingerprintRecord>,
    pub failures: Vec<FailureRecord>,
}

/// Backends whose rows can be copied: sonoprint's own SQLite file and PostgreSQL.
pub trait Transfer: crate::Library {
    /// Every row, in id order.
    fn export(&self) -> Result<Export>;

    /// Writes `e` into this library, which must hold no tracks, in one transaction (nothing is
    /// written on any error), keeping the track ids.
    fn import(&mut self, e: &Export) -> Result<()>;
}
