//! The JSON of the library reports, shared by `sonoprint status --json`, `sonoprint failures
//! --json` and the `/api/v1` endpoints, so that both show the same figures. The types are the
//! schemas of the OpenAPI document too.

use serde::Serialize;
use serde_json::{json, Value};
use sonoprint_store::{FailureRow, RunInfo, RunnerInfo, Status};
use utoipa::ToSchema;

/// The figures of `sonoprint status --json` (without `logs_dir`, which the CLI adds).
#[derive(Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusReport {
    pub db_path: String,
    /// The database file plus its write-ahead log.
    pub db_size_bytes: u64,
    pub tracks: u64,
    pub present: u64,
    pub missing: u64,
    /// Present tracks with a current fingerprint.
    pub fingerprinted_current: u64,
    /// Present tracks whose fingerprint is no longer current (counted in `pending` too).
    pub stale: u64,
    /// Present tracks a `run` would compute.
    pub pending: u64,
    /// Tracks claimed by a runner right now.
    pub claimed: u64,
    pub failed: u64,
    /// Failed present tracks by class, most frequent first.
    #[schema(value_type = std::collections::HashMap<String, u64>)]
    pub failed_by_class: serde_json::Map<String, Value>,
    pub last_run: Option<RunReport>,
    /// The runners holding claims now (several machines on one PostgreSQL library).
    pub runners: Vec<RunnerReport>,
    /// In the player's own database: its rows as the player counts them.
    pub auralis: Option<AuralisReport>,
}

/// A runner holding claims.
#[derive(Serialize, ToSchema)]
pub struct RunnerReport {
    /// `host:pid:suffix`.
    pub runner: String,
    pub host: String,
    pub pid: u32,
    /// Tracks it holds live claims on.
    pub claimed: u64,
    /// Results it has written (null where the library counts them only at the end of a run).
    pub done: Option<u64>,
    /// Results per second since it started (null where `done` is).
    pub rate: Option<f64>,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub started_at: String,
    /// Its last heartbeat (or claim), `YYYY-MM-DD HH:MM:SS UTC`.
    pub last_heartbeat: String,
    /// Seconds since its last heartbeat.
    pub last_heartbeat_age_sec: f64,
}

impl RunnerReport {
    pub fn new(r: &RunnerInfo) -> Self {
        let now = now_ms();
        RunnerReport {
            runner: r.runner.clone(),
            host: r.host.clone(),
            pid: r.pid,
            claimed: r.claimed,
            done: r.done,
            rate: r.rate(),
            started_at: utc(r.started_at_ms),
            last_heartbeat: utc(r.last_heartbeat_ms),
            last_heartbeat_age_sec: ((now - r.last_heartbeat_ms) as f64 / 1000.0).max(0.0),
        }
    }
}

impl StatusReport {
    pub fn new(st: &Status) -> Self {
        StatusReport {
            db_path: st.db_path.to_string_lossy().into_owned(),
            db_size_bytes: st.db_size_bytes,
            tracks: st.tracks,
            present: st.present,
            missing: st.missing,
            fingerprinted_current: st.fingerprinted_current,
            stale: st.stale,
            pending: st.pending,
            claimed: st.claimed,
            failed: st.failed(),
            failed_by_class: st
                .failed_by_class
                .iter()
                .map(|(c, n)| (c.clone(), json!(n)))
                .collect(),
            last_run: st.last_run.as_ref().map(RunReport::new),
            runners: st.runners.iter().map(RunnerReport::new).collect(),
            auralis: st.auralis.map(|a| AuralisReport {
                version: a.version,
                current: a.current,
                placeholders: a.placeholders,
                older_versions: a.older_versions,
            }),
        }
    }
}

/// The last run.
#[derive(Serialize, ToSchema)]
pub struct RunReport {
    pub id: i64,
    /// `running`, `finished`, `interrupted`, ...
    pub status: String,
    pub mode: crate::api::ModeName,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: String,
    pub pid: u32,
    pub completed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub wall_sec: f64,
    pub cpu_sec: f64,
}

impl RunReport {
    fn new(r: &RunInfo) -> Self {
        let s = &r.summary;
        RunReport {
            id: r.id.0,
            status: s.status.as_str().to_string(),
            mode: r.mode.into(),
            started_at: utc(r.started_at_ms),
            finished_at: r.finished_at_ms.map(utc),
            host: r.host.clone(),
            pid: r.pid,
            completed: s.completed,
            failed: s.failed,
            skipped: s.skipped,
            wall_sec: s.wall_sec,
            cpu_sec: s.cpu_sec,
        }
    }
}

/// The player's fingerprint rows as the player counts them.
#[derive(Serialize, ToSchema)]
pub struct AuralisReport {
    pub version: u32,
    pub current: u64,
    pub placeholders: u64,
    pub older_versions: u64,
}

/// A file that could not be fingerprinted: one element of `sonoprint failures --json`.
#[derive(Serialize, ToSchema)]
#[schema(as = Failure)]
pub struct FailureReport {
    pub track_id: i64,
    pub path: String,
    /// The failure's class: one of `AnalysisClass` for the failures this version records (a
    /// newer sonoprint may have written others, so any string).
    pub class: String,
    pub message: String,
    /// The decoders that were tried.
    pub decoders: Vec<String>,
    pub attempts: u64,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub first_at: String,
    pub last_at: String,
}

impl FailureReport {
    pub fn new(f: &FailureRow) -> Self {
        FailureReport {
            track_id: f.track_id.0,
            path: f.path.to_string_lossy().into_owned(),
            class: f.class.clone(),
            message: f.message.clone(),
            decoders: f.decoders.clone(),
            attempts: f.attempts,
            first_at: utc(f.first_at_ms),
            last_at: utc(f.last_at_ms),
        }
    }
}

/// Plain data (strings, numbers, string-keyed maps) always serializes; should it ever not, the
/// JSON says so instead of the program stopping.
fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// The object of `sonoprint status --json` (without `logs_dir`, which the caller adds).
pub fn status_json(st: &Status) -> Value {
    to_value(StatusReport::new(st))
}

/// One element of `sonoprint failures --json`.
pub fn failure_json(f: &FailureRow) -> Value {
    to_value(FailureReport::new(f))
}

/// `YYYY-MM-DD HH:MM:SS UTC` from unix milliseconds (civil-from-days, proleptic Gregorian).
/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_767_225_599_000), "2025-12-31 23:59:59 UTC");
    }
}
