//! Load run against a running `sonoprint serve`: many concurrent clients post good, broken and
//! missing files to `POST /fingerprint` for a fixed time, then the figures are printed.
//!
//! ```text
//! cargo run --release --example load -- URL GOOD_DIR [BROKEN_DIR]
//!     [--duration SECS (30)] [--clients N (32)] [--pid PID] [--seed N]
//! ```
//!
//! Only a loopback URL is accepted. With `--pid`, the server's resident memory (VmRSS) is sampled
//! once a second. For a fair throughput figure the server must not answer good files from its
//! library: start it with a fresh `--data-dir` and `--root` over the corpus; the `cached` answers
//! are counted and reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A client never sends more than this many requests, whatever the duration.
const MAX_REQUESTS_PER_CLIENT: u64 = 1_000_000;
/// The longest a single request may take (the server's own limit is 30 s by default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a client backs off after a 503.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Args {
    url: String,
    good: PathBuf,
    broken: Option<PathBuf>,
    duration: Duration,
    clients: usize,
    pid: Option<u32>,
    seed: u64,
}

fn usage() -> String {
    "usage: load URL GOOD_DIR [BROKEN_DIR] [--duration SECS] [--clients N] [--pid PID] [--seed N]"
        .into()
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut duration, mut clients, mut pid, mut seed) = (30.0_f64, 32_usize, None, 0x5eed_u64);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--duration" => {
                duration = value("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?
            }
            "--clients" => {
                clients = value("--clients")?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            "--pid" => pid = Some(value("--pid")?.parse().map_err(|e| format!("--pid: {e}"))?),
            "--seed" => {
                seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "-h" | "--help" => return Err(usage()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{}", usage())),
            _ => positional.push(a),
        }
    }
    if !(duration.is_finite() && duration > 0.0 && duration <= 3600.0) {
        return Err("--duration must be between 0 and 3600 seconds".into());
    }
    if !(1..=1024).contains(&clients) {
        return Err("--clients must be between 1 and 1024".into());
    }
    let mut p = positional.into_iter();
    let (Some(url), Some(good)) = (p.next(), p.next()) else {
        return Err(usage());
    };
    let broken = p.next().map(PathBuf::from);
    if p.next().is_some() {
        return Err(usage());
    }
    Ok(Args {
        url: loopback(&url)?,
        good: PathBuf::from(good),
        broken,
        duration: Duration::from_secs_f64(duration),
        clients,
        pid,
        seed,
    })
}

/// The URL without a trailing slash, if it is plain HTTP to a loopback address.
fn loopback(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(h) = authority.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let is_loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !is_loopback {
        return Err(format!(
            "{url}: the load tool only targets loopback addresses"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The entries of a folder (not recursive), sorted so that a seed picks the same files.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// splitmix64: small, fixed-seed, good enough to pick files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Good,
    Broken,
    Missing,
}

struct Sample {
    kind: Kind,
    /// HTTP status, or 0 for a transport error.
    status: u16,
    latency: Duration,
    /// Answered before the deadline.
    in_window: bool,
    cached: bool,
}

fn client(
    id: usize,
    args: &Args,
    good: &[PathBuf],
    broken: &[PathBuf],
    deadline: Instant,
) -> (Vec<Sample>, BTreeMap<String, u64>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    let mut rng = Rng(args.seed ^ (id as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut samples = Vec::new();
    let mut errors = BTreeMap::new();
    let url = format!("{}/fingerprint", args.url);
    let mut n = 0;
    while Instant::now() < deadline && n < MAX_REQUESTS_PER_CLIENT {
        n += 1;
        let roll = rng.below(100);
        let (kind, path) = if roll < 80 || (broken.is_empty() && roll < 90) {
            (Kind::Good, good[rng.below(good.len())].clone())
        } else if roll < 90 {
            (Kind::Broken, broken[rng.below(broken.len())].clone())
        } else {
            let missing = args.good.join(format!("missing-{id}-{n}.flac"));
            (Kind::Missing, missing)
        };
        let body = json!({"track_id": n, "filepath": path}).to_string();
        let started = Instant::now();
        let result = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.as_str());
        let (status, cached, retry_after) = match result {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok());
                let text = r.body_mut().read_to_string().unwrap_or_default();
                let cached = status == 200
                    && serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["cached"].as_bool())
                        .unwrap_or(false);
                (status, cached, retry_after)
            }
            Err(e) => {
                *errors.entry(e.to_string()).or_insert(0) += 1;
                (0, false, None)
            }
        };
        samples.push(Sample {
            kind,
            status,
            latency: started.elapsed(),
            in_window: Instant::now() <= deadline,
            cached,
        });
        // Back off as told after a 503 (and a little after a transport error), never past the
        // deadline.
        let pause = match (status, retry_after) {
            (503, Some(s)) if s.is_finite() && s > 0.0 => {
                Duration::from_secs_f64(s).min(MAX_BACKOFF)
            }
            (503, _) | (0, _) => Duration::from_millis(100),
            _ => Duration::ZERO,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        thread::sleep(pause.min(left));
    }
    (samples, errors)
}

/// A process's resident set in KiB, from /proc/<pid>/status.
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The direct children of a process (the server's analysis worker processes).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut v: Vec<u32> = tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The server's resident set and that of its worker processes, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let server = vm_rss(pid)?;
    let workers = children(pid).into_iter().filter_map(vm_rss).sum();
    Some((server, workers))
}

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn run(args: Args) -> Result<bool, String> {
    let good = entries(&args.good)?
        .into_iter()
        .filter(|p| p.is_file())
        .collect::<Vec<_>>();
    if good.is_empty() {
        return Err(format!("{}: no files", args.good.display()));
    }
    let broken = match &args.broken {
        Some(d) => entries(d)?,
        None => Vec::new(),
    };
    // The server must answer before the clock starts.
    let health = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
        .get(format!("{}/health", args.url))
        .call()
        .map_err(|e| format!("{}/health: {e}", args.url))?;
    if health.status() != 200 {
        return Err(format!("{}/health: status {}", args.url, health.status()));
    }
    println!(
        "load: {} clients for {:.0} s against {} ({} good files, {} broken, seed {})",
        args.clients,
        args.duration.as_secs_f64(),
        args.url,
        good.len(),
        broken.len(),
        args.seed
    );

    let args = Arc::new(args);
    let (good, broken) = (Arc::new(good), Arc::new(broken));
    let started = Instant::now();
    let deadline = started + args.duration;

    let done = Arc::new(AtomicBool::new(false));
    let sampler = args.pid.map(|pid| {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut rss = Vec::new();
            // Bounded: one sample a second, at most an hour and a bit.
            for _ in 0..4000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                match rss_kib(pid) {
                    Some(k) => rss.push(k),
                    None => break,
                }
                thread::sleep(Duration::from_secs(1));
            }
            if let Some(k) = rss_kib(pid) {
                rss.push(k);
            }
            rss
        })
    });

    let handles: Vec<_> = (0..args.clients)
        .map(|id| {
            let (args, good, broken) = (Arc::clone(&args), Arc::clone(&good), Arc::clone(&broken));
            thread::spawn(move || client(id, &args, &good, &broken, deadline))
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for h in handles {
        let (s, e) = h.join().map_err(|_| "a client thread panicked")?;
        samples.extend(s);
        for (k, v) in e {
            *errors.entry(k).or_insert(0) += v;
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let rss = match sampler {
        Some(h) => h.join().map_err(|_| "the memory sampler panicked")?,
        None => Vec::new(),
    };

    let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<(Kind, u16), u64> = BTreeMap::new();
    for s in &samples {
        *by_status.entry(s.status).or_insert(0) += 1;
        *by_kind.entry((s.kind, s.status)).or_insert(0) += 1;
    }
    let unexpected_5xx: u64 = by_status
        .iter()
        .filter(|(s, _)| (500..600).contains(*s) && **s != 503 && **s != 504)
        .map(|(_, n)| n)
        .sum();
    let mut ok: Vec<Duration> = samples
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.latency)
        .collect();
    ok.sort();
    let good_ok = samples
        .iter()
        .filter(|s| s.status == 200 && s.kind == Kind::Good)
        .count();
    let good_ok_in_window = samples
        .iter()
        .filter(|s| s.status == 200 && s.kind == Kind::Good && s.in_window)
        .count();
    let cached = samples.iter().filter(|s| s.cached).count();
    let secs = elapsed.as_secs_f64();

    println!(
        "wall time: {secs:.1} s (deadline {:.0} s; in-flight requests finish after it)",
        args.duration.as_secs_f64()
    );
    println!(
        "requests: {} ({:.1}/s)",
        samples.len(),
        samples.len() as f64 / secs
    );
    let statuses: Vec<String> = by_status
        .iter()
        .map(|(s, n)| match s {
            0 => format!("transport error {n}"),
            s => format!("{s}: {n}"),
        })
        .collect();
    println!("by status: {}", statuses.join(", "));
    for kind in [Kind::Good, Kind::Broken, Kind::Missing] {
        let row: Vec<String> = by_kind
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, s), n)| format!("{s}: {n}"))
            .collect();
        println!(
            "  {:<8} {}",
            format!("{kind:?}").to_lowercase(),
            row.join(", ")
        );
    }
    for (e, n) in &errors {
        println!("  transport error x{n}: {e}");
    }
    println!("unexpected 5xx (not 503/504): {unexpected_5xx}");
    println!("cached answers: {cached} (should be 0 for a fair throughput figure)");
    println!(
        "good-file throughput: {good_ok} good files answered 200 in {secs:.1} s = {:.2} files/s",
        good_ok as f64 / secs
    );
    println!(
        "  (answered before the deadline: {good_ok_in_window} in {:.0} s = {:.2} files/s)",
        args.duration.as_secs_f64(),
        good_ok_in_window as f64 / args.duration.as_secs_f64()
    );
    println!(
        "latency of 200s: p50 {}, p99 {}, max {}",
        ms(percentile(&ok, 50.0)),
        ms(percentile(&ok, 99.0)),
        ms(ok.last().copied())
    );
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let max = |f: fn(&(u64, u64)) -> u64| rss.iter().map(f).max().unwrap_or(0);
        println!(
            "server RSS ({} samples, 1/s): first {}, max {}, last {}",
            rss.len(),
            mib(first.0),
            mib(max(|r| r.0)),
            mib(last.0)
        );
        println!(
            "worker processes RSS (sum): first {}, max {}, last {}",
            mib(first.1),
            mib(max(|r| r.1)),
            mib(last.1)
        );
        println!(
            "server + workers RSS: first {}, max {}, last {}",
            mib(first.0 + first.1),
            mib(max(|r| r.0 + r.1)),
            mib(last.0 + last.1)
        );
    } else if args.pid.is_some() {
        println!("server RSS: could not read /proc/<pid>/status");
    }
    Ok(unexpected_5xx == 0 && errors.is_empty())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(2)
        }
    }
}
