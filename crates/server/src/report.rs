//! The JSON of the library reports, shared by `sonoprint status --json`, `sonoprint failures
//! --json` and the `/api/v1` endpoints, so that both show the same figures.

use serde_json::{json, Value};
use sonoprint_store::{FailureRow, RunInfo, Status};

/// The object of `sonoprint status --json` (without `logs_dir`, which the caller adds).
pub fn status_json(st: &Status) -> Value {
    let by_class: serde_json::Map<String, Value> = st
        .failed_by_class
        .iter()
        .map(|(c, n)| (c.clone(), json!(n)))
        .collect();
    json!({
        "db_path": st.db_path.to_string_lossy(),
        "db_size_bytes": st.db_size_bytes,
        "tracks": st.tracks,
        "present": st.present,
        "missing": st.missing,
        "fingerprinted_current": st.fingerprinted_current,
        "stale": st.stale,
        "pending": st.pending,
        "claimed": st.claimed,
        "failed": st.failed(),
        "failed_by_class": by_class,
        "last_run": st.last_run.as_ref().map(run_json),
        "auralis": st.auralis.map(|a| json!({
            "version": a.version,
            "current": a.current,
            "placeholders": a.placeholders,
            "older_versions": a.older_versions,
        })),
    })
}

fn run_json(r: &RunInfo) -> Value {
    let s = &r.summary;
    json!({
        "id": r.id.0,
        "status": s.status.as_str(),
        "mode": r.mode.as_str(),
        "started_at": utc(r.started_at_ms),
        "finished_at": r.finished_at_ms.map(utc),
        "host": r.host,
        "pid": r.pid,
        "completed": s.completed,
        "failed": s.failed,
        "skipped": s.skipped,
        "wall_sec": s.wall_sec,
        "cpu_sec": s.cpu_sec,
    })
}

/// One element of `sonoprint failures --json`.
pub fn failure_json(f: &FailureRow) -> Value {
    json!({
        "track_id": f.track_id.0,
        "path": f.path.to_string_lossy(),
        "class": f.class,
        "message": f.message,
        "decoders": f.decoders,
        "attempts": f.attempts,
        "first_at": utc(f.first_at_ms),
        "last_at": utc(f.last_at_ms),
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` from unix milliseconds (civil-from-days, proleptic Gregorian).
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
