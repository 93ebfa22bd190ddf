//! Errors: every one names the operation and, where there is one, the track.

use std::fmt;
use std::path::PathBuf;

use crate::TrackId;

/// A failure of the library database. Never swallowed: every statement's result ends up here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A SQLite statement failed.
    #[error("cannot {op}{}: {source}", OnTrack(*.track))]
    Sqlite {
        op: &'static str,
        track: Option<TrackId>,
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL statement (or the connection to the server) failed. `tracks` names the
    /// tracks of the batch the statement was about, when it was about some.
    #[error("cannot {op}{tracks}: {}", pg_detail(.source))]
    Postgres {
        op: &'static str,
        tracks: Tracks,
        #[source]
        source: postgres::Error,
    },
    /// A PostgreSQL database whose schema is newer than this build knows.
    #[error(
        "the PostgreSQL database {db} was written by a newer sonoprint (schema version {found}, \
         this build knows up to {supported}): upgrade sonoprint on this machine, or use another \
         database"
    )]
    TooNewDatabase {
        db: String,
        found: i64,
        supported: i64,
    },
    /// A file-system operation around the database failed.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database's schema is newer than this build knows.
    #[error(
        "{} was written by a newer sonoprint (schema version {found}, this build knows up to \
         {supported}): upgrade sonoprint, or use another --data-dir",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A database given as the player's that is not one sonoprint can fill.
    #[error(
        "{} is not an Auralis library sonoprint can fill: it lacks {}. Check the path \
         (the player keeps it in ~/.auralis/library.db); nothing was written",
        .path.display(),
        .missing.join(", ")
    )]
    NotAuralis { path: PathBuf, missing: Vec<String> },
    /// A database file that should exist and does not.
    #[error("no database at {}: check the path", .0.display())]
    NoDatabase(PathBuf),
    /// Paths are stored as SQLite TEXT, which must be UTF-8.
    #[error("the path is not valid UTF-8, so it cannot be stored: {}", .0.display())]
    NonUtf8Path(PathBuf),
    /// A result with a NaN or infinite dimension: the engine must report it as a failure instead.
    #[error("track {track}: dimension {dimension} is not finite; refusing to store it")]
    NonFinite {
        track: TrackId,
        dimension: &'static str,
    },
    /// A statement did not change the row it had to (the database is not as it should be).
    #[error("cannot {op} for track {track}: no such row")]
    NoRow { op: &'static str, track: TrackId },
    /// A value in the database that this build cannot read.
    #[error("unexpected value in the database: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Another connection held the database's write lock for longer than the busy timeout:
    /// nothing was written, and the same call may succeed later.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// The server's message with its detail and hint, which `postgres::Error`'s own `Display`
/// leaves out (`db error: ERROR: ...` only).
fn pg_detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// The tracks a batch statement was about, for messages: ` (track 3)`, ` (tracks 1, 2, 3)`,
/// ` (tracks 1, 2, 3 ... 40 in all)`, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracks(pub Vec<TrackId>);

impl fmt::Display for Tracks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => Ok(()),
            [one] => write!(f, " (track {one})"),
            many => {
                let shown: Vec<String> = many.iter().take(8).map(|t| t.to_string()).collect();
                if many.len() > 8 {
                    write!(
                        f,
                        " (tracks {} ... {} in all)",
                        shown.join(", "),
                        many.len()
                    )
                } else {
                    write!(f, " (tracks {})", shown.join(", "))
                }
            }
        }
    }
}

struct OnTrack(Option<TrackId>);

impl fmt::Display for OnTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, " (track {t})"),
            None => Ok(()),
        }
    }
}

/// Attaches the operation (and the track) to a SQLite error.
pub(crate) trait Ctx<T> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError>;
    fn ctx_track(self, op: &'static str, track: TrackId) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            op,
            track: None,
            source,
        })
    }

    fn ctx_track(self, op: &'static str, track: TrackId) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            op,
            track: Some(track),
            source,
        })
    }
}

/// Attaches the operation (and the tracks) to a PostgreSQL error.
pub(crate) trait PgCtx<T> {
    fn pg(self, op: &'static str) -> Result<T, StoreError>;
    fn pg_tracks(self, op: &'static str, tracks: &[TrackId]) -> Result<T, StoreError>;
}

impl<T> PgCtx<T> for Result<T, postgres::Error> {
    fn pg(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Postgres {
            op,
            tracks: Tracks::default(),
            source,
        })
    }

    fn pg_tracks(self, op: &'static str, tracks: &[TrackId]) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Postgres {
            op,
            tracks: Tracks(tracks.to_vec()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_told_apart() {
        let busy = StoreError::Sqlite {
            op: "write results",
            track: None,
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ),
        };
        assert!(busy.is_busy());
        let full = StoreError::Sqlite {
            op: "write results",
            track: None,
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ),
        };
        assert!(!full.is_busy());
        assert!(!StoreError::Invalid("x".into()).is_busy());
    }
}
