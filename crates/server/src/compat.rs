//! The endpoints existing clients (Auralis's fingerprint extractor) use: their status codes,
//! field names and shapes are a contract; extra fields are allowed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use sonoprint_core::Mode;
use utoipa::ToSchema;

use crate::api::{
    BAD_FILE_400, BUSY, FAILED_500, NOT_AUDIO_415, NO_FILE_404, OUTSIDE_403, TIMEOUT_504,
    TOO_BIG_413, UNAUTHORIZED,
};
use crate::doc::FingerprintValues;
use crate::error::{ApiError, ErrorBody};
use crate::{fingerprint_of, read_body, AppState, FileMetadata, VERSION};

/// Always `healthy`: the server answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Healthy {
    Healthy,
}

/// The answer of `GET /health`: exactly these three fields.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: Healthy,
    /// sonoprint's version.
    pub version: String,
    pub uptime_sec: u64,
}

/// `GET /health`.
#[utoipa::path(
    get,
    tag = "compatible",
    path = "/health",
    summary = "Liveness (never needs a token; answers while every worker is busy)",
    security(()),
    responses((status = 200, description = "Healthy", body = Health)),
)]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    Json(Health {
        status: Healthy::Healthy,
        version: VERSION.to_string(),
        uptime_sec: state.started.elapsed().as_secs(),
    })
}

/// The body of `POST /fingerprint`; unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct FingerprintRequest {
    /// The caller's id for the track, given back as is.
    #[schema(minimum = 0, maximum = 4294967295_u32)]
    #[serde(deserialize_with = "json_integer")]
    track_id: u32,
    /// Absolute path of the file on the server, under an allowed folder.
    #[schema(min_length = 1, max_length = 4096)]
    filepath: String,
}

/// A JSON Schema `integer`: `7` and `7.0` are the same number (JSON has one number type, and
/// clients written in JavaScript or Python send either), so both are accepted; `7.5`, negative
/// numbers and numbers past `u32::MAX` are refused with the JSON 400.
fn json_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let value = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => u32::try_from(u).ok(),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&f) => {
            Some(f as u32)
        }
        _ => None,
    };
    value.ok_or_else(|| {
        serde::de::Error::custom(format!(
            "track_id {n} is not an integer from 0 to {}",
            u32::MAX
        ))
    })
}

/// The answer of `POST /fingerprint`.
#[derive(Serialize, ToSchema)]
pub struct FingerprintResponse {
    /// The request's `track_id`.
    pub track_id: u32,
    pub fingerprint: FingerprintValues,
    pub metadata: FileMetadata,
    pub processing_time_ms: u64,
    /// Answered from the library without decoding.
    pub cached: bool,
    /// The library track of this file, if any.
    pub library_track_id: Option<i64>,
}

/// `POST /fingerprint` `{"track_id": u32, "filepath": "..."}`, whatever the Content-Type.
#[utoipa::path(
    post,
    tag = "compatible",
    path = "/fingerprint",
    summary = "Fingerprint one file (Auralis-compatible)",
    description = "Excerpt mode. Answered from the library when it holds a current fingerprint \
        of the unchanged file. Any Content-Type: the body is read as JSON; unknown fields are \
        ignored.",
    request_body = FingerprintRequest,
    responses(
        (status = 200, description = "The fingerprint", body = FingerprintResponse),
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
pub async fn fingerprint(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<FingerprintResponse>, ApiError> {
    let started = Instant::now();
    let bytes = read_body(body).await?;
    let req: FingerprintRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request: {e}")))?;
    let a = fingerprint_of(&state, &req.filepath, Mode::Excerpt).await?;
    Ok(Json(FingerprintResponse {
        track_id: req.track_id,
        fingerprint: a.fingerprint,
        metadata: a.metadata,
        processing_time_ms: started.elapsed().as_millis() as u64,
        cached: a.cached,
        library_track_id: a.library_id.map(|t| t.0),
    }))
}
