//! sonoprint's own API under `/api/v1`, described by `openapi.json`, plus `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sonoprint_core::{ErrorClass, Mode};
use sonoprint_store::{Page, TrackFilter, TrackId, TrackRow, TrackState};

use crate::error::ApiError;
use crate::report::{failure_json, status_json};
use crate::{fingerprint_of, read_body, with_store, AppState};

const OPENAPI: &str = include_str!("openapi.json");
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

fn track_json(t: &TrackRow, with_values: bool) -> Value {
    let fp = t.fingerprint.as_ref().map(|f| {
        let mut v = json!({
            "version": f.version,
            "mode": f.mode.map(Mode::as_str),
            "current": f.current,
        });
        if with_values {
            v["values"] = serde_json::to_value(f.fingerprint).unwrap_or(Value::Null);
        }
        v
    });
    json!({
        "id": t.id.0,
        "title": t.title,
        "path": t.path.to_string_lossy(),
        "state": t.state.as_str(),
        "duration_sec": t.duration,
        "sample_rate": t.sample_rate,
        "channels": t.channels,
        "format": t.format,
        "filesize": t.filesize,
        "mtime_ns": t.mtime_ns,
        "fingerprinted": t.fingerprint.as_ref().is_some_and(|f| f.current),
        "fingerprint": fp,
    })
}

/// The query string as name/value pairs; a malformed one gets the JSON error, like every
/// other bad request, instead of axum's plain-text rejection.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Params(q)),
            Err(e) => Err(ApiError::bad_request(format!(
                "malformed query string: {}",
                e.body_text()
            ))),
        }
    }
}

/// `GET /api/v1/tracks?state=&fingerprinted=&after=&limit=`: a page in id order;
/// `next_after` is the `after` of the next page, null on the last one.
pub async fn tracks(
    State(state): State<Arc<AppState>>,
    Params(q): Params,
) -> Result<Json<Value>, ApiError> {
    let bad = |name: &str, v: &str| ApiError::bad_request(format!("bad {name}: {v:?}"));
    let filter = TrackFilter {
        state: match q.get("state").map(String::as_str) {
            None | Some("") => None,
            Some("present") => Some(TrackState::Present),
            Some("missing") => Some(TrackState::Missing),
            Some(v) => return Err(bad("state (present or missing)", v)),
        },
        fingerprinted: match q.get("fingerprinted").map(String::as_str) {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => return Err(bad("fingerprinted (true or false)", v)),
        },
    };
    let after = match q.get("after").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(TrackId(v.parse().map_err(|_| bad("after", v))?)),
    };
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad("limit (1 to 1000)", v))?,
    };
    let rows = with_store(&state, move |s| s.tracks(Page { after, limit }, filter)).await?;
    let next = if rows.len() as u32 == limit {
        rows.last().map(|t| t.id.0)
    } else {
        None
    };
    Ok(Json(json!({
        "tracks": rows.iter().map(|t| track_json(t, false)).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// `GET /api/v1/tracks/{id}`: one track with its fingerprint.
pub async fn track(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TrackId(
        id.parse()
            .map_err(|_| ApiError::bad_request(format!("bad track id {id:?}")))?,
    );
    match with_store(&state, move |s| s.track(id)).await? {
        Some(t) => Ok(Json(track_json(&t, true))),
        None => Err(ApiError::not_found(format!("no track {id}"))),
    }
}

#[derive(Deserialize)]
struct AnalyzeRequest {
    path: String,
    #[serde(default)]
    full: bool,
}

/// `POST /api/v1/analyze {"path": "...", "full": false}`.
pub async fn analyze(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let bytes = read_body(body).await?;
    let req: AnalyzeRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request: {e}")))?;
    let mode = if req.full { Mode::Full } else { Mode::Excerpt };
    let a = fingerprint_of(&state, &req.path, mode).await?;
    Ok(Json(json!({
        "path": req.path,
        "track_id": a.library_id.map(|t| t.0),
        "cached": a.cached,
        "fingerprint": a.fingerprint,
        "metadata": a.metadata,
        "processing_time_ms": started.elapsed().as_millis() as u64,
    })))
}

/// `GET /api/v1/status`: the figures of `sonoprint status --json`.
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let st = with_store(&state, |s| s.status()).await?;
    Ok(Json(status_json(&st)))
}

/// `GET /api/v1/failures?class=`.
pub async fn failures(
    State(state): State<Arc<AppState>>,
    Params(q): Params,
) -> Result<Json<Value>, ApiError> {
    let class = q.get("class").filter(|c| !c.is_empty()).cloned();
    if let Some(c) = &class {
        if ErrorClass::parse(c).is_none() {
            let all: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "unknown class {c:?}; the classes are: {}",
                all.join(", ")
            )));
        }
    }
    let rows = with_store(&state, move |s| s.failures(class.as_deref())).await?;
    Ok(Json(json!({
        "count": rows.len(),
        "failures": rows.iter().map(failure_json).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| openapi_document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}

/// The OpenAPI document, with the fingerprint's schema made from the one list of dimensions, so
/// that the API cannot describe other dimensions than the engine computes and the store keeps.
fn openapi_document() -> Value {
    let mut doc: Value = match serde_json::from_str(OPENAPI) {
        Ok(v) => v,
        // The file is part of the build and checked by a test: this is a bug, say so.
        Err(e) => return json!({"error": format!("openapi.json is not valid JSON: {e}")}),
    };
    let properties: serde_json::Map<String, Value> = sonoprint_core::DIMENSIONS
        .iter()
        .map(|d| {
            (
                d.name.to_string(),
                json!({
                    "type": "number",
                    "description": format!("{} Unit: {}.", d.description.trim(), d.unit),
                    "minimum": d.min,
                    "maximum": d.max,
                }),
            )
        })
        .collect();
    doc["components"]["schemas"]["Fingerprint"] = json!({
        "type": "object",
        "description": "The dimensions of the fingerprint, in table order (docs/fingerprint.md).",
        "required": sonoprint_core::Fingerprint::NAMES,
        "properties": properties,
        "additionalProperties": false,
    });
    doc
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let free = state.slots.available_permits();
    let text = state.metrics.render(
        state.waiting.load(Ordering::SeqCst),
        state.jobs.saturating_sub(free),
        state.jobs,
        state.started.elapsed(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_schema_is_the_list_of_dimensions() {
        let doc = openapi_document();
        assert!(doc.get("error").is_none(), "{doc}");
        let fp = &doc["components"]["schemas"]["Fingerprint"];
        let names: Vec<&str> = fp["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, sonoprint_core::Fingerprint::NAMES);
        assert_eq!(fp["properties"]["lufs"]["minimum"], -70.0);
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with('3')),
            Some(true)
        );
    }
}
