//! The batch run: fingerprint every track of a library that has no current fingerprint.
//!
//! Tracks are claimed from the library in small leased batches (several runners can share one
//! database), analysed by a pool of worker processes (a stuck or crashing decoder costs one
//! file, never the run), and written back in checked transactions. Any write error stops the
//! run with an error: no result is ever dropped silently.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sonoprint_core::Mode;
use sonoprint_store::{
    ClaimOptions, Job, Library, Outcome, RunId, RunStatus, RunSummary, RunnerId,
};
use sonoprint_worker::{Pool, PoolConfig};

use crate::AppError;

/// How long a run keeps retrying a claim, renewal or write that found the database locked by
/// another program (the Auralis player) for longer than the busy timeout, before it stops
/// with the error.
const BUSY_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `op` until it succeeds, fails with anything but "database busy", or `patience` has
/// passed; waits a little longer after each busy answer. A busy answer wrote nothing (the
/// transaction was rolled back), so repeating the call is safe.
pub fn retry_busy<T>(
    what: &str,
    patience: Duration,
    mut op: impl FnMut() -> Result<T, sonoprint_store::StoreError>,
) -> Result<T, sonoprint_store::StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        match op() {
            Err(e) if e.is_busy() && started.elapsed() + pause < patience => {
                tracing::warn!("{what}: the database is busy ({e}); trying again in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Results are written when this many are waiting, or every `FLUSH_EVERY`.
const BATCH: usize = 32;
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Worker processes.
    pub jobs: usize,
    pub mode: Mode,
    /// Per-file time limit.
    pub timeout: Duration,
    /// How long a claim holds before another runner may take the track over.
    pub lease: Duration,
    /// Stop after this many tracks.
    pub max_tracks: Option<u64>,
    /// Also retry files that failed before and have not changed since.
    pub retry_failed: bool,
    /// The executable run as `EXE worker` (the `sonoprint` binary).
    pub worker_exe: PathBuf,
    /// Share of its declared duration a file must decode to be fingerprinted.
    pub min_coverage: f64,
}

impl RunConfig {
    fn claim_options(&self) -> ClaimOptions {
        ClaimOptions {
            retry_failed: self.retry_failed,
            mode: self.mode,
        }
    }
}

/// The totals of a run so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub completed: u64,
    pub failed: u64,
    /// Results not written because another runner had taken the track over.
    pub stale: u64,
    /// Claimed files not readable on this machine under the path map, handed back for another
    /// machine (not failures of the tracks).
    pub not_here: u64,
    pub by_class: BTreeMap<String, u64>,
}

/// Told how a run goes (the CLI's progress bar or log lines).
pub trait Observer {
    /// Called often (every ~100 ms); `in_flight` files are being analysed.
    fn progress(&self, counts: &RunCounts, in_flight: usize, started: Instant);
}

/// The work a run would do, before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Files found changed since the library last saw them.
    pub changed: u64,
    /// What the run's claim options pick.
    pub pending: u64,
    /// What this run will do (`pending`, or fewer with `max_tracks`).
    pub total: u64,
}

/// Brings the library's view of its files up to date and counts the work.
pub fn plan(lib: &mut dyn Library, cfg: &RunConfig) -> Result<Plan, AppError> {
    let changed = lib.prepare_run()?;
    let pending = lib.pending(&cfg.claim_options())?;
    Ok(Plan {
        changed,
        pending,
        total: cfg.max_tracks.map_or(pending, |m| m.min(pending)),
    })
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run: RunId,
    pub summary: RunSummary,
    pub counts: RunCounts,
    /// Why the run stopped early, when it did (the results written before are kept).
    pub error: Option<String>,
}

/// Runs the batch until the work is done, `max_tracks` is reached, `stop` is raised (Ctrl-C:
/// the files in flight are finished and recorded, the rest handed back), or a write fails.
/// `cpu_seconds` measures the CPU time of this process and its finished children.
pub fn run(
    lib: &mut dyn Library,
    cfg: &RunConfig,
    stop: &AtomicUsize,
    observer: &dyn Observer,
    cpu_seconds: &dyn Fn() -> f64,
) -> Result<RunReport, AppError> {
    let claim_opts = cfg.claim_options();
    let jobs = cfg.jobs.max(1);
    let runner = RunnerId::for_this_process();
    let run_id = lib.begin_run(&runner, cfg.mode)?;
    tracing::info!(
        runner = runner.as_str(),
        mode = cfg.mode.as_str(),
        jobs,
        timeout = cfg.timeout.as_secs_f64(),
        library = %lib.location().display(),
        "run started"
    );
    let pool = Pool::new(PoolConfig {
        jobs,
        mode: cfg.mode,
        timeout: cfg.timeout,
        exe: cfg.worker_exe.clone(),
        min_coverage: cfg.min_coverage,
    });
    let started = Instant::now();
    let cpu0 = cpu_seconds();

    let mut in_flight: HashMap<u64, Job> = HashMap::new();
    let mut waiting: Vec<Outcome> = Vec::new();
    let mut counts = RunCounts::default();
    let mut claimed_total = 0u64;
    let mut exhausted = false;
    let mut last_flush = Instant::now();
    let mut last_renew = Instant::now();
    let mut next_id = 0u64;
    let mut error: Option<String> = None;

    loop {
        let stopping = stop.load(Ordering::SeqCst) > 0;
        // Keep every worker busy with one file in hand and one queued.
        let room = (2 * jobs).saturating_sub(in_flight.len());
        let budget = cfg
            .max_tracks
            .map_or(u64::MAX, |m| m.saturating_sub(claimed_total));
        if !stopping && !exhausted && room > 0 && budget > 0 {
            let want = room.min(budget.min(usize::MAX as u64) as usize);
            match retry_busy("claim tracks", BUSY_PATIENCE, || {
                lib.claim(&runner, want, cfg.lease, &claim_opts)
            }) {
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
                    Ok(analysis) => Outcome::Done {
                        job,
                        analysis,
                        computed_ms,
                    },
                    Err(f) => {
                        tracing::warn!(path = %done.path.display(), class = f.class.as_str(), "failed: {}", f.message);
                        Outcome::Failed {
                            job,
                            class: f.class,
                            message: f.message,
                            decoders: f.decoders,
                        }
                    }
                });
            }
        }
        if waiting.len() >= BATCH || (!waiting.is_empty() && last_flush.elapsed() >= FLUSH_EVERY) {
            if let Err(e) = flush(lib, &runner, &mut waiting, &mut counts) {
                error = Some(e);
                break;
            }
            last_flush = Instant::now();
        }
        if last_renew.elapsed() >= cfg.lease / 3 {
            if let Err(e) = retry_busy("renew claims", BUSY_PATIENCE, || {
                lib.renew(&runner, cfg.lease)
            }) {
                error = Some(format!("cannot renew claims: {e}"));
                break;
            }
            last_renew = Instant::now();
        }
        counts.not_here = lib.not_here();
        observer.progress(&counts, in_flight.len(), started);
    }
    counts.not_here = lib.not_here();
    if error.is_none() {
        if let Err(e) = flush(lib, &runner, &mut waiting, &mut counts) {
            error = Some(e);
        }
    }
    // Whatever is still claimed (interrupted, or an error) goes back to the pool of work.
    if let Err(e) = lib.release(&runner) {
        tracing::error!("cannot release claims: {e}");
        error.get_or_insert(format!("cannot release claims: {e}"));
    }
    pool.join();
    observer.progress(&counts, 0, started);

    let status = if error.is_some() {
        RunStatus::Failed
    } else if stop.load(Ordering::SeqCst) > 0 {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    let summary = RunSummary {
        completed: counts.completed,
        failed: counts.failed,
        skipped: counts.stale,
        wall_sec: started.elapsed().as_secs_f64(),
        cpu_sec: cpu_seconds() - cpu0,
        status,
    };
    if let Err(e) = lib.finish_run(run_id, &summary) {
        tracing::error!("cannot record the run summary: {e}");
        error.get_or_insert(format!("cannot record the run summary: {e}"));
    }
    if let Some(e) = &error {
        tracing::error!("run failed: {e}");
    }
    Ok(RunReport {
        run: run_id,
        summary,
        counts,
        error,
    })
}

/// Writes the waiting results in one checked transaction.
fn flush(
    lib: &mut dyn Library,
    runner: &RunnerId,
    waiting: &mut Vec<Outcome>,
    counts: &mut RunCounts,
) -> Result<(), String> {
    if waiting.is_empty() {
        return Ok(());
    }
    let written = retry_busy("write results", BUSY_PATIENCE, || {
        lib.record(runner, waiting)
    })
    .map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sonoprint_store::StoreError;

    fn busy() -> StoreError {
        StoreError::Sqlite {
            op: "write results",
            track: None,
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ),
        }
    }

    #[test]
    fn busy_answers_are_retried_other_errors_are_not() {
        let mut calls = 0;
        let r = retry_busy("test", Duration::from_secs(30), || {
            calls += 1;
            if calls < 3 {
                Err(busy())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<(), _> = retry_busy("test", Duration::from_secs(30), || {
            calls += 1;
            Err(StoreError::Invalid("broken".into()))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);

        // Past its patience the busy error comes back to the caller.
        let started = Instant::now();
        let r: Result<(), _> = retry_busy("test", Duration::from_millis(500), || Err(busy()));
        assert!(r.unwrap_err().is_busy());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
