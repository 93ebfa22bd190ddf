//! Similarity over a library: the stored graph (`sonoprint graph`, `run --graph`) and the
//! answers built on the fitted model (`similar`, `path`, `playlist`, and the server's
//! endpoints). The computation is `sonoprint_similarity`'s; this module decides which model
//! is used, what is recomputed, and writes through the [`Library`] interface.
//!
//! # The model and the graph
//!
//! The model (normalisation and weights, `sonoprint_similarity::Model`) is fitted on the
//! library's current fingerprints and stored with the graph, with its id, generation and the
//! count it was fitted on. [`update_graph`] keeps it while the library has changed by at most
//! `sonoprint_similarity::REFIT_SHARE` of that count, and then recomputes only the graph rows
//! the change reaches (the changed tracks, the tracks that pointed at a changed or vanished
//! one, and those a changed one is now nearer to than their k-th neighbour). Past that share,
//! or with other weights or another `k`, it refits and rebuilds. Every answer names the model
//! it used.
//!
//! The weights live in one place, `sonoprint_similarity::DEFAULT_WEIGHTS` (documented there
//! with the measurements behind them); `graph --weights FILE` overrides any of them by name,
//! and the overrides stay with the stored model until the next `--weights`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sonoprint_core::Fingerprint;
use sonoprint_similarity::{
    Edge, Graph, Index, Model, PathStep, PlaylistEntry, PlaylistOptions, SimilarOptions, Weights,
    MIN_FIT_ROWS,
};
use sonoprint_store::{GraphEdge, GraphState, GraphUpdate, Library, Page, TrackFilter, TrackId};

use crate::AppError;

/// The player's neighbours per track.
pub const DEFAULT_K: usize = 10;

/// What `graph` is asked to do; the default keeps the stored k and weights and updates only
/// what changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphOptions {
    /// Neighbours per track; `None` keeps the stored graph's (10 for a first graph).
    pub k: Option<usize>,
    /// Refit the model and recompute every row.
    pub rebuild: bool,
    /// Weights for a new model; `None` keeps the stored model's (the defaults for a first one).
    pub weights: Option<Weights>,
}

/// What [`update_graph`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphReport {
    /// Tracks with a current fingerprint, all in the graph.
    pub tracks: usize,
    pub k: usize,
    pub model: String,
    pub model_generation: u64,
    pub model_fitted_on: usize,
    /// Whether every row was recomputed (with a newly fitted model), and why.
    pub rebuilt: bool,
    pub reason: String,
    /// Tracks added or changed since the previous graph.
    pub changed: usize,
    /// Tracks that lost their fingerprint since: their rows and every row pointing at them
    /// are gone.
    pub removed: usize,
    /// Tracks whose rows were recomputed.
    pub recomputed: usize,
    pub rows_written: u64,
    pub rows_deleted: u64,
    /// Rows not written because a track was deleted meanwhile (by the player).
    pub rows_skipped: u64,
    /// Whether the search was approximate (above `sonoprint_similarity::APPROXIMATE_ABOVE`
    /// tracks).
    pub approximate: bool,
    pub seconds: f64,
}

/// A stable digest of a fingerprint's values, stored per graph track so that the next
/// [`update_graph`] knows which tracks changed.
pub fn digest(fp: &Fingerprint) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in fp.to_array() {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h as i64
}

fn stored_model(state: &GraphState) -> Option<Model> {
    serde_json::from_str(&state.model).ok()
}

fn to_store(e: &Edge) -> GraphEdge {
    GraphEdge {
        track_id: TrackId(e.track_id),
        similar_track_id: TrackId(e.similar_track_id),
        distance: f64::from(e.distance),
        similarity_score: f64::from(e.similarity_score).clamp(0.0, 1.0),
        rank: e.rank,
    }
}

fn from_store(e: &GraphEdge) -> Edge {
    Edge {
        track_id: e.track_id.0,
        similar_track_id: e.similar_track_id.0,
        distance: e.distance as f32,
        similarity_score: e.similarity_score as f32,
        rank: e.rank,
    }
}

fn similarity_error(e: sonoprint_similarity::Error) -> AppError {
    match e {
        sonoprint_similarity::Error::TooFewFingerprints { got, need } => AppError::Usage(format!(
            "similarity needs at least {need} fingerprinted tracks and the library has {got}: \
             run `sonoprint run` first"
        )),
        sonoprint_similarity::Error::UnknownTrack(id) => AppError::NotFound(format!(
            "track {id} has no current fingerprint: run `sonoprint run` first"
        )),
        other => AppError::Usage(other.to_string()),
    }
}

/// Brings the library's similarity graph up to date: a first graph, a rebuild when asked or
/// needed, otherwise only the rows the changes since the last one reach. One transaction.
pub fn update_graph(lib: &mut dyn Library, opts: &GraphOptions) -> Result<GraphReport, AppError> {
    let start = Instant::now();
    let tracks: Vec<(i64, Fingerprint)> = lib
        .fingerprints()?
        .into_iter()
        .map(|(id, fp)| (id.0, fp))
        .collect();
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.1).collect();
    if tracks.len() < MIN_FIT_ROWS {
        return Err(similarity_error(
            sonoprint_similarity::Error::TooFewFingerprints {
                got: tracks.len(),
                need: MIN_FIT_ROWS,
            },
        ));
    }
    let state = lib.graph_state()?;
    let nodes: HashMap<i64, i64> = lib
        .graph_nodes()?
        .into_iter()
        .map(|(id, d)| (id.0, d))
        .collect();
    let digests: Vec<(TrackId, i64)> = tracks
        .iter()
        .map(|(id, fp)| (TrackId(*id), digest(fp)))
        .collect();
    let current: HashSet<i64> = tracks.iter().map(|t| t.0).collect();
    let changed: Vec<i64> = digests
        .iter()
        .filter(|(id, d)| nodes.get(&id.0) != Some(d))
        .map(|(id, _)| id.0)
        .collect();
    let mut removed: Vec<i64> = nodes
        .keys()
        .copied()
        .filter(|id| !current.contains(id))
        .collect();
    removed.sort_unstable();

    let old_model = state.as_ref().and_then(stored_model);
    let k = opts
        .k
        .or(state.as_ref().map(|s| s.k as usize))
        .unwrap_or(DEFAULT_K);
    if k == 0 {
        return Err(AppError::Usage("--k must be at least 1".into()));
    }
    // Keep the model (and so the rows that did not change) unless something says otherwise.
    let rebuild_reason = match (&state, &old_model) {
        (None, _) => Some("first graph of this library".to_string()),
        (Some(_), None) => Some("the stored model is of another format".to_string()),
        _ if opts.rebuild => Some("--rebuild".to_string()),
        (Some(s), _) if s.k as usize != k => Some(format!("k changed from {} to {k}", s.k)),
        (_, Some(m)) if opts.weights.as_ref().is_some_and(|w| *w != m.weights) => {
            Some("new weights".to_string())
        }
        (_, Some(m)) if m.needs_refit(tracks.len(), changed.len() + removed.len()) => {
            Some(format!(
                "{} of the {} tracks the model was fitted on changed: more than {:.0} %",
                changed.len() + removed.len(),
                m.fitted_on,
                sonoprint_similarity::REFIT_SHARE * 100.0
            ))
        }
        _ => None,
    };
    let model = match (&rebuild_reason, old_model) {
        (None, Some(m)) => m,
        (_, old) => {
            let weights = opts
                .weights
                .clone()
                .or_else(|| old.as_ref().map(|m| m.weights.clone()))
                .unwrap_or_default();
            let fit = Model::fit_with(
                &fps,
                &sonoprint_similarity::FitOptions {
                    normalisation: old.as_ref().map(|m| m.normalisation).unwrap_or_default(),
                    weights,
                },
            )
            .map_err(similarity_error)?;
            match old {
                Some(o) => Model {
                    generation: o.generation + 1,
                    ..fit
                },
                None => fit,
            }
        }
    };
    let model_json = serde_json::to_string(&model)
        .map_err(|e| AppError::Run(format!("cannot serialise the similarity model: {e}")))?;
    let model_id = model.id();
    let new_state = GraphState {
        model: model_json,
        model_id: model_id.clone(),
        k: k as u32,
        fitted_on: model.fitted_on as u64,
        built_at_ms: now_ms(),
    };
    let (generation, fitted_on) = (model.generation, model.fitted_on);
    let index = Index::build(model, &tracks).map_err(similarity_error)?;
    let approximate = index.is_approximate();

    let (edges, rows_of, recomputed, nodes_out, removed_out) = match &rebuild_reason {
        Some(_) => {
            let graph = Graph::build(&index, k);
            let edges: Vec<GraphEdge> = graph.edges().map(|e| to_store(&e)).collect();
            (edges, Vec::new(), tracks.len(), digests.clone(), Vec::new())
        }
        None => {
            let stored = lib.graph_edges(None)?;
            let mut graph = Graph::from_edges(k, model_id.clone(), stored.iter().map(from_store))
                .map_err(similarity_error)?;
            let report = graph
                .update(&index, &changed, &removed)
                .map_err(similarity_error)?;
            let mut edges = Vec::new();
            for &id in &report.recomputed {
                if let Some(row) = graph.row(id) {
                    edges.extend(row.iter().enumerate().map(|(r, n)| GraphEdge {
                        track_id: TrackId(id),
                        similar_track_id: TrackId(n.id),
                        distance: f64::from(n.distance),
                        similarity_score: f64::from(n.score).clamp(0.0, 1.0),
                        rank: r as u32 + 1,
                    }));
                }
            }
            let changed_set: HashSet<i64> = changed.iter().copied().collect();
            let nodes_out: Vec<(TrackId, i64)> = digests
                .iter()
                .filter(|(id, _)| changed_set.contains(&id.0))
                .copied()
                .collect();
            let mut gone: Vec<TrackId> = removed.iter().map(|&i| TrackId(i)).collect();
            gone.extend(report.dropped.iter().map(|&i| TrackId(i)));
            gone.sort_unstable();
            gone.dedup();
            let rows_of: Vec<TrackId> = report.recomputed.iter().map(|&i| TrackId(i)).collect();
            (edges, rows_of, report.recomputed.len(), nodes_out, gone)
        }
    };
    let counts = lib.write_graph(&GraphUpdate {
        state: &new_state,
        rebuild: rebuild_reason.is_some(),
        rows_of: &rows_of,
        edges: &edges,
        nodes: &nodes_out,
        removed: &removed_out,
    })?;
    Ok(GraphReport {
        tracks: tracks.len(),
        k,
        model: model_id,
        model_generation: generation,
        model_fitted_on: fitted_on,
        rebuilt: rebuild_reason.is_some(),
        reason: rebuild_reason.unwrap_or_else(|| "incremental update".to_string()),
        changed: changed.len(),
        removed: removed.len(),
        recomputed,
        rows_written: counts.rows_written,
        rows_deleted: counts.rows_deleted,
        rows_skipped: counts.rows_skipped,
        approximate,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---- answers --------------------------------------------------------------------------------

/// A track as the answers show it: what the library knows of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackInfo {
    pub id: i64,
    pub path: PathBuf,
    pub title: Option<String>,
    pub duration_sec: Option<f64>,
    pub format: Option<String>,
    pub filesize: Option<u64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
}

/// One track of a `similar` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarItem {
    pub track: TrackInfo,
    /// The model's distance (0 = the same audio).
    pub distance: f64,
    /// In [0, 1], 1 = the same audio.
    pub score: f64,
    /// The dimensions that made it close, closest first.
    pub closest_dimensions: Vec<&'static str>,
    /// The query's own audio under another path.
    pub same_audio_as_query: bool,
    /// Other tracks with the same audio as this one (other paths), shown once here.
    pub duplicates: Vec<TrackInfo>,
}

/// The answer of [`Similarity::similar`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarReport {
    pub query: TrackInfo,
    pub model: String,
    /// Set when the model was fitted for this answer because no graph was built, or when the
    /// stored one is out of date: what to run.
    pub note: Option<String>,
    pub results: Vec<SimilarItem>,
}

/// One track of a path or a playlist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListItem {
    pub track: TrackInfo,
    /// Path: distance from the previous track; playlist: distance to the farthest seed.
    pub distance: f64,
    /// Path: distance to the end track; playlist: whether it is a seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_to_end: Option<f64>,
    pub score: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub seed: bool,
}

/// The answer of [`Similarity::path`] and [`Similarity::playlist`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListReport {
    pub model: String,
    pub note: Option<String>,
    pub tracks: Vec<ListItem>,
}

/// What `similar` is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarQuery {
    pub n: usize,
    pub min_score: f64,
    /// Leave out tracks in the query's folder (its album, in a library laid out by album).
    pub exclude_same_folder: bool,
}

impl Default for SimilarQuery {
    fn default() -> Self {
        SimilarQuery {
            n: 20,
            min_score: 0.0,
            exclude_same_folder: false,
        }
    }
}

/// The library's fingerprints, searchable with the stored model (or one fitted now when no
/// graph was built). Built once per command, or cached by the server.
pub struct Similarity {
    index: Index,
    note: Option<String>,
}

fn folder(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Similarity {
    /// Loads the library's current fingerprints and the stored model.
    pub fn load(lib: &dyn Library) -> Result<Similarity, AppError> {
        let tracks: Vec<(i64, Fingerprint)> = lib
            .fingerprints()?
            .into_iter()
            .map(|(id, fp)| (id.0, fp))
            .collect();
        let stored = lib.graph_state()?.and_then(|s| stored_model(&s));
        let (model, note) = match stored {
            Some(m) if !m.needs_refit(tracks.len(), 0) => (m, None),
            Some(m) => {
                let note = format!(
                    "the stored model was fitted on {} fingerprints and the library has {}: \
                     run `sonoprint graph` to refit it",
                    m.fitted_on,
                    tracks.len()
                );
                (m, Some(note))
            }
            None => {
                let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.1).collect();
                let m = Model::fit(&fps).map_err(similarity_error)?;
                (
                    m,
                    Some(
                        "no graph was built: the model was fitted for this answer \
                         (`sonoprint graph` stores one)"
                            .into(),
                    ),
                )
            }
        };
        let index = Index::build(model, &tracks).map_err(similarity_error)?;
        Ok(Similarity { index, note })
    }

    /// The id of the model the answers use.
    pub fn model_id(&self) -> String {
        self.index.model().id()
    }

    /// How many tracks can be asked about.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The model's distance between two tracks and its score in [0, 1], when both have a
    /// current fingerprint.
    pub fn distance(&self, a: TrackId, b: TrackId) -> Option<(f64, f64)> {
        let d = f64::from(self.index.distance_between(a.0, b.0)?);
        Some((d, self.index.model().score(d)))
    }

    /// Whether `id` has a current fingerprint.
    pub fn contains(&self, id: TrackId) -> bool {
        self.index.contains(id.0)
    }

    fn known(&self, lib: &dyn Library, id: TrackId) -> Result<(), AppError> {
        if self.index.contains(id.0) {
            return Ok(());
        }
        match lib.track(id)? {
            None => Err(AppError::NotFound(format!("no track {id} in the library"))),
            Some(t) => Err(AppError::NotFound(format!(
                "track {id} ({}) has no current fingerprint: run `sonoprint run` first",
                t.path.display()
            ))),
        }
    }

    fn folders(&self, lib: &dyn Library) -> Result<HashMap<i64, PathBuf>, AppError> {
        let mut out = HashMap::with_capacity(self.index.len());
        let mut after = None;
        loop {
            let page = lib.tracks(
                Page { after, limit: 5000 },
                TrackFilter {
                    state: None,
                    fingerprinted: Some(true),
                },
            )?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = Some(last.id);
            out.extend(page.iter().map(|t| (t.id.0, folder(&t.path))));
        }
    }

    /// The nearest tracks to `id`.
    pub fn similar(
        &self,
        lib: &dyn Library,
        id: TrackId,
        q: &SimilarQuery,
    ) -> Result<SimilarReport, AppError> {
        self.known(lib, id)?;
        let query = track_info(lib, id)?;
        let folders = if q.exclude_same_folder {
            Some(self.folders(lib)?)
        } else {
            None
        };
        let own = folder(&query.path);
        let keep = |o: i64| match &folders {
            Some(f) => f.get(&o) != Some(&own),
            None => true,
        };
        let answer = sonoprint_similarity::similar(
            &self.index,
            id.0,
            &SimilarOptions {
                n: q.n,
                min_score: q.min_score as f32,
                dimensions: 3,
            },
            &keep,
        )
        .map_err(similarity_error)?;
        let mut results = Vec::with_capacity(answer.results.len());
        for r in answer.results {
            results.push(SimilarItem {
                track: track_info(lib, TrackId(r.id))?,
                distance: f64::from(r.distance),
                score: f64::from(r.score),
                closest_dimensions: r.closest_dimensions,
                same_audio_as_query: r.same_audio_as_query,
                duplicates: r
                    .duplicates
                    .iter()
                    .map(|d| track_info(lib, TrackId(*d)))
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(SimilarReport {
            query,
            model: answer.model_id,
            note: self.note.clone(),
            results,
        })
    }

    /// A path of at most `length` tracks from `a` to `b`.
    pub fn path(
        &self,
        lib: &dyn Library,
        a: TrackId,
        b: TrackId,
        length: usize,
    ) -> Result<ListReport, AppError> {
        self.known(lib, a)?;
        self.known(lib, b)?;
        if length < 2 {
            return Err(AppError::Usage(
                "a path holds at least 2 tracks (the start and the end)".into(),
            ));
        }
        let steps: Vec<PathStep> =
            sonoprint_similarity::path(&self.index, a.0, b.0, length, &|_| true)
                .map_err(similarity_error)?;
        let model = self.index.model();
        let mut tracks = Vec::with_capacity(steps.len());
        for s in steps {
            tracks.push(ListItem {
                track: track_info(lib, TrackId(s.id))?,
                distance: f64::from(s.step_distance),
                distance_to_end: Some(f64::from(s.distance_to_end)),
                score: model.score(f64::from(s.step_distance)),
                seed: false,
            });
        }
        Ok(ListReport {
            model: model.id(),
            note: self.note.clone(),
            tracks,
        })
    }

    /// A playlist around `seeds`.
    pub fn playlist(
        &self,
        lib: &dyn Library,
        seeds: &[TrackId],
        length: usize,
        no_repeat_folder: usize,
    ) -> Result<ListReport, AppError> {
        if seeds.is_empty() {
            return Err(AppError::Usage(
                "a playlist needs at least one --seed".into(),
            ));
        }
        for s in seeds {
            self.known(lib, *s)?;
        }
        let folders = if no_repeat_folder > 0 {
            self.folders(lib)?
        } else {
            HashMap::new()
        };
        let ids: Vec<i64> = seeds.iter().map(|s| s.0).collect();
        let entries: Vec<PlaylistEntry> = sonoprint_similarity::playlist(
            &self.index,
            &ids,
            &PlaylistOptions {
                length,
                no_repeat_folder,
            },
            |id| folders.get(&id).cloned(),
        )
        .map_err(similarity_error)?;
        let mut tracks = Vec::with_capacity(entries.len());
        for e in entries {
            tracks.push(ListItem {
                track: track_info(lib, TrackId(e.id))?,
                distance: f64::from(e.distance),
                distance_to_end: None,
                score: f64::from(e.score),
                seed: e.seed,
            });
        }
        Ok(ListReport {
            model: self.model_id(),
            note: self.note.clone(),
            tracks,
        })
    }
}

fn track_info(lib: &dyn Library, id: TrackId) -> Result<TrackInfo, AppError> {
    let t = lib
        .track(id)?
        .ok_or_else(|| AppError::NotFound(format!("no track {id} in the library")))?;
    Ok(TrackInfo {
        id: t.id.0,
        path: t.path,
        title: t.title,
        duration_sec: t.duration,
        format: t.format,
        filesize: t.filesize,
        sample_rate: t.sample_rate,
        channels: t.channels,
    })
}

/// The track a user named: an existing file's path, or a track id.
pub fn resolve_track(lib: &dyn Library, arg: &str) -> Result<TrackId, AppError> {
    let p = Path::new(arg);
    if p.exists() {
        let canonical = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        for candidate in [canonical.as_path(), p] {
            if let Some(id) = lib.track_id_by_path(candidate)? {
                return Ok(id);
            }
        }
        return Err(AppError::NotFound(format!(
            "{arg} is not in the library: add its folder with `sonoprint scan`"
        )));
    }
    match arg.parse::<i64>() {
        Ok(id) => Ok(TrackId(id)),
        Err(_) => Err(AppError::NotFound(format!(
            "{arg}: no such file, and not a track id"
        ))),
    }
}

/// An M3U playlist of the tracks of a report, as players read it.
pub fn m3u(report: &ListReport) -> String {
    let paths: Vec<String> = report
        .tracks
        .iter()
        .map(|t| t.track.path.to_string_lossy().into_owned())
        .collect();
    let entries: Vec<sonoprint_similarity::M3uEntry<'_>> = report
        .tracks
        .iter()
        .zip(&paths)
        .map(|(t, p)| sonoprint_similarity::M3uEntry {
            path: p,
            duration_sec: t.track.duration_sec,
            title: t.track.title.as_deref().unwrap_or(""),
        })
        .collect();
    sonoprint_similarity::m3u(&entries)
}
