//! `sonoprint serve`: the fingerprint HTTP server (see the `sonoprint-server` crate).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use sonoprint_app::LibrarySpec;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; anything but loopback needs --token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on (0: any free port; the address is logged at start).
    #[arg(long, value_name = "N", default_value_t = 8766)]
    port: u16,
    /// Analysis worker processes [default: all cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Requests that may wait for a worker; more get 503 at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_queue: usize,
    /// Per-file time limit in seconds; past it the request gets 504.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// A folder whose files may be analysed (repeatable) [default: the library's scanned
    /// folders].
    #[arg(long, value_name = "DIR")]
    root: Vec<PathBuf>,
    /// Fail a file as `truncated` when what decodes covers less than this share of the
    /// duration its header declares; above it, analyse it and flag it truncated.
    #[arg(long, value_name = "SHARE", default_value_t = sonoprint_engine::DEFAULT_MIN_COVERAGE,
          value_parser = crate::analyze::parse_min_coverage)]
    min_coverage: f64,
    /// Require `Authorization: Bearer <T>` on every request but /health [default:
    /// $SONOPRINT_TOKEN].
    #[arg(long, value_name = "T")]
    token: Option<String>,
}

pub fn run(args: Args, spec: &LibrarySpec) -> Result<ExitCode, String> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let token = args
        .token
        .or_else(|| std::env::var("SONOPRINT_TOKEN").ok())
        .filter(|t| !t.is_empty());
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let worker_exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the sonoprint executable: {e}"))?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let roots = args
        .root
        .iter()
        .map(|r| std::path::absolute(r).map_err(|e| format!("bad --root {}: {e}", r.display())))
        .collect::<Result<Vec<_>, _>>()?;
    sonoprint_server::run(sonoprint_server::Config {
        addr: SocketAddr::new(args.bind, args.port),
        library: spec.clone(),
        roots,
        jobs,
        max_queue: args.max_queue,
        timeout: Duration::from_secs_f64(args.timeout),
        token,
        worker_exe,
        min_coverage: args.min_coverage,
    })?;
    Ok(ExitCode::SUCCESS)
}
