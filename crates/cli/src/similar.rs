//! `sonoprint graph`, `similar`, `path` and `playlist`: thin faces over
//! `sonoprint_app::similarity`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sonoprint_app::similarity::{
    self, GraphOptions, GraphReport, ListReport, SimilarQuery, SimilarReport, Similarity, TrackInfo,
};
use sonoprint_app::{Create, LibrarySpec};
use sonoprint_similarity::Weights;

use crate::status::{emit, open_existing};

#[derive(clap::Args)]
pub struct GraphArgs {
    /// Neighbours per track [default: the stored graph's, or 10].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=200))]
    k: Option<u32>,
    /// Refit the model and recompute every row, even if little changed.
    #[arg(long)]
    rebuild: bool,
    /// A JSON object of dimension weights overriding the defaults by name, e.g.
    /// {"tempo_bpm": 2.0, "lufs": 0.5}; the graph is rebuilt with them and they stay with the
    /// stored model.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SimilarArgs {
    /// The track: a file's path, or a track id.
    track: String,
    /// How many tracks.
    #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    n: u32,
    /// Leave out the tracks in the same folder (the same album, in a library laid out by
    /// album).
    #[arg(long)]
    exclude_folder: bool,
    /// Leave out tracks scoring below this (0 to 1).
    #[arg(long, value_name = "SCORE", default_value_t = 0.0)]
    min_score: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct PathArgs {
    /// The first track: a path or an id.
    from: String,
    /// The last track: a path or an id.
    to: String,
    /// Tracks in the path, both ends included (fewer when no track brings it closer).
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    length: u32,
    /// Also write the path as an M3U playlist.
    #[arg(long, value_name = "FILE")]
    m3u: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct PlaylistArgs {
    /// A seed track (path or id); several seeds give what they share.
    #[arg(long = "seed", value_name = "TRACK", required = true)]
    seeds: Vec<String>,
    /// Tracks in the playlist, seeds included.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    length: u32,
    /// No two tracks from the same folder within this many consecutive places (1 = never twice
    /// in a row).
    #[arg(long, value_name = "N", default_value_t = 0)]
    no_repeat_folder: u32,
    /// Also write the playlist as an M3U file.
    #[arg(long, value_name = "FILE")]
    m3u: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| format!("cannot write JSON: {e}"))?;
    emit(&format!("{text}\n"))
}

fn weights_file(path: &Path) -> Result<Weights, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --weights {}: {e}", path.display()))?;
    let map: std::collections::BTreeMap<String, f64> =
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "--weights {}: not a JSON object of dimension names and numbers: {e}",
                path.display()
            )
        })?;
    Weights::default()
        .with_overrides(map.iter().map(|(k, v)| (k.as_str(), *v)))
        .map_err(|e| format!("--weights {}: {e}", path.display()))
}

/// `sonoprint graph`.
pub fn graph(args: GraphArgs, spec: &LibrarySpec) -> Result<ExitCode, String> {
    let weights = args.weights.as_deref().map(weights_file).transpose()?;
    let mut lib = open_existing(spec)?;
    let report = similarity::update_graph(
        lib.as_mut(),
        &GraphOptions {
            k: args.k.map(|k| k as usize),
            rebuild: args.rebuild,
            weights,
        },
    )
    .map_err(|e| e.to_string())?;
    if args.json {
        json(&report)?;
    } else {
        emit(&graph_text(&report, spec))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn graph_text(r: &GraphReport, spec: &LibrarySpec) -> String {
    let what = if r.rebuilt {
        format!("built ({})", r.reason)
    } else {
        format!(
            "updated: {} changed, {} without a fingerprint now, {} rows recomputed",
            r.changed, r.removed, r.recomputed
        )
    };
    format!(
        "Similarity graph of {} tracks {what}\n\
         {} rows written to {} (k = {}), model {} fitted on {} tracks{}, {:.1} s\n",
        r.tracks,
        r.rows_written,
        spec.describe(),
        r.k,
        r.model,
        r.model_fitted_on,
        if r.approximate {
            ", approximate search"
        } else {
            ""
        },
        r.seconds
    )
}

/// Runs the graph update after `run --graph`.
pub fn graph_after_run(spec: &LibrarySpec) -> Result<(), String> {
    let mut lib = sonoprint_app::open(spec, Create::Never).map_err(|e| e.to_string())?;
    let report = similarity::update_graph(
        lib.as_mut(),
        &GraphOptions {
            k: None,
            rebuild: false,
            weights: None,
        },
    )
    .map_err(|e| format!("the run's results are kept, but the graph failed: {e}"))?;
    print!("{}", graph_text(&report, spec));
    tracing::info!(
        "graph: {} tracks, {} rows written, {}",
        report.tracks,
        report.rows_written,
        report.reason
    );
    Ok(())
}

fn name(t: &TrackInfo) -> String {
    t.path.display().to_string()
}

fn note(n: &Option<String>) -> String {
    n.as_ref()
        .map(|n| format!("Note: {n}\n"))
        .unwrap_or_default()
}

/// `sonoprint similar`.
pub fn similar(args: SimilarArgs, spec: &LibrarySpec) -> Result<ExitCode, String> {
    if !(0.0..=1.0).contains(&args.min_score) {
        return Err("--min-score must be between 0 and 1".into());
    }
    let lib = open_existing(spec)?;
    let id = similarity::resolve_track(lib.as_ref(), &args.track).map_err(|e| e.to_string())?;
    let sim = Similarity::load(lib.as_ref()).map_err(|e| e.to_string())?;
    let report = sim
        .similar(
            lib.as_ref(),
            id,
            &SimilarQuery {
                n: args.n as usize,
                min_score: args.min_score,
                exclude_same_folder: args.exclude_folder,
            },
        )
        .map_err(|e| e.to_string())?;
    if args.json {
        json(&report)?;
    } else {
        emit(&similar_text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn similar_text(r: &SimilarReport) -> String {
    let mut out = format!(
        "Tracks like {} (id {}), model {}\n{}",
        name(&r.query),
        r.query.id,
        r.model,
        note(&r.note)
    );
    out.push_str("  #  score  distance  track\n");
    for (i, s) in r.results.iter().enumerate() {
        let flag = if s.same_audio_as_query {
            "  [same audio as the query]"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:>3}  {:.3}  {:>8.3}  {} (id {}){flag}\n",
            i + 1,
            s.score,
            s.distance,
            name(&s.track),
            s.track.id
        ));
        out.push_str(&format!(
            "                       close in {}\n",
            s.closest_dimensions.join(", ")
        ));
        for d in &s.duplicates {
            out.push_str(&format!(
                "                       same audio at {} (id {})\n",
                name(d),
                d.id
            ));
        }
    }
    if r.results.is_empty() {
        out.push_str("  (none)\n");
    }
    out
}

fn write_m3u(path: &Path, report: &ListReport) -> Result<(), String> {
    // Written beside the target and renamed over it: a reader never sees half a playlist.
    let tmp = path.with_extension("m3u.tmp");
    std::fs::write(&tmp, similarity::m3u(report))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn list_text(title: &str, r: &ListReport, path_mode: bool) -> String {
    let mut out = format!("{title}, model {}\n{}", r.model, note(&r.note));
    out.push_str(if path_mode {
        "  #   step  to end  track\n"
    } else {
        "  #  score  track\n"
    });
    for (i, t) in r.tracks.iter().enumerate() {
        if path_mode {
            out.push_str(&format!(
                "{:>3}  {:>5.3}  {:>6.3}  {} (id {})\n",
                i + 1,
                t.distance,
                t.distance_to_end.unwrap_or(0.0),
                name(&t.track),
                t.track.id
            ));
        } else {
            out.push_str(&format!(
                "{:>3}  {:.3}  {} (id {}){}\n",
                i + 1,
                t.score,
                name(&t.track),
                t.track.id,
                if t.seed { "  [seed]" } else { "" }
            ));
        }
    }
    out
}

fn finish_list(
    report: &ListReport,
    title: &str,
    path_mode: bool,
    m3u: Option<&Path>,
    as_json: bool,
) -> Result<ExitCode, String> {
    if let Some(f) = m3u {
        write_m3u(f, report)?;
    }
    if as_json {
        json(report)?;
    } else {
        let mut text = list_text(title, report, path_mode);
        if let Some(f) = m3u {
            text.push_str(&format!("Written to {}\n", f.display()));
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sonoprint path`.
pub fn path(args: PathArgs, spec: &LibrarySpec) -> Result<ExitCode, String> {
    let lib = open_existing(spec)?;
    let a = similarity::resolve_track(lib.as_ref(), &args.from).map_err(|e| e.to_string())?;
    let b = similarity::resolve_track(lib.as_ref(), &args.to).map_err(|e| e.to_string())?;
    let sim = Similarity::load(lib.as_ref()).map_err(|e| e.to_string())?;
    let report = sim
        .path(lib.as_ref(), a, b, args.length as usize)
        .map_err(|e| e.to_string())?;
    finish_list(
        &report,
        &format!("Path from track {a} to track {b}"),
        true,
        args.m3u.as_deref(),
        args.json,
    )
}

/// `sonoprint playlist`.
pub fn playlist(args: PlaylistArgs, spec: &LibrarySpec) -> Result<ExitCode, String> {
    let lib = open_existing(spec)?;
    let seeds = args
        .seeds
        .iter()
        .map(|s| similarity::resolve_track(lib.as_ref(), s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let sim = Similarity::load(lib.as_ref()).map_err(|e| e.to_string())?;
    let report = sim
        .playlist(
            lib.as_ref(),
            &seeds,
            args.length as usize,
            args.no_repeat_folder as usize,
        )
        .map_err(|e| e.to_string())?;
    finish_list(
        &report,
        &format!("Playlist of {} tracks", report.tracks.len()),
        false,
        args.m3u.as_deref(),
        args.json,
    )
}
