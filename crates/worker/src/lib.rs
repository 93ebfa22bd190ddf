//! A pool of analysis worker processes. A decoder that loops for ever or crashes the process
//! cannot be stopped from inside a thread, so each analysis runs in a `sonoprint worker`
//! subprocess: past its time limit the process is killed and replaced, and a crash costs only
//! the file in flight. Results come back as JSON lines on the worker's stdout.
//!
//! Two ways to use it: a batch caller ([`Pool::submit`] then [`Pool::next`]) gets results in
//! completion order on one channel; a request/response caller (the HTTP server) calls
//! [`Pool::analyze`], which blocks until that file's own result (from a thread where blocking is
//! allowed, e.g. `tokio::task::spawn_blocking`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sonoprint_engine::{Analysis, AnalysisError, ErrorClass, Mode};

/// One request to a worker.
#[derive(Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub path: PathBuf,
    pub mode: Mode,
    /// Share of its declared duration a file must decode (`Options::min_coverage`).
    #[serde(default = "default_min_coverage")]
    pub min_coverage: f64,
}

fn default_min_coverage() -> f64 {
    sonoprint_engine::DEFAULT_MIN_COVERAGE
}

/// A worker's answer.
#[derive(Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

#[derive(Serialize, Deserialize)]
pub struct WireError {
    pub class: ErrorClass,
    pub message: String,
    pub decoders_tried: Vec<String>,
}

/// A finished task, as the pool hands it back.
pub struct Done {
    pub id: u64,
    pub path: PathBuf,
    pub result: Result<Analysis, Failure>,
    /// Wall time the worker spent on it.
    pub elapsed: Duration,
}

/// A failed analysis: class, message, and the decoders that were tried.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: ErrorClass,
    pub message: String,
    pub decoders: Vec<String>,
}

impl From<AnalysisError> for Failure {
    fn from(e: AnalysisError) -> Self {
        Failure {
            class: e.class,
            message: e.message,
            decoders: e.decoders_tried.iter().map(|s| s.to_string()).collect(),
        }
    }
}

struct Task {
    id: u64,
    path: PathBuf,
    mode: Mode,
    /// Where the result goes: this task's own channel, or the pool's shared one.
    reply: Option<Sender<Done>>,
}

pub struct Pool {
    tasks: Option<Sender<Task>>,
    mode: Mode,
    /// Ids for [`Pool::analyze`], starting far above any id a batch caller uses.
    next_id: AtomicU64,
    /// Behind a lock only so that the pool can be shared between threads.
    done: Mutex<Receiver<Done>>,
    handles: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
pub struct PoolConfig {
    pub jobs: usize,
    pub mode: Mode,
    pub timeout: Duration,
    /// The executable to run as `EXE worker` (normally this very binary).
    pub exe: PathBuf,
    /// Share of its declared duration a file must decode (`Options::min_coverage`).
    pub min_coverage: f64,
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Pool {
        let (task_tx, task_rx) = mpsc::channel::<Task>();
        let task_rx = Arc::new(Mutex::new(task_rx));
        let (done_tx, done) = mpsc::channel();
        let handles = (0..cfg.jobs.max(1))
            .map(|i| {
                let (rx, tx, cfg) = (Arc::clone(&task_rx), done_tx.clone(), cfg.clone());
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || manage(cfg, rx, tx))
            })
            .filter_map(Result::ok)
            .collect();
        Pool {
            tasks: Some(task_tx),
            mode: cfg.mode,
            next_id: AtomicU64::new(1 << 62),
            done: Mutex::new(done),
            handles,
        }
    }

    /// Queues a file. Returns false when the pool has shut down.
    pub fn submit(&self, id: u64, path: PathBuf) -> bool {
        let task = Task {
            id,
            path,
            mode: self.mode,
            reply: None,
        };
        self.tasks.as_ref().is_some_and(|t| t.send(task).is_ok())
    }

    /// Analyses one file in `mode` and waits for its result (never mixed with the results of
    /// [`Pool::submit`]). Blocks: call it from a thread that may block. The wait is bounded by
    /// the queue ahead of it plus the pool's per-file time limit.
    pub fn analyze(&self, path: &Path, mode: Mode) -> Done {
        let (tx, rx) = mpsc::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let task = Task {
            id,
            path: path.to_path_buf(),
            mode,
            reply: Some(tx),
        };
        let gone = |message: &str| Done {
            id,
            path: path.to_path_buf(),
            result: Err(Failure {
                class: ErrorClass::Io,
                message: message.to_string(),
                decoders: Vec::new(),
            }),
            elapsed: Duration::ZERO,
        };
        if self.tasks.as_ref().is_none_or(|t| t.send(task).is_err()) {
            return gone("the worker pool has shut down");
        }
        rx.recv()
            .unwrap_or_else(|_| gone("the worker pool stopped before answering"))
    }

    /// The next finished task, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<Done> {
        self.done.lock().ok()?.recv_timeout(wait).ok()
    }

    /// Stops taking tasks; workers finish what they hold, then exit.
    pub fn close(&mut self) {
        self.tasks = None;
    }

    pub fn join(mut self) {
        self.close();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One worker process and the thread that reads its answers.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Worker {
    fn spawn(cfg: &PoolConfig) -> std::io::Result<Worker> {
        let mut cmd = Command::new(&cfg.exe);
        // Its own process group: a Ctrl-C at the terminal stops the runner, which then decides
        // what happens to the work in flight, instead of killing every worker mid-file.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("worker has no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("worker has no stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
        })
    }

    fn kill(mut self) {
        kill_group(&mut self.child);
        let _ = self.child.wait();
    }
}

/// Kills a worker and everything it started. The worker leads its own process group, and the
/// decoder subprocesses it runs (ffmpeg, ffprobe) are in it: killing only the worker would leave
/// a decoder stuck in an endless loop running for ever, its watchdog gone with the worker.
/// Call it before the worker is reaped (`wait`): until then its pid, which is the group's id,
/// cannot be reused.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        if pid > 0 {
            // SAFETY: kill(2) takes no pointers; a negative pid names the process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
}

fn manage(cfg: PoolConfig, tasks: Arc<Mutex<Receiver<Task>>>, done: Sender<Done>) {
    let mut worker: Option<Worker> = None;
    loop {
        let task = match tasks.lock() {
            Ok(rx) => match rx.recv() {
                Ok(t) => t,
                Err(_) => break,
            },
            Err(_) => break,
        };
        let started = Instant::now();
        let result = run_one(&cfg, &mut worker, &task);
        let d = Done {
            id: task.id,
            path: task.path,
            result,
            elapsed: started.elapsed(),
        };
        match task.reply {
            // The caller may have given up waiting: that is no reason to stop the worker.
            Some(reply) => {
                let _ = reply.send(d);
            }
            None => {
                if done.send(d).is_err() {
                    break;
                }
            }
        }
    }
    if let Some(mut w) = worker.take() {
        // Closing stdin ends the worker's loop; kill in case it is stuck.
        drop(w.stdin);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = w.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(&mut w.child);
        let _ = w.child.wait();
    }
}

/// Sends `line` to the worker in `slot`, starting one if there is none.
fn send(cfg: &PoolConfig, slot: &mut Option<Worker>, line: &str) -> std::io::Result<()> {
    if slot.is_none() {
        *slot = Some(Worker::spawn(cfg)?);
    }
    let w = slot
        .as_mut()
        .ok_or_else(|| std::io::Error::other("no worker process"))?;
    writeln!(w.stdin, "{line}").and_then(|_| w.stdin.flush())
}

fn run_one(cfg: &PoolConfig, slot: &mut Option<Worker>, task: &Task) -> Result<Analysis, Failure> {
    let fail = |class, message: String| Failure {
        class,
        message,
        decoders: Vec::new(),
    };
    let req = Request {
        id: task.id,
        path: task.path.clone(),
        mode: task.mode,
        min_coverage: cfg.min_coverage,
    };
    let line = serde_json::to_string(&req)
        .map_err(|e| fail(ErrorClass::Io, format!("cannot encode request: {e}")))?;
    if send(cfg, slot, &line).is_err() {
        // The worker died between tasks (or never started): replace it and try once more.
        if let Some(w) = slot.take() {
            w.kill();
        }
        send(cfg, slot, &line).map_err(|e| {
            fail(
                ErrorClass::Io,
                format!("cannot start or reach a worker process: {e}"),
            )
        })?;
    }
    let deadline = Instant::now() + cfg.timeout;
    loop {
        let Some(w) = slot.as_mut() else {
            return Err(fail(ErrorClass::Io, "no worker process".into()));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match w.lines.recv_timeout(left) {
            Ok(l) => {
                let Ok(resp) = serde_json::from_str::<Response>(&l) else {
                    continue;
                };
                if resp.id != task.id {
                    continue; // a stale answer from before a restart
                }
                return match (resp.analysis, resp.error) {
                    (Some(a), _) => Ok(a),
                    (None, Some(e)) => Err(Failure {
                        class: e.class,
                        message: e.message,
                        decoders: e.decoders_tried,
                    }),
                    (None, None) => Err(fail(
                        ErrorClass::Io,
                        "the worker sent an empty answer".into(),
                    )),
                };
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(w) = slot.take() {
                    w.kill();
                }
                return Err(fail(
                    ErrorClass::Timeout,
                    format!(
                        "analysis did not finish within {:.0} s and was stopped; the file may be damaged (raise --timeout for very long files)",
                        cfg.timeout.as_secs_f64()
                    ),
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = slot.take().map(|mut w| {
                    // Whatever decoder it had started dies with it.
                    kill_group(&mut w.child);
                    let s = w.child.wait().ok();
                    s.map(|s| s.to_string())
                        .unwrap_or_else(|| "unknown status".into())
                });
                return Err(fail(
                    ErrorClass::Panic,
                    format!(
                        "the worker process died while decoding this file ({}); please report the file",
                        status.unwrap_or_default()
                    ),
                ));
            }
        }
    }
}

/// `sonoprint worker`: reads requests from stdin, answers on stdout, until stdin closes.
pub fn worker_main() -> std::process::ExitCode {
    // A panic is reported as the file's failure; the default hook would only add noise.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(req) = serde_json::from_str::<Request>(&line) else {
            continue;
        };
        let resp = answer(&req, req.id);
        let Ok(text) = serde_json::to_string(&resp) else {
            continue;
        };
        if writeln!(stdout, "{text}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

fn answer(req: &Request, id: u64) -> Response {
    let path = req.path.as_path();
    let opts = sonoprint_engine::Options {
        mode: req.mode,
        min_coverage: req.min_coverage,
        ..Default::default()
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sonoprint_engine::analyze_file(path, &opts)
    }));
    let err = |class, message: String, decoders_tried| Response {
        id,
        analysis: None,
        error: Some(WireError {
            class,
            message,
            decoders_tried,
        }),
    };
    match r {
        Ok(Ok(a)) => Response {
            id,
            analysis: Some(a),
            error: None,
        },
        Ok(Err(e)) => err(
            e.class,
            e.message,
            e.decoders_tried.iter().map(|s| s.to_string()).collect(),
        ),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            err(
                ErrorClass::Panic,
                format!("the decoder or analyser panicked: {what}; please report this file"),
                Vec::new(),
            )
        }
    }
}
