//! Track similarity on sonoprint fingerprints: the computational core behind `sonoprint graph`,
//! `similar`, `path` and `playlist`.
//!
//! - [`Model`]: fitted on the library's current fingerprints: a per-dimension
//!   [`Normalisation`] (default: the value's quantile in the library), per-dimension
//!   [`Weights`] (defaults in [`DEFAULT_WEIGHTS`], overridable by name), a weighted Euclidean
//!   distance and a score in [0, 1]; it carries its `generation`, `fitted_on` count and an
//!   [`Model::id`], says when it [needs a refit](Model::needs_refit), and
//!   [explains](Model::explain) which dimensions made two tracks close.
//! - [`Index`]: the (id, fingerprint) pairs of the library, searched exactly by a brute-force
//!   scan up to [`APPROXIMATE_ABOVE`] tracks and through an HNSW graph above.
//! - [`Graph`]: every track's k nearest (the `similarity_graph` rows), built in parallel and
//!   [updated incrementally](Graph::update).
//! - [`similar()`] (duplicates shown once, flagged), [`path()`], [`playlist()`] and [`m3u()`].
//! - [`synthetic`]: generated, clustered fingerprints for tests and benchmarks.
//!
//! Everything is deterministic: ordered by distance, ties broken by the smaller track id.
//!
//! # Measurements
//!
//! (See `examples/quality.rs` and `examples/bench.rs`; figures in the crate README.)

// The numeric kernels walk several arrays by dimension index in step; an index reads better
// (and vectorises as well) there than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod graph;
mod index;
mod ivf;
mod model;
mod path;
mod playlist;
mod rng;
mod similar;
pub mod synthetic;
mod weights;

pub use graph::{Edge, Graph, UpdateReport};
pub use index::{Index, IndexOptions, Neighbour, SearchMode, APPROXIMATE_ABOVE, PROBES};
pub use model::{
    DimensionGap, Explanation, FitOptions, Model, Normalisation, MIN_FIT_ROWS, MODEL_FORMAT,
    REFIT_SHARE,
};
pub use path::{path, PathStep};
pub use playlist::{m3u, playlist, M3uEntry, PlaylistEntry, PlaylistOptions};
pub use similar::{
    duplicate_groups, duplicate_tolerance, similar, SimilarAnswer, SimilarOptions, SimilarTrack,
    DUPLICATE_SHARE,
};
pub use weights::{Weights, AURALIS_WEIGHTS, DEFAULT_WEIGHTS};

/// What can go wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("no dimension is called {0:?}")]
    UnknownDimension(String),
    #[error("weight of {name} must be finite and not negative, not {value}")]
    InvalidWeight { name: String, value: f64 },
    #[error("every weight is 0")]
    AllWeightsZero,
    #[error("a model needs at least {need} fingerprints, got {got}")]
    TooFewFingerprints { got: usize, need: usize },
    #[error("fingerprint{} has a non-finite {dimension}", .id.map(|i| format!(" of track {i}")).unwrap_or_default())]
    NonFinite {
        id: Option<i64>,
        dimension: &'static str,
    },
    #[error("track {0} appears twice")]
    DuplicateId(i64),
    #[error("{0} tracks: more than the index holds")]
    TooManyTracks(usize),
    #[error("track {0} is not in the index (no current fingerprint?)")]
    UnknownTrack(i64),
    #[error("no seed track")]
    NoSeed,
    #[error("the graph was built with model {graph}, the index has model {index}: rebuild it")]
    ModelChanged { graph: String, index: String },
}
