//! Similarity over HTTP: `/api/v1/tracks/{id}/similar`, `/api/v1/path`, `/api/v1/playlist`
//! (in the OpenAPI document), and the OpenSubsonic `sonicSimilarity` extension's
//! `getSonicSimilarTracks` and `findSonicPath`. All of them answer from the application
//! layer's similarity index ([`sonoprint_app::similarity`]), loaded once and refreshed by the
//! fingerprint service.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sonoprint_app::similarity::{
    ListItem, ListReport, SimilarQuery, SimilarReport, Similarity, TrackInfo,
};
use sonoprint_app::AppError;
use sonoprint_store::{Library, TrackId};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiQuery, LIBRARY_ERROR, UNAUTHORIZED};
use crate::error::{ApiError, ErrorBody};
use crate::subsonic::{song_child, Payload, SubsonicError, SubsonicQuery};
use crate::AppState;

const NO_MODEL: &str = "A track that is not in the library or has no current fingerprint, \
     or a library with fewer than 10 fingerprinted tracks (no similarity model yet)";

/// Runs `f` with the similarity index on a blocking thread.
async fn with_similarity<T, F>(state: &Arc<AppState>, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Similarity, &dyn Library) -> Result<T, AppError> + Send + 'static,
{
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || st.service.with_similarity(f))
        .await
        .map_err(|e| AppError::Run(format!("similarity task failed: {e}")))?
}

fn api_error(e: AppError) -> ApiError {
    match e {
        // Too few fingerprints for a model is "no answer yet" for this library: 404 with
        // what to run, like an unknown track.
        AppError::NotFound(m) | AppError::Usage(m) => ApiError::not_found(m),
        other => ApiError::internal(format!("library error: {other}")),
    }
}

/// A track in an answer.
#[derive(Serialize, ToSchema)]
pub struct TrackRef {
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(min_length = 1)]
    pub path: String,
    pub title: Option<String>,
    pub duration_sec: Option<f64>,
    pub format: Option<String>,
}

impl From<TrackInfo> for TrackRef {
    fn from(t: TrackInfo) -> Self {
        TrackRef {
            id: t.id,
            path: t.path.to_string_lossy().into_owned(),
            title: t.title,
            duration_sec: t.duration_sec,
            format: t.format,
        }
    }
}

/// One track near the query.
#[derive(Serialize, ToSchema)]
pub struct SimilarTrack {
    pub track: TrackRef,
    /// The model's distance (0 for the same audio).
    #[schema(minimum = 0)]
    pub distance: f64,
    /// 1 for the same audio, 0.5 for a pair as close as the closest 1 % of the library.
    #[schema(minimum = 0, maximum = 1)]
    pub score: f64,
    /// The three dimensions that made it close, closest first.
    pub closest_dimensions: Vec<String>,
    /// The query's own audio under another path.
    pub same_audio_as_query: bool,
    /// Other tracks with the same audio as this one, shown once here.
    pub duplicates: Vec<TrackRef>,
}

/// The answer of `GET /api/v1/tracks/{id}/similar`.
#[derive(Serialize, ToSchema)]
pub struct SimilarResponse {
    pub query: TrackRef,
    /// The similarity model the answer used.
    pub model: String,
    /// What to run when the model is missing or out of date.
    pub note: Option<String>,
    pub results: Vec<SimilarTrack>,
}

impl From<SimilarReport> for SimilarResponse {
    fn from(r: SimilarReport) -> Self {
        SimilarResponse {
            query: r.query.into(),
            model: r.model,
            note: r.note,
            results: r
                .results
                .into_iter()
                .map(|s| SimilarTrack {
                    track: s.track.into(),
                    distance: s.distance,
                    score: s.score,
                    closest_dimensions: s
                        .closest_dimensions
                        .iter()
                        .map(|d| d.to_string())
                        .collect(),
                    same_audio_as_query: s.same_audio_as_query,
                    duplicates: s.duplicates.into_iter().map(TrackRef::from).collect(),
                })
                .collect(),
        }
    }
}

/// One track of a path or a playlist.
#[derive(Serialize, ToSchema)]
pub struct ListTrack {
    pub track: TrackRef,
    /// Path: the distance from the previous track; playlist: to the farthest seed.
    #[schema(minimum = 0)]
    pub distance: f64,
    /// Path only: the distance to the last track.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub distance_to_end: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub score: f64,
    /// Playlist only: a seed track.
    pub seed: bool,
}

/// The answer of `GET /api/v1/path` and `GET /api/v1/playlist`.
#[derive(Serialize, ToSchema)]
pub struct ListResponse {
    pub model: String,
    pub note: Option<String>,
    pub tracks: Vec<ListTrack>,
}

impl From<ListReport> for ListResponse {
    fn from(r: ListReport) -> Self {
        ListResponse {
            model: r.model,
            note: r.note,
            tracks: r
                .tracks
                .into_iter()
                .map(|t: ListItem| ListTrack {
                    track: t.track.into(),
                    distance: t.distance,
                    distance_to_end: t.distance_to_end,
                    score: t.score,
                    seed: t.seed,
                })
                .collect(),
        }
    }
}

/// The options of `GET /api/v1/tracks/{id}/similar`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// How many tracks.
    #[param(minimum = 1, maximum = 1000, default = 20)]
    count: Option<u32>,
    /// Leave out tracks scoring below this.
    #[param(minimum = 0, maximum = 1, default = 0)]
    min_score: Option<f64>,
    /// Leave out the tracks in the query's folder (its album).
    #[param(default = false)]
    exclude_folder: Option<bool>,
}

fn track_id(raw: &str) -> Result<TrackId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .map(TrackId)
        .ok_or_else(|| ApiError::bad_request(format!("bad track id {raw:?} (1 or more)")))
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    v: Option<T>,
    default: T,
    lo: T,
    hi: T,
) -> Result<T, ApiError> {
    match v {
        None => Ok(default),
        Some(x) if x >= lo && x <= hi => Ok(x),
        Some(x) => Err(ApiError::bad_request(format!(
            "bad {name}: {x} ({lo} to {hi})"
        ))),
    }
}

/// `GET /api/v1/tracks/{id}/similar`.
#[utoipa::path(
    get,
    tag = "similarity",
    path = "/api/v1/tracks/{id}/similar",
    summary = "The tracks that sound most like one track",
    description = "Nearest first. The same audio under several paths is one result, with the \
        other paths in `duplicates`; the query's own audio elsewhere is flagged.",
    params(
        ("id" = i64, Path, minimum = 1, maximum = 9223372036854775807_i64,
            description = "The track's id"),
        SimilarParams,
    ),
    responses(
        (status = 200, description = "The nearest tracks", body = SimilarResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = NO_MODEL, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn similar(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(p): ApiQuery<SimilarParams>,
) -> Result<Json<SimilarResponse>, ApiError> {
    let Path(raw) =
        path.map_err(|e| ApiError::bad_request(format!("bad track id: {}", e.body_text())))?;
    let id = track_id(&raw)?;
    let q = SimilarQuery {
        n: in_range("count", p.count, 20, 1, 1000)? as usize,
        min_score: in_range("min_score", p.min_score, 0.0, 0.0, 1.0)?,
        exclude_same_folder: p.exclude_folder.unwrap_or(false),
    };
    let report = with_similarity(&state, move |sim, lib| sim.similar(lib, id, &q))
        .await
        .map_err(api_error)?;
    Ok(Json(report.into()))
}

/// The options of `GET /api/v1/path`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathParams {
    /// The first track's id.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    from: i64,
    /// The last track's id.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    to: i64,
    /// Tracks in the path, both ends included.
    #[param(minimum = 2, maximum = 1000, default = 10)]
    length: Option<u32>,
}

/// `GET /api/v1/path?from=&to=&length=`.
#[utoipa::path(
    get,
    tag = "similarity",
    path = "/api/v1/path",
    summary = "A sequence of tracks from one track to another",
    description = "Each step is close to the previous track and closer to the last one; no \
        track twice. Shorter than `length` when no track brings the path closer.",
    params(PathParams),
    responses(
        (status = 200, description = "The path, first track first", body = ListResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = NO_MODEL, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn path(
    State(state): State<Arc<AppState>>,
    ApiQuery(p): ApiQuery<PathParams>,
) -> Result<Json<ListResponse>, ApiError> {
    let (a, b) = (track_id(&p.from.to_string())?, track_id(&p.to.to_string())?);
    let length = in_range("length", p.length, 10, 2, 1000)? as usize;
    let report = with_similarity(&state, move |sim, lib| sim.path(lib, a, b, length))
        .await
        .map_err(api_error)?;
    Ok(Json(report.into()))
}

/// The options of `GET /api/v1/playlist`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlaylistParams {
    /// The seed tracks' ids, comma-separated (`12,40`): around one track, or what several
    /// share.
    #[param(
        pattern = "^[1-9][0-9]{0,17}(,[1-9][0-9]{0,17}){0,49}$",
        min_length = 1
    )]
    seeds: String,
    /// Tracks in the playlist, seeds included.
    #[param(minimum = 1, maximum = 1000, default = 30)]
    length: Option<u32>,
    /// No two tracks of one folder within this many consecutive places.
    #[param(minimum = 0, maximum = 1000, default = 0)]
    no_repeat_folder: Option<u32>,
}

/// `GET /api/v1/playlist?seeds=&length=&no_repeat_folder=`.
#[utoipa::path(
    get,
    tag = "similarity",
    path = "/api/v1/playlist",
    summary = "A playlist around one or more seed tracks",
    description = "The seeds first, then the tracks nearest to them, several seeds counting by \
        the farthest one.",
    params(PlaylistParams),
    responses(
        (status = 200, description = "The playlist", body = ListResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = NO_MODEL, body = ErrorBody),
        (status = 500, description = LIBRARY_ERROR, body = ErrorBody),
    ),
)]
pub async fn playlist(
    State(state): State<Arc<AppState>>,
    ApiQuery(p): ApiQuery<PlaylistParams>,
) -> Result<Json<ListResponse>, ApiError> {
    let seeds = p
        .seeds
        .split(',')
        .map(track_id)
        .collect::<Result<Vec<_>, _>>()?;
    if seeds.is_empty() || seeds.len() > 50 {
        return Err(ApiError::bad_request("seeds: 1 to 50 track ids"));
    }
    let length = in_range("length", p.length, 30, 1, 1000)? as usize;
    let no_repeat = in_range("no_repeat_folder", p.no_repeat_folder, 0, 0, 1000)? as usize;
    let report = with_similarity(&state, move |sim, lib| {
        sim.playlist(lib, &seeds, length, no_repeat)
    })
    .await
    .map_err(api_error)?;
    Ok(Json(report.into()))
}

// ---- OpenSubsonic sonicSimilarity -----------------------------------------------------------

fn subsonic_error(e: AppError) -> SubsonicError {
    match e {
        AppError::NotFound(m) | AppError::Usage(m) => SubsonicError::not_found(m),
        other => SubsonicError::generic(format!("library error: {other}")),
    }
}

/// A `sonicMatch`: the published documents' shape (`entry`, a Child, and `similarity`, 1 for
/// the same song), with the song's fields also at the match's top level and `distance` in
/// [0, 1] (0 for the same song): clients written to either form of the extension read it.
fn sonic_match(
    lib: &dyn Library,
    roots: &[std::path::PathBuf],
    id: TrackId,
    similarity: f64,
) -> Result<Value, AppError> {
    let row = lib
        .track(id)?
        .ok_or_else(|| AppError::NotFound(format!("song not found: {id}")))?;
    let child = song_child(&row, roots);
    let similarity = similarity.clamp(0.0, 1.0);
    let mut m = match &child {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    m.insert("entry".into(), child);
    m.insert("similarity".into(), json!(similarity));
    m.insert("distance".into(), json!(1.0 - similarity));
    Ok(Value::Object(m))
}

/// The payload of both endpoints: `sonicMatch` at the top level (the published documents) and
/// inside `<result>` (the form some clients read).
fn sonic_payload(result: &str, matches: Vec<Value>) -> Payload {
    let mut p = Payload::new();
    p.insert("sonicMatch".into(), Value::Array(matches.clone()));
    p.insert(result.into(), json!({ "sonicMatch": matches }));
    p
}

/// `getSonicSimilarTracks?id=&count=` (count default 10).
pub async fn get_sonic_similar_tracks(
    State(state): State<Arc<AppState>>,
    q: SubsonicQuery,
) -> Response {
    let args = q
        .track_id("id")
        .and_then(|id| Ok((id, q.count("count", 10, 500)?)));
    let result = match args {
        Err(e) => Err(e),
        Ok((id, count)) => {
            let st = Arc::clone(&state);
            with_similarity(&state, move |sim, lib| {
                let report = sim.similar(
                    lib,
                    id,
                    &SimilarQuery {
                        n: count as usize,
                        ..Default::default()
                    },
                )?;
                report
                    .results
                    .iter()
                    .map(|r| sonic_match(lib, &st.roots, TrackId(r.track.id), r.score))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map(|m| sonic_payload("sonicSimilarTracksResult", m))
            .map_err(subsonic_error)
        }
    };
    q.reply(result)
}

/// `findSonicPath?startSongId=&endSongId=&count=` (count default 25): the start song first,
/// the end song last; `similarity` is to the start song.
pub async fn find_sonic_path(State(state): State<Arc<AppState>>, q: SubsonicQuery) -> Response {
    let args = q.track_id("startSongId").and_then(|a| {
        let b = q.track_id("endSongId")?;
        Ok((a, b, q.count("count", 25, 1000)?))
    });
    let result = match args {
        Err(e) => Err(e),
        Ok((a, b, count)) => {
            let st = Arc::clone(&state);
            with_similarity(&state, move |sim, lib| {
                let report = sim.path(lib, a, b, (count as usize).max(2))?;
                report
                    .tracks
                    .iter()
                    .map(|t| {
                        let id = TrackId(t.track.id);
                        let score = sim.distance(a, id).map_or(0.0, |(_, s)| s);
                        sonic_match(lib, &st.roots, id, score)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map(|m| sonic_payload("findSonicPathResult", m))
            .map_err(subsonic_error)
        }
    };
    q.reply(result)
}
