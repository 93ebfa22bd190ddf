//! `sonoprint failures [--class C] [--json]`: the files that could not be fingerprinted.

use std::process::ExitCode;

use sonoprint_engine::ErrorClass;

use sonoprint_app::LibrarySpec;

use crate::status::{emit, open_existing};

#[derive(clap::Args)]
pub struct Args {
    /// Only this class (empty, not_audio, unsupported_codec, corrupt, truncated, too_short, io,
    /// timeout, panic, analysis).
    #[arg(long, value_name = "CLASS")]
    class: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, spec: &LibrarySpec) -> Result<ExitCode, String> {
    if let Some(c) = &args.class {
        if ErrorClass::parse(c).is_none() {
            let all: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
            return Err(format!(
                "unknown class {c:?}; the classes are: {}",
                all.join(", ")
            ));
        }
    }
    let store = open_existing(spec)?;
    let rows = store
        .failures(args.class.as_deref())
        .map_err(|e| e.to_string())?;
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(sonoprint_server::report::failure_json)
            .collect();
        emit(&format!("{}\n", serde_json::Value::Array(v)))?;
    } else if rows.is_empty() {
        emit("No failures.\n")?;
    } else {
        let mut out = String::new();
        for f in &rows {
            let tried = if f.decoders.is_empty() {
                String::new()
            } else {
                format!("; tried {}", f.decoders.join(", "))
            };
            out.push_str(&format!("{:<17} {}\n", f.class, f.path.display()));
            out.push_str(&format!(
                "{:<17} {} ({} attempt{}{tried})\n",
                "",
                f.message,
                f.attempts,
                if f.attempts == 1 { "" } else { "s" }
            ));
        }
        out.push_str(&format!("{} failed files\n", rows.len()));
        emit(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}
