//! sonoprint's own API under `/api/v1`, described by the generated OpenAPI document
//! ([`crate::doc`]), plus `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use sonoprint_core::{ErrorClass, Mode};
use sonoprint_store::{Page, TrackFilter, TrackId, TrackRow, TrackState};
use utoipa::{IntoParams, ToSchema};

use crate::doc::FingerprintValues;
use crate::error::{ApiError, ErrorBody};
use crate::report::{FailureReport, StatusReport};
use crate::{fingerprint_of, read_body, with_store, AppState, FileMetadata};

pub(crate) const UNAUTHORIZED: &str =
    "The server has a token and the request has no valid `Authorization: Bearer`";
pub(crate) const LIBRARY_ERROR: &str = "The library database could not be read";
pub(crate) const BUSY: &str =
    "Every worker is busy and the queue is full; retry after `Retry-After` seconds";
pub(crate) const OUTSIDE_403: &str = "The path is relative or resolves outside the allowed folders";
pub(crate) const NO_FILE_404: &str = "No file at that path";
pub(crate) const TOO_BIG_413: &str = "Request body over 64 KiB";
pub(crate) const NOT_AUDIO_415: &str = "Not audio, or a codec no decoder reads";
pub(crate) const FAILED_500: &str = "The analysis failed (the decoder crashed, an I/O error), or \
     the result could not be stored";
pub(crate) const TIMEOUT_504: &str = "The analysis exceeded the server's --timeout and was stopped";
pub(crate) const BAD_FILE_400: &str = "Malformed JSON, a missing or empty path, or a corrupt, \
     truncated, too short or empty file (the message then says \"appears corrupted\")";

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// How a fingerprint was computed.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Three 30 s excerpts (tracks over 120 s).
    Excerpt,
    /// Every sample.
    Full,
}

impl From<Mode> for ModeName {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Excerpt => ModeName::Excerpt,
            Mode::Full => ModeName::Full,
        }
    }
}

/// Whether the file of a track was there at the last scan.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    Present,
    Missing,
}

/// The fingerprint the library holds for a track.
#[derive(Serialize, ToSchema)]
pub struct StoredFingerprint {
    /// The fingerprint definition's version it was computed with.
    pub version: u32,
    /// Null for a row sonoprint did not write (the player's own).
    pub mode: Option<ModeName>,
    /// This version, of the file as it is now.
    pub current: bool,
    /// The values (only in `/api/v1/tracks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<FingerprintValues>,
}

/// A library track.
#[derive(Serialize, ToSchema)]
pub struct Track {
    pub id: i64,
    pub title: Option<String>,
    pub path: String,
    pub state: StateName,
    pub duration_sec: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub format: Option<String>,
    pub filesize: Option<u64>,
    pub mtime_ns: Option<i64>,
    /// It has a current fingerprint.
    pub fingerprinted: bool,
    pub fingerprint: Option<StoredFingerprint>,
}

impl Track {
    fn new(t: &TrackRow, with_values: bool) -> Self {
        Track {
            id: t.id.0,
            title: t.title.clone(),
            path: t.path.to_string_lossy().into_owned(),
            state: match t.state {
                TrackState::Present => StateName::Present,
                TrackState::Missing => StateName::Missing,
            },
            duration_sec: t.duration,
            sample_rate: t.sample_rate,
            channels: t.channels,
            format: t.format.clone(),
            filesize: t.filesize,
            mtime_ns: t.mtime_ns,
            fingerprinted: t.fingerprint.as_ref().is_some_and(|f| f.current),
            fingerprint: t.fingerprint.as_ref().map(|f| StoredFingerprint {
                version: f.version,
                mode: f.mode.map(ModeName::from),
                current: f.current,
                values: with_values.then_some(FingerprintValues(f.fingerprint)),
            }),
        }
    }
}

/// A page of tracks.
#[derive(Serialize, ToSchema)]
pub struct TrackPage {
    pub tracks: Vec<Track>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

/// A query string of type `T`; a malformed one, or one with a bad value, gets the JSON error
/// like every other bad request, instead of axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for ApiQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(ApiError::bad_request(format!(
                "bad query string: {}",
                e.body_text()
            ))),
        }
    }
}

/// The filters and the page of `GET /api/v1/tracks`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TracksQuery {
    /// Only tracks in this state.
    state: Option<StateName>,
    /// true: only tracks with a current fingerprint; false: only those without.
    fingerprinted: Option<bool>,
    /// Tracks with a larger id (keyset paging: the `next_after` of the previous page).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    after: Option<i64>,
    /// Tracks per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// `GET /api/v1/tracks?state=&fingerprinted=&after=&limit=`: a page in id order;
/// `next_after` is the `after` of the next page, null on the last one.
#[utoipa::path(
    get,
    tag = "api",
    path = "/api/v1/tracks",
    summary = "A page of library tracks in id order",
    params(TracksQuery),
    responses(
        (status = 200, description = "A page", body = TrackPage),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn tracks(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<TracksQuery>,
) -> Result<Json<TrackPage>, ApiError> {
    let filter = TrackFilter {
        state: q.state.map(|s| match s {
            StateName::Present => TrackState::Present,
            StateName::Missing => TrackState::Missing,
        }),
        fingerprinted: q.fingerprinted,
    };
    let after = match q.after {
        Some(a) if a < 0 => {
            return Err(ApiError::bad_request(format!(
                "bad after: {a} (a track id, 0 or more)"
            )))
        }
        a => a.map(TrackId),
    };
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "bad limit: {n} (1 to {MAX_LIMIT})"
            )))
        }
    };
    let rows = with_store(&state, move |s| s.tracks(Page { after, limit }, filter)).await?;
    let next = if rows.len() as u32 == limit {
        rows.last().map(|t| t.id.0)
    } else {
        None
    };
    Ok(Json(TrackPage {
        tracks: rows.iter().map(|t| Track::new(t, false)).collect(),
        next_after: next,
    }))
}

/// `GET /api/v1/tracks/{id}`: one track with its fingerprint.
#[utoipa::path(
    get,
    tag = "api",
    path = "/api/v1/tracks/{id}",
    summary = "One track with its fingerprint's values",
    params(
        ("id" = i64, Path, minimum = 1, maximum = 9223372036854775807_i64,
            description = "The track's id"),
    ),
    responses(
        (status = 200, description = "The track", body = Track),
        (status = 400, description = "Not a track id", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such track", body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn track(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Track>, ApiError> {
    let Path(raw) =
        path.map_err(|e| ApiError::bad_request(format!("bad track id: {}", e.body_text())))?;
    let id = raw
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .map(TrackId)
        .ok_or_else(|| ApiError::bad_request(format!("bad track id {raw:?} (1 or more)")))?;
    match with_store(&state, move |s| s.track(id)).await? {
        Some(t) => Ok(Json(Track::new(&t, true))),
        None => Err(ApiError::not_found(format!("no track {id}"))),
    }
}

/// The body of `POST /api/v1/analyze`.
#[derive(Deserialize, ToSchema)]
pub struct AnalyzeRequest {
    /// Absolute path of the file on the server, under an allowed folder.
    #[schema(min_length = 1, max_length = 4096)]
    path: String,
    /// Analyse every sample instead of the excerpts.
    #[serde(default)]
    #[schema(default = false)]
    full: bool,
}

/// The answer of `POST /api/v1/analyze`.
#[derive(Serialize, ToSchema)]
pub struct AnalyzeResponse {
    pub path: String,
    /// The library track of this file, if any (the result is stored there).
    pub track_id: Option<i64>,
    /// Answered from the library without decoding.
    pub cached: bool,
    pub fingerprint: FingerprintValues,
    pub metadata: FileMetadata,
    pub processing_time_ms: u64,
}

/// `POST /api/v1/analyze {"path": "...", "full": false}`.
#[utoipa::path(
    post,
    tag = "api",
    path = "/api/v1/analyze",
    summary = "Fingerprint one file",
    description = "Answered from the library when it holds a current fingerprint of the \
        unchanged file, else computed by a worker (and stored when the file is a library track). \
        Any Content-Type: the body is read as JSON.",
    request_body = AnalyzeRequest,
    responses(
        (status = 200, description = "The fingerprint", body = AnalyzeResponse),
        (status = 400, description = BAD_FILE_400, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = OUTSIDE_403, body = ErrorBody),
        (status = 404, description = NO_FILE_404, body = ErrorBody),
        (status = 413, description = TOO_BIG_413, body = ErrorBody),
        (status = 415, description = NOT_AUDIO_415, body = ErrorBody),
        (status = 500, description = FAILED_500, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 504, description = TIMEOUT_504, body = ErrorBody),
    ),
)]
pub async fn analyze(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<AnalyzeResponse>, ApiError> {
    let started = Instant::now();
    let bytes = read_body(body).await?;
    let req: AnalyzeRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request: {e}")))?;
    let mode = if req.full { Mode::Full } else { Mode::Excerpt };
    let a = fingerprint_of(&state, &req.path, mode).await?;
    Ok(Json(AnalyzeResponse {
        path: req.path,
        track_id: a.library_id.map(|t| t.0),
        cached: a.cached,
        fingerprint: a.fingerprint,
        metadata: a.metadata,
        processing_time_ms: started.elapsed().as_millis() as u64,
    }))
}

/// `GET /api/v1/status`: the figures of `sonoprint status --json`.
#[utoipa::path(
    get,
    tag = "api",
    path = "/api/v1/status",
    summary = "The library's figures (those of `sonoprint status --json`)",
    responses(
        (status = 200, description = "Status", body = StatusReport),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Json<StatusReport>, ApiError> {
    let st = with_store(&state, |s| s.status()).await?;
    Ok(Json(StatusReport::new(&st)))
}

/// The filter of `GET /api/v1/failures`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailuresQuery {
    /// Only failures of this class.
    #[param(schema_with = analysis_class_param)]
    class: Option<String>,
}

fn analysis_class_param() -> utoipa::openapi::schema::Schema {
    crate::doc::analysis_class_schema()
}

/// The answer of `GET /api/v1/failures`.
#[derive(Serialize, ToSchema)]
pub struct FailureList {
    pub count: u64,
    pub failures: Vec<FailureReport>,
}

/// `GET /api/v1/failures?class=`.
#[utoipa::path(
    get,
    tag = "api",
    path = "/api/v1/failures",
    summary = "Library files that could not be fingerprinted",
    params(FailuresQuery),
    responses(
        (status = 200, description = "Failures", body = FailureList),
        (status = 400, description = "An unknown class", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn failures(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<FailuresQuery>,
) -> Result<Json<FailureList>, ApiError> {
    if let Some(c) = &q.class {
        if ErrorClass::parse(c).is_none() {
            let all: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "unknown class {c:?}; the classes are: {}",
                all.join(", ")
            )));
        }
    }
    let class = q.class;
    let rows = with_store(&state, move |s| s.failures(class.as_deref())).await?;
    Ok(Json(FailureList {
        count: rows.len() as u64,
        failures: rows.iter().map(FailureReport::new).collect(),
    }))
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    tag = "api",
    path = "/api/v1/openapi.json",
    summary = "This document (OpenAPI 3.1), generated from the server's code",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json",
            body = Object),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
    ),
)]
pub async fn openapi() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        // The document's own types always serialize; if that ever failed, the answer says so.
        crate::doc::document().to_json().unwrap_or_else(|e| {
            serde_json::json!({"error": format!("cannot write the OpenAPI document: {e}")})
                .to_string()
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    tag = "operations",
    path = "/metrics",
    summary = "Prometheus metrics",
    description = "Text format 0.0.4: requests by route and status, analysis latency \
        histogram, queue depth, busy workers, fingerprints computed and cached, failures by class, \
        and the runners holding claims (`sonoprint_runner_claimed`, `sonoprint_runner_done`, \
        `sonoprint_runner_heartbeat_age_seconds`, by host and pid).",
    responses(
        (status = 200, description = "The metrics",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
    ),
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let free = state.slots.available_permits();
    let mut text = state.metrics.render(
        state.waiting.load(Ordering::SeqCst),
        state.jobs.saturating_sub(free),
        state.jobs,
        state.started.elapsed(),
    );
    match with_store(&state, |s| s.runners()).await {
        Ok(runners) => text.push_str(&crate::metrics::runners(&runners)),
        Err(e) => {
            state.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("/metrics: cannot list the runners: {}", e.message);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
