//! `sonoprint`: fingerprint music libraries.

mod analyze;
mod bench;
mod logging;
mod pool;
mod run;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Run(args) => {
            let home = std::env::var_os("SONOPRINT_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".sonoprint")))
                .unwrap_or_else(|| PathBuf::from(".sonoprint"));
            run::run(args, &home.join("library.db"), &home.join("logs"))
        }
        Command::Worker => return pool::worker_main(),
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
