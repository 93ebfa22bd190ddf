//! `sonoprint status [--json]`: the state of the library.

use std::process::ExitCode;

use serde_json::json;
use sonoprint_app::{Create, LibrarySpec};
use sonoprint_server::report::{status_json as to_json, utc};
use sonoprint_store::{Library, Status};

use crate::datadir::DataDir;

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, spec: &LibrarySpec, data: &DataDir) -> Result<ExitCode, String> {
    let store = open_existing(spec)?;
    let st = store.status().map_err(|e| e.to_string())?;
    let logs = data.logs();
    let text = if args.json {
        let mut v = to_json(&st);
        v["logs_dir"] = json!(logs.to_string_lossy());
        format!("{v}\n")
    } else {
        format!("{}Logs           {}\n", table(&st), logs.display())
    };
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout. A closed pipe (`sonoprint status | head`) is the reader's choice, not an
/// error; any other write error is.
pub fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Opens the library, refusing to create one.
pub fn open_existing(spec: &LibrarySpec) -> Result<Box<dyn Library>, String> {
    sonoprint_app::open(spec, Create::Never).map_err(|e| e.to_string())
}

fn table(st: &Status) -> String {
    let mut s = format!(
        "Library        {} ({:.1} MB)\n",
        st.db_path.display(),
        st.db_size_bytes as f64 / 1e6
    );
    let row = |s: &mut String, name: &str, n: u64, note: &str| {
        s.push_str(&format!("{name:<14} {n:>9}{note}\n"));
    };
    row(&mut s, "Tracks", st.tracks, "");
    row(&mut s, "  present", st.present, "");
    row(
        &mut s,
        "  missing",
        st.missing,
        "  (file gone at the last scan; fingerprints kept)",
    );
    row(
        &mut s,
        "Fingerprinted",
        st.fingerprinted_current,
        "  (current)",
    );
    row(
        &mut s,
        "Pending",
        st.pending,
        "  (what `run` computes next)",
    );
    row(
        &mut s,
        "  stale",
        st.stale,
        "  (older version or changed file)",
    );
    if st.claimed > 0 {
        row(
            &mut s,
            "  in progress",
            st.claimed,
            "  (claimed by a running `run`)",
        );
    }
    if let Some(a) = &st.auralis {
        s.push_str(&format!(
            "As the player counts them (fingerprint_version {}):\n",
            a.version
        ));
        row(
            &mut s,
            "  current",
            a.current,
            "  (lufs != -100 and version current)",
        );
        row(
            &mut s,
            "  placeholders",
            a.placeholders,
            "  (lufs = -100: claims of the player's workers)",
        );
        row(&mut s, "  older", a.older_versions, "  (an older version)");
    }
    row(
        &mut s,
        "Failed",
        st.failed(),
        "  (see `sonoprint failures`)",
    );
    for (class, n) in &st.failed_by_class {
        row(&mut s, &format!("  {class}"), *n, "");
    }
    if !st.runners.is_empty() {
        s.push_str(&format!(
            "Runners        {} holding claims\n  {:<20} {:>8} {:>8} {:>9} {:>10}  {}\n",
            st.runners.len(),
            "host",
            "pid",
            "claimed",
            "done",
            "rate/s",
            "last heartbeat"
        ));
        let now = sonoprint_server::report::now_ms();
        for r in &st.runners {
            s.push_str(&format!(
                "  {:<20} {:>8} {:>8} {:>9} {:>10}  {} ({:.0} s ago)\n",
                r.host,
                r.pid,
                r.claimed,
                r.done.map_or("-".to_string(), |d| d.to_string()),
                r.rate().map_or("-".to_string(), |v| format!("{v:.2}")),
                utc(r.last_heartbeat_ms),
                ((now - r.last_heartbeat_ms) as f64 / 1000.0).max(0.0)
            ));
        }
    }
    match &st.last_run {
        None => s.push_str("Last run       none\n"),
        Some(r) => {
            let x = &r.summary;
            let ok = x.completed.max(1) as f64;
            s.push_str(&format!(
                "Last run       #{} {}, {} mode, started {}\n               completed {}, failed {}, \
                 skipped {} in {:.1} s ({:.2} tracks/s, {:.2} CPU-s/track)\n",
                r.id.0,
                x.status.as_str(),
                r.mode.as_str(),
                utc(r.started_at_ms),
                x.completed,
                x.failed,
                x.skipped,
                x.wall_sec,
                (x.completed + x.failed) as f64 / x.wall_sec.max(1e-9),
                x.cpu_sec / ok,
            ));
        }
    }
    s
}
