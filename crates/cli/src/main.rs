//! `sonoprint`: fingerprint music libraries.

mod analyze;
mod bench;
mod datadir;
mod failures;
mod logging;
mod run;
mod scan;
mod serve;
mod status;
mod sysinfo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Run(args) => {
            datadir::resolve(cli.data_dir).and_then(|d| run::run(args, &d.db(), &d.logs()))
        }
        Command::Worker => return sonoprint_worker::worker_main(),
        Command::Scan(args) => datadir::resolve(cli.data_dir).and_then(|d| scan::run(args, &d)),
        Command::Status(args) => datadir::resolve(cli.data_dir).and_then(|d| status::run(args, &d)),
        Command::Failures(args) => {
            datadir::resolve(cli.data_dir).and_then(|d| failures::run(args, &d))
        }
        Command::Serve(args) => datadir::resolve(cli.data_dir).and_then(|d| serve::run(args, &d)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sonoprint: {e}");
            ExitCode::from(1)
        }
    }
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
