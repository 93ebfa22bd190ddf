//! `sonoprint run`: fingerprint every track of the library that has no current fingerprint.
//!
//! Tracks are claimed from the database in small leased batches (several runners can share
//! one database), analysed by a pool of worker processes (a stuck or crashing decoder costs one
//! file, never the run), and written back in checked transactions. Any write error stops the
//! run with a non-zero exit: no result is ever dropped silently.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sonoprint_engine::Mode;
use sonoprint_store::{ClaimOptions, Job, Outcome, RunStatus, RunSummary, RunnerId, Store};

use crate::sysinfo;
use sonoprint_worker::{Pool, PoolConfig};

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
    /// Also retry files that failed before and have not changed since.
    #[arg(long)]
    retry_failed: bool,
    /// How long a claim holds before another runner may take the track over, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    lease: f64,
}

/// Results are written when this many are waiting, or every `FLUSH_EVERY`.
const BATCH: usize = 32;
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Counts {
    completed: u64,
    failed: u64,
    stale: u64,
    by_class: HashMap<String, u64>,
}

pub fn run(args: Args, db_path: &Path, log_dir: &Path) -> Result<ExitCode, String> {
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
    let lease = Duration::from_secs_f64(args.lease);
    let mut store = Store::open(db_path).map_err(|e| e.to_string())?;
    let claim_opts = ClaimOptions {
        retry_failed: args.retry_failed,
        mode,
    };
    // What this run would claim: with --retry-failed or --full that is more than `status`
    // calls pending.
    let pending = store.pending(&claim_opts).map_err(|e| e.to_string())?;
    let total = args.max_tracks.map_or(pending, |m| m.min(pending));
    if pending == 0 {
        println!(
            "Nothing to do: every present track has a current fingerprint or a recorded failure."
        );
        println!("(`sonoprint scan DIR` adds files; `--retry-failed` retries failures.)");
        return Ok(ExitCode::SUCCESS);
    }
    let runner = RunnerId::for_this_process();
    let run_id = store.begin_run(&runner, mode).map_err(|e| e.to_string())?;
    tracing::info!(
        runner = runner.as_str(),
        mode = mode.as_str(),
        jobs,
        timeout,
        pending,
        "run started"
    );

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

    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the sonoprint executable: {e}"))?;
    let pool = Pool::new(PoolConfig {
        jobs,
        mode,
        timeout: Duration::from_secs_f64(timeout),
        exe,
    });
    let started = Instant::now();
    let cpu0 = sysinfo::cpu_seconds().unwrap_or(0.0);
    let progress = Progress::new(args.watch, total);

    let mut in_flight: HashMap<u64, Job> = HashMap::new();
    let mut waiting: Vec<Outcome> = Vec::new();
    let mut counts = Counts::default();
    let mut claimed_total = 0u64;
    let mut exhausted = false;
    let mut last_flush = Instant::now();
    let mut last_renew = Instant::now();
    let mut next_id = 0u64;
    let mut error: Option<String> = None;

    loop {
        let stopping = interrupts.load(Ordering::SeqCst) > 0;
        // Keep every worker busy with one file in hand and one queued.
        let room = (2 * jobs).saturating_sub(in_flight.len());
        let budget = args
            .max_tracks
            .map_or(u64::MAX, |m| m.saturating_sub(claimed_total));
        if !stopping && !exhausted && room > 0 && budget > 0 {
            let want = room.min(budget.min(usize::MAX as u64) as usize);
            match store.claim(&runner, want, lease, &claim_opts) {
                Ok(jobs) => {
                    if jobs.is_empty() {
                        exhausted = true;
                    }
                    for job in jobs {
                        claimed_total += 1;
                        next_id += 1;
                        if !pool.submit(next_id, job.path.clone()) {
                            error = Some("the worker pool stopped unexpectedly".into());
                            break;
                        }
                        in_flight.insert(next_id, job);
                    }
                }
                Err(e) => error = Some(format!("cannot claim tracks: {e}")),
            }
        }
        if error.is_some() || (in_flight.is_empty() && (stopping || exhausted || budget == 0)) {
            break;
        }
        if let Some(done) = pool.next(Duration::from_millis(100)) {
            if let Some(job) = in_flight.remove(&done.id) {
                let computed_ms = done.elapsed.as_millis() as u64;
                waiting.push(match done.result {
                    Ok(analysis) => Outcome::Done { job, analysis, computed_ms },
                    Err(f) => {
                        tracing::warn!(path = %done.path.display(), class = f.class.as_str(), "failed: {}", f.message);
                        Outcome::Failed { job, class: f.class, message: f.message, decoders: f.decoders }
                    }
                });
            }
        }
        if waiting.len() >= BATCH || (!waiting.is_empty() && last_flush.elapsed() >= FLUSH_EVERY) {
            if let Err(e) = flush(&mut store, &runner, &mut waiting, &mut counts) {
                error = Some(e);
                break;
            }
            last_flush = Instant::now();
        }
        if last_renew.elapsed() >= lease / 3 {
            if let Err(e) = store.renew(&runner, lease) {
                error = Some(format!("cannot renew claims: {e}"));
                break;
            }
            last_renew = Instant::now();
        }
        progress.update(&counts, in_flight.len(), started);
    }
    if error.is_none() {
        if let Err(e) = flush(&mut store, &runner, &mut waiting, &mut counts) {
            error = Some(e);
        }
    }
    // Whatever is still claimed (interrupted, or an error) goes back to the pool of work.
    if let Err(e) = store.release(&runner) {
        tracing::error!("cannot release claims: {e}");
        if error.is_none() {
            error = Some(format!("cannot release claims: {e}"));
        }
    }
    pool.join();
    progress.finish();

    let wall = started.elapsed().as_secs_f64();
    let cpu = sysinfo::cpu_seconds().unwrap_or(0.0) - cpu0
        + sysinfo::children_cpu_seconds().unwrap_or(0.0);
    let status = if error.is_some() {
        RunStatus::Failed
    } else if interrupts.load(Ordering::SeqCst) > 0 {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    let summary = RunSummary {
        completed: counts.completed,
        failed: counts.failed,
        skipped: counts.stale,
        wall_sec: wall,
        cpu_sec: cpu,
        status,
    };
    if let Err(e) = store.finish_run(run_id, &summary) {
        tracing::error!("cannot record the run summary: {e}");
        error.get_or_insert(format!("cannot record the run summary: {e}"));
    }
    let text = summary_text(&counts, wall, cpu, status);
    println!("{text}");
    tracing::info!("run {}: {}", status.as_str(), text.replace('\n', "; "));
    match error {
        Some(e) => {
            tracing::error!("run failed: {e}");
            Err(format!("{e}\nThe results written before the error are kept; run `sonoprint run` again to continue."))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Writes the waiting results in one checked transaction.
fn flush(
    store: &mut Store,
    runner: &RunnerId,
    waiting: &mut Vec<Outcome>,
    counts: &mut Counts,
) -> Result<(), String> {
    if waiting.is_empty() {
        return Ok(());
    }
    let written = store.record(runner, waiting).map_err(|e| {
        format!(
            "cannot write {} results to the database: {e}",
            waiting.len()
        )
    })?;
    for o in waiting.iter() {
        if let Outcome::Failed { class, .. } = o {
            *counts
                .by_class
                .entry(class.as_str().to_string())
                .or_default() += 1;
        }
    }
    counts.completed += written.done;
    counts.failed += written.failed;
    counts.stale += written.stale;
    waiting.clear();
    Ok(())
}

fn summary_text(c: &Counts, wall: f64, cpu: f64, status: RunStatus) -> String {
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
    format!(
        "Run {}: {} completed, {} failed{by_class}, {} skipped (taken over by another runner)\n\
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

    fn update(&self, c: &Counts, processing: usize, started: Instant) {
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

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
