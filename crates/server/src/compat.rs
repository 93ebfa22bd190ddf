//! The endpoints existing clients (Auralis's fingerprint extractor) use: their status codes,
//! field names and shapes are a contract; extra fields are allowed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sonoprint_core::Mode;

use crate::error::ApiError;
use crate::{fingerprint_of, read_body, AppState, VERSION};

/// `GET /health`.
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "version": VERSION,
        "uptime_sec": state.started.elapsed().as_secs(),
    }))
}

#[derive(Deserialize)]
struct FingerprintRequest {
    track_id: u32,
    filepath: String,
}

/// `POST /fingerprint` `{"track_id": u32, "filepath": "..."}`, whatever the Content-Type.
pub async fn fingerprint(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let bytes = read_body(body).await?;
    let req: FingerprintRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request: {e}")))?;
    let a = fingerprint_of(&state, &req.filepath, Mode::Excerpt).await?;
    Ok(Json(json!({
        "track_id": req.track_id,
        "fingerprint": a.fingerprint,
        "metadata": a.metadata,
        "processing_time_ms": started.elapsed().as_millis() as u64,
        "cached": a.cached,
        "library_track_id": a.library_id.map(|t| t.0),
    })))
}
