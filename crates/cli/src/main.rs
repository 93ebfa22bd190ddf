//! `sonoprint`: fingerprint music libraries.

mod analyze;
mod bench;
mod bench_queue;
mod datadir;
mod failures;
mod logging;
mod run;
mod scan;
mod serve;
mod similar;
mod status;
mod sysinfo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sonoprint_app::LibrarySpec;

#[derive(Parser)]
#[command(
    name = "sonoprint",
    version,
    about = "Acoustic fingerprints of music libraries"
)]
struct Cli {
    /// Where the library database and the logs live [default: $SONOPRINT_HOME, or ~/.sonoprint].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Work on the Auralis player's own database (e.g. ~/.auralis/library.db) instead of
    /// sonoprint's: its tracks are the work, results go into its track_fingerprints.
    #[arg(long, global = true, value_name = "DB", env = "SONOPRINT_AURALIS")]
    auralis: Option<PathBuf>,
    /// The library database: a PostgreSQL URL (postgres://user:password@host:port/db), shared
    /// by every machine that runs on it, or the path of a sonoprint SQLite file.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SONOPRINT_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// With --db postgres://...: where a folder of the database's (canonical) paths is on this
    /// machine, CANONICAL=LOCAL (e.g. /srv/music=/mnt/music); repeatable.
    #[arg(long, global = true, value_name = "CANONICAL=LOCAL")]
    path_map: Vec<String>,
    /// With --auralis: the fingerprint_version stamped on results and counted as current.
    #[arg(long, global = true, value_name = "N", default_value_t = sonoprint_store::AURALIS_DEFAULT_STAMP,
          value_parser = clap::value_parser!(u32).range(1..))]
    auralis_version: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fingerprint audio files and print the 25 dimensions.
    ///
    /// Exit status: 0 when every file was fingerprinted, 1 when any failed, 2 for usage errors.
    Analyze(analyze::Args),
    /// Measure analysis and decoding throughput over every audio file under a folder.
    Bench(bench::Args),
    /// Fingerprint every library track that has no current fingerprint.
    Run(run::Args),
    /// Internal: analyse files named on stdin, one JSON answer per line (used by `run`).
    #[command(hide = true)]
    Worker,
    /// Add the audio files under folders to the library; update changed ones, mark vanished ones
    /// missing (their fingerprints are kept).
    Scan(scan::Args),
    /// Show the library: tracks, fingerprints (current, stale, pending), failures, last run.
    Status(status::Args),
    /// List the files that could not be fingerprinted, with the reason.
    Failures(failures::Args),
    /// Serve fingerprints over HTTP (the Auralis-compatible API, /api/v1 and /metrics).
    Serve(serve::Args),
    /// Compute every track's nearest neighbours into the similarity_graph table (only the rows
    /// that changed since the last graph, unless the model must be refitted).
    Graph(similar::GraphArgs),
    /// The tracks that sound most like one track.
    Similar(similar::SimilarArgs),
    /// A sequence of tracks from one track to another, each step close to the previous one.
    Path(similar::PathArgs),
    /// A playlist around one or more seed tracks.
    Playlist(similar::PlaylistArgs),
    /// Copy a library into another, empty one: tracks, fingerprints, failures and the
    /// similarity graph (each of SRC and DST a SQLite file or a postgres:// URL).
    Copy(CopyArgs),
    /// Internal: claim-and-record throughput of a PostgreSQL library with a no-op analysis.
    #[command(hide = true)]
    BenchQueue(bench_queue::Args),
    /// With --auralis: remove sonoprint's bookkeeping tables (sonoprint_*) from the player's
    /// database, keeping the fingerprints written into the player's own tables.
    Forget,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The library every library command works on, and where the logs go.
    let library = || -> Result<(LibrarySpec, datadir::DataDir), String> {
        let data = datadir::resolve(cli.data_dir.clone())?;
        let path_map = sonoprint_app::PathMap::parse(&cli.path_map).map_err(|e| e.to_string())?;
        let spec = match (&cli.auralis, &cli.db) {
            (Some(_), Some(_)) => {
                return Err("--auralis and --db name two different libraries: give one".into())
            }
            (Some(db), None) => LibrarySpec::Auralis {
                db: std::path::absolute(db)
                    .map_err(|e| format!("bad --auralis {}: {e}", db.display()))?,
                stamp: cli.auralis_version,
            },
            (None, Some(db)) => {
                LibrarySpec::from_db_arg(db, path_map.clone()).map_err(|e| e.to_string())?
            }
            (None, None) => LibrarySpec::Own { db: data.db() },
        };
        if !path_map.is_empty() && !matches!(spec, LibrarySpec::Postgres { .. }) {
            return Err(
                "--path-map is for a library shared by several machines: use it with \
                        --db postgres://..."
                    .into(),
            );
        }
        Ok((spec, data))
    };
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Run(args) => library().and_then(|(l, d)| run::run(args, &l, &d.logs())),
        Command::Worker => return sonoprint_worker::worker_main(),
        Command::Scan(args) => library().and_then(|(l, _)| scan::run(args, &l)),
        Command::Status(args) => library().and_then(|(l, d)| status::run(args, &l, &d)),
        Command::Failures(args) => library().and_then(|(l, _)| failures::run(args, &l)),
        Command::Serve(args) => library().and_then(|(l, _)| serve::run(args, &l)),
        Command::Graph(args) => library().and_then(|(l, _)| similar::graph(args, &l)),
        Command::Similar(args) => library().and_then(|(l, _)| similar::similar(args, &l)),
        Command::Path(args) => library().and_then(|(l, _)| similar::path(args, &l)),
        Command::Playlist(args) => library().and_then(|(l, _)| similar::playlist(args, &l)),
        Command::Forget => library().and_then(|(l, _)| forget(&l)),
        Command::Copy(args) => copy(args),
        Command::BenchQueue(args) => bench_queue::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sonoprint: {e}");
            ExitCode::from(1)
        }
    }
}

#[derive(clap::Args)]
struct CopyArgs {
    /// The library to copy: a SQLite file or postgres://user:password@host/db.
    #[arg(long, value_name = "SRC")]
    from: String,
    /// The library to fill (it must hold no tracks): a SQLite file or a postgres:// URL.
    #[arg(long, value_name = "DST")]
    to: String,
}

/// `sonoprint copy --from SRC --to DST`.
fn copy(args: CopyArgs) -> Result<ExitCode, String> {
    let spec = |v: &str| {
        LibrarySpec::from_db_arg(v, sonoprint_app::PathMap::default()).map_err(|e| e.to_string())
    };
    let (from, to) = (spec(&args.from)?, spec(&args.to)?);
    let r = sonoprint_app::copy::copy(&from, &to).map_err(|e| e.to_string())?;
    status::emit(&format!(
        "Copied {} -> {}: {} tracks, {} fingerprints, {} failures, {} similarity graph rows\n",
        from.describe(),
        to.describe(),
        r.tracks,
        r.fingerprints,
        r.failures,
        r.graph_rows
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `sonoprint --auralis DB forget`.
fn forget(spec: &LibrarySpec) -> Result<ExitCode, String> {
    let dropped = sonoprint_app::forget(spec).map_err(|e| e.to_string())?;
    let text = if dropped.is_empty() {
        format!("{}: no sonoprint tables to remove\n", spec.describe())
    } else {
        format!(
            "{}: removed {} (the fingerprints in the player's tables are kept)\n",
            spec.describe(),
            dropped.join(", ")
        )
    };
    status::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Every file under `dir`, recursively, in a stable order. Symbolic links are not followed
/// (no loops); FIFOs, sockets and devices are skipped without being opened.
pub fn walk_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
