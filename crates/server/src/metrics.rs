//! `/metrics` in the Prometheus text format, counted by hand: a few counters and one histogram.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the analysis latency buckets, seconds.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<Histogram>,
    failures: Mutex<BTreeMap<String, u64>>,
    pub computed: AtomicU64,
    pub cached: AtomicU64,
    pub rejected: AtomicU64,
    pub store_errors: AtomicU64,
}

impl Metrics {
    pub fn observe_analysis(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut h) = self.latency.lock() {
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub fn failure(&self, class: &str) {
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(class.to_string()).or_default() += 1;
        }
    }

    fn request(&self, route: String, status: u16) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status)).or_default() += 1;
        }
    }

    /// The text exposition, with the gauges read from the admission state.
    pub fn render(&self, queued: usize, busy: usize, workers: usize, uptime: Duration) -> String {
        let mut s = String::new();
        // Formatting into a String cannot fail; the Result only carries fmt::Write's signature.
        if let Err(e) = self.write_exposition(&mut s, queued, busy, workers, uptime) {
            tracing::error!("cannot render /metrics: {e}");
        }
        s
    }

    fn write_exposition(
        &self,
        s: &mut String,
        queued: usize,
        busy: usize,
        workers: usize,
        uptime: Duration,
    ) -> std::fmt::Result {
        writeln!(
            s,
            "# HELP sonoprint_http_requests_total HTTP requests by route and status."
        )?;
        writeln!(s, "# TYPE sonoprint_http_requests_total counter")?;
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                writeln!(
                    s,
                    "sonoprint_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                )?;
            }
        }
        writeln!(
            s,
            "# HELP sonoprint_analysis_duration_seconds Wall time of analyses run by the workers."
        )?;
        writeln!(s, "# TYPE sonoprint_analysis_duration_seconds histogram")?;
        if let Ok(h) = self.latency.lock() {
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                writeln!(
                    s,
                    "sonoprint_analysis_duration_seconds_bucket{{le=\"{le}\"}} {n}"
                )?;
            }
            writeln!(
                s,
                "sonoprint_analysis_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                h.count
            )?;
            writeln!(s, "sonoprint_analysis_duration_seconds_sum {}", h.sum)?;
            writeln!(s, "sonoprint_analysis_duration_seconds_count {}", h.count)?;
        }
        let gauge = |s: &mut String, name: &str, help: &str, v: String| {
            writeln!(s, "# HELP {name} {help}")?;
            writeln!(s, "# TYPE {name} gauge")?;
            writeln!(s, "{name} {v}")
        };
        gauge(
            s,
            "sonoprint_queue_depth",
            "Requests waiting for a worker.",
            queued.to_string(),
        )?;
        gauge(
            s,
            "sonoprint_workers_busy",
            "Workers analysing a file now.",
            busy.to_string(),
        )?;
        gauge(
            s,
            "sonoprint_workers",
            "Analysis workers (--jobs).",
            workers.to_string(),
        )?;
        gauge(
            s,
            "sonoprint_uptime_seconds",
            "Seconds since the server started.",
            uptime.as_secs().to_string(),
        )?;
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            writeln!(s, "# HELP {name} {help}")?;
            writeln!(s, "# TYPE {name} counter")?;
            writeln!(s, "{name} {v}")
        };
        counter(
            s,
            "sonoprint_fingerprints_computed_total",
            "Fingerprints computed by the workers.",
            self.computed.load(Ordering::Relaxed),
        )?;
        counter(
            s,
            "sonoprint_fingerprints_cached_total",
            "Fingerprints answered from the library without decoding.",
            self.cached.load(Ordering::Relaxed),
        )?;
        counter(
            s,
            "sonoprint_rejected_total",
            "Requests refused with 503 because the queue was full.",
            self.rejected.load(Ordering::Relaxed),
        )?;
        counter(
            s,
            "sonoprint_store_errors_total",
            "Computed fingerprints that could not be written to the library.",
            self.store_errors.load(Ordering::Relaxed),
        )?;
        writeln!(
            s,
            "# HELP sonoprint_analysis_failures_total Failed analyses by class."
        )?;
        writeln!(s, "# TYPE sonoprint_analysis_failures_total counter")?;
        if let Ok(f) = self.failures.lock() {
            for (class, n) in f.iter() {
                writeln!(
                    s,
                    "sonoprint_analysis_failures_total{{class=\"{}\"}} {n}",
                    escape(class)
                )?;
            }
        }
        Ok(())
    }
}

/// One figure of a runner, where known.
type RunnerValue<'a> = dyn Fn(&sonoprint_store::RunnerInfo) -> Option<f64> + 'a;

/// The gauges of the runners holding claims, by host and pid.
pub fn runners(runners: &[sonoprint_store::RunnerInfo]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut s = String::new();
    let gauges: [(&str, &str, &RunnerValue<'_>); 4] = [
        (
            "sonoprint_runner_claimed",
            "Tracks a runner holds live claims on.",
            &|r| Some(r.claimed as f64),
        ),
        (
            "sonoprint_runner_done",
            "Results a runner has written.",
            &|r| r.done.map(|d| d as f64),
        ),
        (
            "sonoprint_runner_rate",
            "Results per second of a runner since it started.",
            &|r| r.rate(),
        ),
        (
            "sonoprint_runner_heartbeat_age_seconds",
            "Seconds since a runner's last heartbeat.",
            &|r| Some(((now - r.last_heartbeat_ms) as f64 / 1000.0).max(0.0)),
        ),
    ];
    for (name, help, value) in gauges {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for r in runners {
            if let Some(v) = value(r) {
                s.push_str(&format!(
                    "{name}{{host=\"{}\",pid=\"{}\"}} {v}\n",
                    escape(&r.host),
                    r.pid
                ));
            }
        }
    }
    s
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every answer by route template and status, and writes the access log line.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    state.metrics.request(route, status);
    tracing::info!(
        target: "access",
        "{method} {path} {status} {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    resp
}
