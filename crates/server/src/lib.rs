//! sonoprint's fingerprint server: the Auralis-compatible `GET /health` and `POST /fingerprint`,
//! the library API under `/api/v1` (its OpenAPI document generated from the handlers, see
//! [`doc`]), `/metrics`, and the OpenSubsonic endpoints under `/rest/`.
//!
//! Analyses run in worker processes ([`sonoprint_worker::Pool`]): at most `jobs` at once, at
//! most `max_queue` more waiting (the rest get 503 at once), each stopped after `timeout`. The
//! async side never decodes, so `/health` answers while every worker is busy. Library reads and
//! writes go through the application layer's [`FingerprintService`] (one library connection,
//! sonoprint's own or the player's), on blocking threads.

mod access;
mod api;
mod compat;
pub mod doc;
mod error;
mod metrics;
pub mod report;
mod similar;
pub mod subsonic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use sonoprint_app::service::{FailureInfo, FingerprintService};
use sonoprint_app::{Create, LibrarySpec};
use sonoprint_core::{Analysis, Mode};
use sonoprint_store::{Library, TrackId, TrackRow};
use sonoprint_worker::{Pool, PoolConfig};
use tokio::sync::Semaphore;

use crate::doc::FingerprintValues;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// How long in-flight requests get to finish after SIGTERM/Ctrl-C.
const GRACE: Duration = Duration::from_secs(5);

/// Everything `sonoprint serve` decides.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The library answered from and written to.
    pub library: LibrarySpec,
    /// Allowed roots; empty means the library's folders (the scanned roots, or the folders of
    /// the player's tracks).
    pub roots: Vec<PathBuf>,
    pub jobs: usize,
    pub max_queue: usize,
    pub timeout: Duration,
    pub token: Option<String>,
    /// The executable run as `EXE worker` (the `sonoprint` binary).
    pub worker_exe: PathBuf,
    /// Share of its declared duration a file must decode to be fingerprinted.
    pub min_coverage: f64,
}

/// The state every handler shares.
pub struct AppState {
    service: FingerprintService,
    roots: Vec<PathBuf>,
    pool: Pool,
    /// One permit per worker: held while a request's file is being analysed.
    slots: Arc<Semaphore>,
    jobs: usize,
    max_queue: usize,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    token: Option<String>,
    started: Instant,
    metrics: Metrics,
}

/// Runs the server until SIGTERM or Ctrl-C. Errors (a port in use, a bad configuration) are one
/// line for the user.
pub fn run(cfg: Config) -> Result<(), String> {
    if !cfg.addr.ip().is_loopback() && cfg.token.is_none() {
        return Err(format!(
            "binding to {} (not a loopback address) needs --token or SONOPRINT_TOKEN",
            cfg.addr.ip()
        ));
    }
    let store = sonoprint_app::open(&cfg.library, Create::IfMissing).map_err(|e| e.to_string())?;
    let wanted = if cfg.roots.is_empty() {
        store.roots().map_err(|e| e.to_string())?
    } else {
        cfg.roots.clone()
    };
    let roots = access::canonical_roots(&wanted);
    if roots.is_empty() {
        return Err(
            "no allowed folders: scan a folder into the library first (with --auralis: the \
             player's tracks are in no folder that exists), or pass --root DIR"
                .into(),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let jobs = cfg.jobs.max(1);
    let state = Arc::new(AppState {
        service: FingerprintService::new(store),
        roots,
        pool: Pool::new(PoolConfig {
            jobs,
            mode: Mode::Excerpt,
            timeout: cfg.timeout,
            exe: cfg.worker_exe.clone(),
            min_coverage: cfg.min_coverage,
        }),
        slots: Arc::new(Semaphore::new(jobs)),
        jobs,
        max_queue: cfg.max_queue,
        waiting: AtomicUsize::new(0),
        token: cfg.token.clone(),
        started: Instant::now(),
        metrics: Metrics::default(),
    });
    let result = runtime.block_on(serve(cfg, Arc::clone(&state)));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Ok(state) = Arc::try_unwrap(state) {
        state.pool.join();
    }
    result
}

async fn serve(cfg: Config, state: Arc<AppState>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let roots: Vec<String> = state
        .roots
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    tracing::info!(
        "sonoprint {VERSION} listening on http://{addr} (workers {}, queue {}, timeout {} s, auth {}, roots: {})",
        state.jobs,
        state.max_queue,
        cfg.timeout.as_secs_f64(),
        if state.token.is_some() { "token" } else { "none" },
        roots.join(", ")
    );
    let app = router(Arc::clone(&state));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.changed().await;
    });
    let mut task = tokio::spawn(async move { server.await });
    tokio::select! {
        r = &mut task => return finished(r),
        _ = shutdown_signal() => {}
    }
    tracing::info!(
        "shutting down: no new connections; in-flight requests get {} s",
        GRACE.as_secs()
    );
    let _ = stop_tx.send(true);
    match tokio::time::timeout(GRACE, &mut task).await {
        Ok(r) => finished(r),
        Err(_) => {
            task.abort();
            tracing::warn!(
                "requests still running after {} s were abandoned",
                GRACE.as_secs()
            );
            Ok(())
        }
    }
}

fn finished(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), String> {
    match r {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(format!("the server stopped: {e}")),
        Err(e) => Err(format!("the server stopped: {e}")),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The routes, with authentication, panic catching and request metrics around them.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(compat::health))
        .route("/fingerprint", post(compat::fingerprint))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/tracks", get(api::tracks))
        .route("/api/v1/tracks/{id}", get(api::track))
        .route("/api/v1/analyze", post(api::analyze))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/failures", get(api::failures))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/tracks/{id}/similar", get(similar::similar))
        .route("/api/v1/path", get(similar::path))
        .route("/api/v1/playlist", get(similar::playlist))
        .merge(subsonic::routes(Arc::clone(&state)))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            access::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track,
        ))
        .with_state(state)
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "panic",
        "the server hit a bug while answering this request; please report it",
    )
    .into_response()
}

// ---- the analysis pipeline shared by /fingerprint and /api/v1/analyze ----------------------

/// A fingerprint answer, computed or from the library.
pub(crate) struct Answer {
    pub fingerprint: FingerprintValues,
    pub metadata: FileMetadata,
    pub cached: bool,
    pub library_id: Option<TrackId>,
}

/// What is known about an analysed file. A fingerprint from the library carries the first
/// seven fields only (the library keeps no more); a computed one all that apply.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Metadata)]
pub struct FileMetadata {
    pub duration_sec: f64,
    pub sample_rate: u32,
    pub channels: u32,
    /// The file's extension, lower case (else the container).
    pub format: Option<String>,
    /// Container, e.g. `flac`, `mp3`, `mp4`, `ogg`, `wav`, `aiff`.
    pub container: Option<String>,
    /// Null for a fingerprint the player wrote.
    pub mode: Option<api::ModeName>,
    pub fingerprint_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u32>,
    /// Codec, e.g. `flac`, `mp3`, `aac`, `alac`, `vorbis`, `pcm_s16le`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Seconds of audio analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyzed_sec: Option<f64>,
    /// Which decoding path produced the audio: `symphonia` or `ffmpeg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder: Option<String>,
    /// How excerpts were reached: `seek`, `sequential` or `whole`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// False when the container did not state the duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_known: Option<bool>,
    /// The file ended before the duration its header stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Packets that failed to decode and were skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_packets: Option<u32>,
}

/// Runs `f` on the library connection on a blocking thread.
pub(crate) async fn with_store<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Library) -> Result<T, sonoprint_store::StoreError> + Send + 'static,
{
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        st.service
            .with_library(f)
            .map_err(|e| ApiError::internal(format!("library error: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("library task failed: {e}")))?
}

/// The fingerprint of the file at `requested`: checked against the allowed roots, answered from
/// the library when it holds a current fingerprint of the unchanged file, else computed by a
/// worker. When the file is a library track the result, or the failure, is recorded as a run
/// records it; a result that cannot be recorded is a 500, never a 200.
pub(crate) async fn fingerprint_of(
    state: &Arc<AppState>,
    requested: &str,
    mode: Mode,
) -> Result<Answer, ApiError> {
    let path = access::resolve(&state.roots, requested)?;
    let meta = std::fs::metadata(&path)
        .map_err(|e| ApiError::not_found(format!("cannot read {requested}: {e}")))?;
    let (size, mtime) = (meta.len(), sonoprint_store::mtime_ns(&meta));
    let lookup = {
        let st = Arc::clone(state);
        let (canonical, given) = (path.clone(), PathBuf::from(requested));
        tokio::task::spawn_blocking(move || {
            st.service.lookup(&canonical, &given, size, mtime, mode)
        })
        .await
        .map_err(|e| ApiError::internal(format!("library task failed: {e}")))?
    };
    let (row, current) = match lookup {
        Ok(l) => (l.track, l.current),
        Err(e) => {
            // The library is a cache here: without it the file can still be analysed. Counted
            // with the store errors, so that /metrics shows a library that fails.
            state.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("cannot look {} up in the library: {e}", path.display());
            (None, None)
        }
    };
    if let (Some(row), Some(sf)) = (&row, current) {
        state.metrics.cached.fetch_add(1, Ordering::Relaxed);
        return Ok(Answer {
            fingerprint: FingerprintValues(sf.fingerprint),
            metadata: cached_metadata(row, &path),
            cached: true,
            library_id: Some(row.id),
        });
    }
    let library_id = row.as_ref().map(|r| r.id);
    let (result, took) = analyse(state, &path, mode).await?;
    if let Some(id) = library_id {
        let st = Arc::clone(state);
        let (file, res) = (path.clone(), result.clone());
        let ms = took.as_millis() as u64;
        let stored = tokio::task::spawn_blocking(move || {
            st.service.record(id, &file, size, mtime, res.as_ref(), ms)
        })
        .await
        .map_err(|e| ApiError::internal(format!("library task failed: {e}")))?;
        if let Err(e) = stored {
            state.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!("cannot store the result for track {id}: {e}");
            return Err(ApiError::internal(format!(
                "the result for {requested} could not be written to the library ({e}); \
                 nothing was stored, try again"
            )));
        }
    }
    match result {
        Ok(analysis) => Ok(Answer {
            fingerprint: FingerprintValues(analysis.fingerprint),
            metadata: computed_metadata(&analysis, &path),
            cached: false,
            library_id,
        }),
        Err(f) => Err(ApiError::from_failure(
            requested,
            &sonoprint_worker::Failure {
                class: f.class,
                message: f.message,
                decoders: f.decoders,
            },
        )),
    }
}

/// Waits for a worker (or refuses at once when the queue is full), then analyses on it.
async fn analyse(
    state: &Arc<AppState>,
    path: &Path,
    mode: Mode,
) -> Result<(Result<Analysis, FailureInfo>, Duration), ApiError> {
    let permit = match Arc::clone(&state.slots).try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            if state.waiting.fetch_add(1, Ordering::SeqCst) >= state.max_queue {
                state.waiting.fetch_sub(1, Ordering::SeqCst);
                state.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::busy(
                    format!(
                        "all {} workers are busy and {} requests are waiting; try again shortly",
                        state.jobs, state.max_queue
                    ),
                    1,
                ));
            }
            let _waiting = Waiting(state);
            Arc::clone(&state.slots)
                .acquire_owned()
                .await
                .map_err(|_| ApiError::busy("the server is shutting down", 5))?
        }
    };
    let st = Arc::clone(state);
    let file = path.to_path_buf();
    // The permit moves into the blocking task: a client that hangs up does not free the
    // worker before its file is done.
    let done = tokio::task::spawn_blocking(move || {
        let done = st.pool.analyze(&file, mode);
        drop(permit);
        done
    })
    .await
    .map_err(|e| ApiError::internal(format!("analysis task failed: {e}")))?;
    state.metrics.observe_analysis(done.elapsed);
    match done.result {
        Ok(a) => {
            state.metrics.computed.fetch_add(1, Ordering::Relaxed);
            Ok((Ok(a), done.elapsed))
        }
        Err(f) => {
            state.metrics.failure(f.class.as_str());
            Ok((
                Err(FailureInfo {
                    class: f.class,
                    message: f.message,
                    decoders: f.decoders,
                }),
                done.elapsed,
            ))
        }
    }
}

/// Counts a request as waiting while it lives.
struct Waiting<'a>(&'a AppState);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The file's extension, lower case: the `format` of the compatible API.
fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn computed_metadata(a: &Analysis, path: &Path) -> FileMetadata {
    let m = &a.metadata;
    FileMetadata {
        duration_sec: m.duration_sec,
        sample_rate: m.sample_rate,
        channels: m.channels,
        format: extension(path).or_else(|| Some(m.format.clone())),
        container: Some(m.format.clone()),
        mode: Some(m.mode.into()),
        fingerprint_version: Some(m.fingerprint_version),
        bits_per_sample: m.bits_per_sample,
        codec: Some(m.codec.clone()),
        analyzed_sec: Some(m.analyzed_sec),
        decoder: Some(m.decoder.clone()),
        access: Some(m.access.clone()),
        duration_known: Some(m.duration_known),
        truncated: Some(m.truncated),
        skipped_packets: Some(m.skipped_packets),
    }
}

fn cached_metadata(row: &TrackRow, path: &Path) -> FileMetadata {
    let container = row.format.clone();
    FileMetadata {
        duration_sec: row.duration.unwrap_or(0.0),
        sample_rate: row.sample_rate.unwrap_or(0),
        channels: row.channels.unwrap_or(0),
        format: extension(path).or(container.clone()),
        container,
        mode: row
            .fingerprint
            .as_ref()
            .and_then(|f| f.mode)
            .map(api::ModeName::from),
        fingerprint_version: row.fingerprint.as_ref().map(|f| f.version),
        bits_per_sample: None,
        codec: None,
        analyzed_sec: None,
        decoder: None,
        access: None,
        duration_known: None,
        truncated: None,
        skipped_packets: None,
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub(crate) async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over {} KiB", MAX_BODY / 1024),
        )
    })
}
