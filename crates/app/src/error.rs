//! The application layer's errors: each says what failed and what to do.

use std::path::PathBuf;

use sonoprint_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The library database failed (every write is checked: this is never swallowed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// There is no library where one was expected.
    #[error(
        "no library at {}: start with `sonoprint scan DIR` (or check --data-dir / \
         SONOPRINT_HOME)",
        .0.display()
    )]
    NoLibrary(PathBuf),
    /// A request that does not make sense for this library or these options.
    #[error("{0}")]
    Usage(String),
    /// The library connection was poisoned by a panic in another request.
    #[error("the library connection is unusable after an earlier failure; restart sonoprint")]
    Poisoned,
    /// The track asked about is not in the library, or has no current fingerprint.
    #[error("{0}")]
    NotFound(String),
    /// Something around the run failed (the worker pool, the executable).
    #[error("{0}")]
    Run(String),
}
