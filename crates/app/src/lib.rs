//! sonoprint's application layer: what the commands do, once, whatever the face (the CLI or the
//! HTTP server) and whatever the database (a [`sonoprint_store::Library`] backend).
//!
//! - [`open`]: which library a command works on ([`LibrarySpec`]): sonoprint's own file, the
//!   Auralis player's database filled in place, or a PostgreSQL database shared by several
//!   machines (with a [`PathMap`] from its canonical paths to this machine's);
//! - [`copy`]: a library copied from one database to another (SQLite <-> PostgreSQL);
//! - [`batch`]: the resumable batch run (claim, analyse in worker processes, record);
//! - [`service`]: the fingerprint service behind the server's endpoints (answer from a current
//!   row, else compute, record the result or the failure);
//! - [`similarity`]: the similarity graph and the answers built on it (similar tracks, paths,
//!   playlists).

pub mod batch;
pub mod copy;
mod error;
pub mod pathmap;
pub mod service;
pub mod similarity;

use std::path::{Path, PathBuf};

use sonoprint_store::{AuralisLibrary, Library, PostgresLibrary, SqliteLibrary};

pub use error::AppError;
pub use pathmap::{MappedLibrary, PathMap};

/// Which library a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySpec {
    /// sonoprint's own SQLite file (`~/.sonoprint/library.db`).
    Own { db: PathBuf },
    /// The Auralis player's database, filled in place with fingerprints of version `stamp`.
    Auralis { db: PathBuf, stamp: u32 },
    /// A PostgreSQL database shared by several machines (`postgres://user:pw@host/db`). The
    /// database keeps canonical paths; `path_map` turns them into this machine's.
    Postgres { url: String, path_map: PathMap },
}

impl LibrarySpec {
    /// The database file, for the SQLite libraries.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LibrarySpec::Own { db } | LibrarySpec::Auralis { db, .. } => Some(db),
            LibrarySpec::Postgres { .. } => None,
        }
    }

    /// The library for messages: the file, or the database URL without its password.
    pub fn describe(&self) -> String {
        match self {
            LibrarySpec::Own { db } | LibrarySpec::Auralis { db, .. } => db.display().to_string(),
            LibrarySpec::Postgres { url, .. } => sonoprint_store::describe_url(url),
        }
    }

    /// `--db VALUE`: a PostgreSQL URL, or else the path of a sonoprint SQLite file.
    pub fn from_db_arg(value: &str, path_map: PathMap) -> Result<LibrarySpec, AppError> {
        if sonoprint_store::is_postgres_url(value) {
            Ok(LibrarySpec::Postgres {
                url: value.to_string(),
                path_map,
            })
        } else if !path_map.is_empty() {
            Err(AppError::Usage(
                "--path-map is for a library shared by several machines: use it with \
                 --db postgres://..."
                    .into(),
            ))
        } else {
            let db = std::path::absolute(value)
                .map_err(|e| AppError::Usage(format!("bad --db {value}: {e}")))?;
            Ok(LibrarySpec::Own { db })
        }
    }
}

/// Whether opening may create sonoprint's own database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `scan`, `run`, `serve`: a new library starts here.
    IfMissing,
    /// `status`, `failures`: asking about a library that does not exist is a mistake (a wrong
    /// `--data-dir`) to point out, not an empty library to report.
    Never,
}

/// Opens the library of `spec`. The player's database is never created, and is refused with a
/// message naming what it lacks when it is not an Auralis library.
pub fn open(spec: &LibrarySpec, create: Create) -> Result<Box<dyn Library>, AppError> {
    match spec {
        LibrarySpec::Own { db } => {
            if create == Create::Never && !db.exists() {
                return Err(AppError::NoLibrary(db.clone()));
            }
            Ok(Box::new(SqliteLibrary::open(db)?))
        }
        LibrarySpec::Auralis { db, stamp } => Ok(Box::new(AuralisLibrary::open(db, *stamp)?)),
        LibrarySpec::Postgres { url, path_map } => {
            let lib = PostgresLibrary::open(url)?;
            if path_map.is_empty() {
                Ok(Box::new(lib))
            } else {
                Ok(Box::new(MappedLibrary::new(
                    Box::new(lib),
                    path_map.clone(),
                )))
            }
        }
    }
}

/// Opens a library that `scan` fills. The player's database is refused before it is opened
/// (the player scans it; opening it would add sonoprint's tables for nothing).
pub fn open_catalog(spec: &LibrarySpec) -> Result<Box<dyn Library>, AppError> {
    match spec {
        LibrarySpec::Own { .. } | LibrarySpec::Postgres { .. } => open(spec, Create::IfMissing),
        LibrarySpec::Auralis { .. } => Err(AppError::Usage(
            "`scan` is not used with --auralis: the Auralis player scans its own library; \
             `sonoprint --auralis DB run` fingerprints its tracks"
                .into(),
        )),
    }
}

/// Removes sonoprint's bookkeeping from the player's database; returns the tables dropped.
pub fn forget(spec: &LibrarySpec) -> Result<Vec<String>, AppError> {
    match spec {
        LibrarySpec::Auralis { db, .. } => Ok(AuralisLibrary::forget(db)?),
        LibrarySpec::Own { .. } | LibrarySpec::Postgres { .. } => Err(AppError::Usage(
            "`forget` removes sonoprint's tables from the player's database: use it with \
             --auralis DB (sonoprint's own library is one file you can delete)"
                .into(),
        )),
    }
}
