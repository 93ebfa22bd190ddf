//! The fingerprint service behind the HTTP server: one library connection shared by the
//! requests, the "is this stored fingerprint current" rule, and the recording of a result or a
//! failure found outside a run. Its calls block: an async caller runs them on a blocking
//! thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sonoprint_core::{Analysis, ErrorClass, Mode};
use sonoprint_store::{Job, Library, Outcome, StoreError, StoredFingerprint, TrackId, TrackRow};

use crate::similarity::Similarity;
use crate::AppError;

/// How long the server answers similarity questions from the fingerprints it loaded before
/// it loads them again (a `run` in another process adds fingerprints meanwhile).
pub const SIMILARITY_REFRESH: Duration = Duration::from_secs(30);

/// What the library knows of a file.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The library's track for the file, if it has one.
    pub track: Option<TrackRow>,
    /// Its stored fingerprint, when it answers for the file as it is now in the mode asked.
    pub current: Option<StoredFingerprint>,
}

/// A failure to fingerprint a file, as the service records it.
#[derive(Debug, Clone)]
pub struct FailureInfo {
    pub class: ErrorClass,
    pub message: String,
    pub decoders: Vec<String>,
}

/// The library, shared by the server's requests.
pub struct FingerprintService {
    library: Mutex<Box<dyn Library>>,
    /// The loaded similarity index: when, after how many of this service's writes, and for
    /// which stored model.
    similarity: Mutex<Option<LoadedSimilarity>>,
    writes: AtomicU64,
}

struct LoadedSimilarity {
    sim: Similarity,
    at: Instant,
    writes: u64,
    model_built_ms: Option<i64>,
}

impl FingerprintService {
    pub fn new(library: Box<dyn Library>) -> FingerprintService {
        FingerprintService {
            library: Mutex::new(library),
            similarity: Mutex::new(None),
            writes: AtomicU64::new(0),
        }
    }

    /// Runs `f` with the library's similarity index, loaded once and reloaded when this
    /// service has written a fingerprint since, when `sonoprint graph` stored another model,
    /// or after [`SIMILARITY_REFRESH`].
    pub fn with_similarity<T>(
        &self,
        f: impl FnOnce(&Similarity, &dyn Library) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let lib = self.library.lock().map_err(|_| AppError::Poisoned)?;
        let mut cache = self.similarity.lock().map_err(|_| AppError::Poisoned)?;
        let writes = self.writes.load(Ordering::SeqCst);
        let built = lib.graph_state()?.map(|s| s.built_at_ms);
        let fresh = cache.as_ref().is_some_and(|c| {
            c.at.elapsed() < SIMILARITY_REFRESH && c.writes == writes && c.model_built_ms == built
        });
        if !fresh {
            *cache = Some(LoadedSimilarity {
                sim: Similarity::load(lib.as_ref())?,
                at: Instant::now(),
                writes,
                model_built_ms: built,
            });
        }
        match cache.as_ref() {
            Some(c) => f(&c.sim, lib.as_ref()),
            None => Err(AppError::Poisoned),
        }
    }

    /// Runs `f` on the library connection.
    pub fn with_library<T>(
        &self,
        f: impl FnOnce(&mut dyn Library) -> Result<T, StoreError>,
    ) -> Result<T, AppError> {
        let mut lib = self.library.lock().map_err(|_| AppError::Poisoned)?;
        Ok(f(lib.as_mut())?)
    }

    /// The track of the file at `canonical` (or, failing that, at the path as the client gave
    /// it) and its fingerprint if it is current for the file as it is now (`size`, `mtime_ns`)
    /// in `mode`.
    pub fn lookup(
        &self,
        canonical: &Path,
        given: &Path,
        size: u64,
        mtime_ns: i64,
        mode: Mode,
    ) -> Result<Lookup, AppError> {
        self.with_library(|lib| {
            let id = match lib.track_id_by_path(canonical)? {
                Some(id) => Some(id),
                None if given != canonical => lib.track_id_by_path(given)?,
                None => None,
            };
            let track = match id {
                Some(id) => lib.track(id)?,
                None => None,
            };
            let current = track
                .as_ref()
                .and_then(|t| t.fingerprint.as_ref())
                .filter(|f| f.is_current_for(size, mtime_ns, mode))
                .cloned();
            Ok(Lookup { track, current })
        })
    }

    /// Records the result of analysing the file of `track` (`size` and `mtime_ns` as they were
    /// when the analysis started): the fingerprint, or the failure, exactly as a run would.
    /// An error here is a lost result: the caller must report it, never answer success.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        track: TrackId,
        path: &Path,
        size: u64,
        mtime_ns: i64,
        result: Result<&Analysis, &FailureInfo>,
        computed_ms: u64,
    ) -> Result<(), AppError> {
        let job = Job {
            track_id: track,
            path: PathBuf::from(path),
            filesize: size,
            mtime_ns,
        };
        let outcome = match result {
            Ok(analysis) => Outcome::Done {
                job,
                analysis: analysis.clone(),
                computed_ms,
            },
            Err(f) => Outcome::Failed {
                job,
                class: f.class,
                message: f.message.clone(),
                decoders: f.decoders.clone(),
            },
        };
        let stored = self.with_library(|lib| lib.store_outcome(&outcome));
        self.writes.fetch_add(1, Ordering::SeqCst);
        stored
    }
}
