//! `sonoprint run`: fingerprint every track of the library that has no current fingerprint.
//!
//! Tracks are claimed from the database in small leased batches (several runners can share
//! one database), analysed by a pool of worker processes (a stuck or crashing decoder costs one
//! file, never the run), and written back in checked transactions. Any write error stops the
//! run with a non-zero exit: no result is ever dropped silently.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sonoprint_app::batch::{self, Observer, RunConfig, RunCounts};
use sonoprint_app::{Create, LibrarySpec};
use sonoprint_engine::Mode;
use sonoprint_store::RunSummary;

use crate::sysinfo;

#[derive(clap::Args)]
pub struct Args {
    /// Show a live progress bar (on a terminal; otherwise a line every 5 s).
    #[arg(long)]
    watch: bool,
    /// Stop after this many tracks (a quick trial run: `--max-tracks 10`).
    #[arg(long, value_name = "N")]
    max_tracks: Option<u64>,
    /// Worker processes [default: all cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Per-file time limit in seconds [default: 10, or 120 with --full].
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Analyse every sample instead of the excerpt plan.
    #[arg(long)]
    full: bool,
    /// Fail a file as `truncated` when what decodes covers less than this share of the
    /// duration its header declares; above it, analyse it and flag it truncated.
    #[arg(long, value_name = "SHARE", default_value_t = sonoprint_engine::DEFAULT_MIN_COVERAGE,
          value_parser = crate::analyze::parse_min_coverage)]
    min_coverage: f64,
    /// Also retry files that failed before and have not changed since.
    #[arg(long)]
    retry_failed: bool,
    /// How long a claim holds before another runner may take the track over, in seconds. A
    /// running runner renews its claims every third of it; a runner that dies or loses the
    /// database keeps its tracks this long before another machine takes them over.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    lease: f64,
    /// At the end, bring the similarity graph up to date (as `sonoprint graph` does).
    #[arg(long)]
    graph: bool,
}

const REPORT_EVERY: Duration = Duration::from_secs(5);

pub fn run(args: Args, spec: &LibrarySpec, log_dir: &Path) -> Result<ExitCode, String> {
    if let Err(e) = crate::logging::init(log_dir) {
        eprintln!("sonoprint: warning: {e}; continuing without a log file");
    }
    let mode = if args.full { Mode::Full } else { Mode::Excerpt };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let timeout = args.timeout.unwrap_or(if args.full { 120.0 } else { 10.0 });
    if !(timeout.is_finite() && timeout > 0.0 && args.lease.is_finite() && args.lease >= 1.0) {
        return Err("--timeout must be positive and --lease at least 1 second".into());
    }
    let cfg = RunConfig {
        jobs,
        mode,
        timeout: Duration::from_secs_f64(timeout),
        lease: Duration::from_secs_f64(args.lease),
        max_tracks: args.max_tracks,
        retry_failed: args.retry_failed,
        worker_exe: std::env::current_exe()
            .map_err(|e| format!("cannot find the sonoprint executable: {e}"))?,
        min_coverage: args.min_coverage,
    };
    let mut lib = sonoprint_app::open(spec, Create::IfMissing).map_err(|e| e.to_string())?;
    // What this run would claim: with --retry-failed or --full that is more than `status`
    // calls pending.
    let plan = batch::plan(lib.as_mut(), &cfg).map_err(|e| e.to_string())?;
    if plan.changed > 0 {
        println!(
            "{} files changed since they were fingerprinted: computing them again.",
            plan.changed
        );
    }
    if plan.pending == 0 {
        println!("Nothing to do: every track has a current fingerprint or a recorded failure.");
        if lib.catalog().is_some() {
            println!("(`sonoprint scan DIR` adds files; `--retry-failed` retries failures.)");
        } else {
            println!("(`--retry-failed` retries failures.)");
        }
        drop(lib);
        if args.graph {
            crate::similar::graph_after_run(spec)?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let interrupts = Arc::new(AtomicUsize::new(0));
    {
        let interrupts = Arc::clone(&interrupts);
        // Second Ctrl-C: leave at once. SQLite's journal keeps the database consistent, and
        // the claims of a dead process are free for the next run straight away.
        let handler = ctrlc::set_handler(move || {
            if interrupts.fetch_add(1, Ordering::SeqCst) >= 1 {
                eprintln!("\nsonoprint: stopped at once; results in flight are left unclaimed");
                std::process::exit(130);
            }
            eprintln!("\nsonoprint: stopping: finishing the files in flight (Ctrl-C again to quit at once)");
        });
        // Without the handler Ctrl-C still stops the run at once, which is safe (the next run
        // reclaims a dead runner's tracks), only less tidy: say so and carry on.
        if let Err(e) = handler {
            eprintln!(
                "sonoprint: warning: cannot catch Ctrl-C ({e}); it will stop the run at once"
            );
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
    }

    let progress = Progress::new(args.watch, plan.total);
    let cpu =
        || sysinfo::cpu_seconds().unwrap_or(0.0) + sysinfo::children_cpu_seconds().unwrap_or(0.0);
    let report =
        batch::run(lib.as_mut(), &cfg, &interrupts, &progress, &cpu).map_err(|e| e.to_string())?;
    progress.finish();
    let text = summary_text(&report.counts, &report.summary);
    println!("{text}");
    tracing::info!(
        "run {}: {}",
        report.summary.status.as_str(),
        text.replace('\n', "; ")
    );
    match report.error {
        Some(e) => Err(format!(
            "{e}\nThe results written before the error are kept; run `sonoprint run` again to continue."
        )),
        None => {
            drop(lib);
            if args.graph && report.summary.status == sonoprint_store::RunStatus::Finished {
                crate::similar::graph_after_run(spec)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn summary_text(c: &RunCounts, s: &RunSummary) -> String {
    let (wall, cpu, status) = (s.wall_sec, s.cpu_sec, s.status);
    let n = c.completed + c.failed;
    let mut classes: Vec<_> = c.by_class.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let by_class = if classes.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            classes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let not_here = if c.not_here > 0 {
        format!(
            ", {} not found here under the path map (io on this machine; left for other machines)",
            c.not_here
        )
    } else {
        String::new()
    };
    format!(
        "Run {}: {} completed, {} failed{by_class}, {} skipped (taken over by another runner){not_here}\n\
         Wall time {}, {:.3} CPU-s per track, {:.2} tracks/s",
        status.as_str(),
        c.completed,
        c.failed,
        c.stale,
        clock(wall),
        cpu / n.max(1) as f64,
        n as f64 / wall.max(1e-9)
    )
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// A live bar on a terminal with `--watch`, otherwise a line every 5 s.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(watch: bool, total: u64) -> Progress {
        let bar = (watch && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} ({percent}%) {msg} ETA {eta}")
            {
                b.set_style(style);
            }
            b
        });
        Progress {
            bar,
            total,
            last: std::cell::Cell::new(Instant::now()),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn progress(&self, c: &RunCounts, processing: usize, started: Instant) {
        let done = c.completed + c.failed;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("| failed {} | {rate:.2} tracks/s", c.failed));
            return;
        }
        if self.last.get().elapsed() < REPORT_EVERY {
            return;
        }
        self.last.set(Instant::now());
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            clock(left as f64 / rate)
        } else {
            "-".into()
        };
        eprintln!(
            "Progress: {done}/{} ({:.1}%) | Completed: {} | Failed: {} | Processing: {processing} | Rate: {rate:.2} tracks/s | ETA: {eta}",
            self.total,
            100.0 * done as f64 / self.total.max(1) as f64,
            c.completed,
            c.failed
        );
    }
}
