//! `sonoprint analyze`: fingerprint files and print them as a table or as JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use sonoprint_engine::{analyze_file_guarded, Analysis, AnalysisError, Fingerprint, Mode, Options};

#[derive(clap::Args)]
pub struct Args {
    /// Analyse every sample instead of three 30 s excerpts (tracks over 120 s).
    #[arg(long)]
    full: bool,
    /// Fail a file as `truncated` when what decodes covers less than this share of the
    /// duration its header declares; above it, analyse it and flag it truncated.
    #[arg(long, value_name = "SHARE", default_value_t = sonoprint_engine::DEFAULT_MIN_COVERAGE,
          value_parser = parse_min_coverage)]
    min_coverage: f64,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Per-file time limit in seconds [default: 60, or 600 with --full].
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Audio files to fingerprint.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// `--min-coverage`: a share in [0, 1].
pub fn parse_min_coverage(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number: {s} (a share such as 0.9)"))?;
    sonoprint_engine::Options::check_min_coverage(v)
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let mode = if args.full { Mode::Full } else { Mode::Excerpt };
    let opts = Options {
        mode,
        min_coverage: args.min_coverage,
        ..Default::default()
    };
    let secs = args.timeout.unwrap_or(if args.full { 600.0 } else { 60.0 });
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!(
            "--timeout must be a positive number of seconds, not {secs}"
        ));
    }
    let timeout = Duration::from_secs_f64(secs);
    let mut failed = 0;
    let stdout = std::io::stdout();
    for path in &args.files {
        let result = analyze_file_guarded(path, &opts, timeout);
        failed += usize::from(result.is_err());
        let text = if args.json {
            json_line(path, &result)
        } else {
            table(path, &result)
        };
        let mut out = stdout.lock();
        writeln!(out, "{text}")
            .and_then(|_| out.flush())
            .map_err(|e| format!("cannot write output: {e}"))?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn json_line(path: &std::path::Path, result: &Result<Analysis, AnalysisError>) -> String {
    let path = path.to_string_lossy();
    let v = match result {
        Ok(a) => json!({ "path": path, "fingerprint": a.fingerprint, "metadata": a.metadata }),
        Err(e) => json!({
            "path": path,
            "error": { "class": e.class, "message": e.message, "decoders_tried": e.decoders_tried },
        }),
    };
    v.to_string()
}

fn table(path: &std::path::Path, result: &Result<Analysis, AnalysisError>) -> String {
    let mut s = format!("{}\n", path.display());
    match result {
        Err(e) => s.push_str(&format!("  error ({}): {}\n", e.class, e.message)),
        Ok(a) => {
            let m = &a.metadata;
            let bits = m
                .bits_per_sample
                .map(|b| format!(", {b}-bit"))
                .unwrap_or_default();
            s.push_str(&format!(
                "  {} / {}, {} Hz, {} ch{bits}, {}; {:.1} s analysed ({}, {}, {}){}\n",
                m.format,
                m.codec,
                m.sample_rate,
                m.channels,
                clock(m.duration_sec),
                m.analyzed_sec,
                m.mode.as_str(),
                m.access,
                m.decoder,
                if m.truncated { ", TRUNCATED" } else { "" },
            ));
            for (name, v) in Fingerprint::NAMES.iter().zip(a.fingerprint.to_array()) {
                s.push_str(&format!("  {name:<24} {v:>10.4}\n"));
            }
        }
    }
    s
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0);
    format!("{}:{:04.1}", (s / 60.0) as u64, s % 60.0)
}
