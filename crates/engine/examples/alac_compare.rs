//! Decodes every ALAC file under the given folders with sonoprint's ALAC decoder
//! (`decode::alac`) and with symphonia's own, packet by packet, and compares every sample; prints
//! the time each decoder spent.
//!
//! ```sh
//! cargo run --release -p sonoprint-engine --example alac_compare -- ~/.cache/sonoprint-corpus/music
//! ```
//!
//! Exits with status 1 if any file differs or cannot be read. `--time ours` or `--time symphonia`
//! decodes with that decoder alone and prints the time spent in `decode` (decode-only speed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sonoprint_engine::decode::alac::oracle::{compare_file, decode_alone};

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                walk(&e.path(), out);
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
}

fn main() {
    let mut files = Vec::new();
    let mut time: Option<bool> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--time" {
            time = Some(args.next().as_deref() == Some("ours"));
        } else {
            walk(Path::new(&a), &mut files);
        }
    }
    if files.is_empty() {
        eprintln!("usage: alac_compare FILE_OR_DIR...");
        std::process::exit(2);
    }
    files.sort();
    if let Some(ours) = time {
        let (mut spent, mut frames) = (Duration::ZERO, 0u64);
        for f in &files {
            if let Ok(Some(a)) = decode_alone(f, ours) {
                spent += a.spent;
                frames += a.frames;
            }
        }
        let who = if ours { "ours" } else { "symphonia" };
        println!(
            "{who}: {frames} frames in {:.3} s ({:.1} Mframes/s)",
            spent.as_secs_f64(),
            frames as f64 / spent.as_secs_f64().max(1e-9) / 1e6
        );
        return;
    }
    let (mut n, mut bad) = (0, 0);
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let mut frames = 0u64;
    for f in &files {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(
            ext.to_ascii_lowercase().as_str(),
            "m4a" | "mp4" | "caf" | "m4b"
        ) {
            continue;
        }
        match compare_file(f) {
            Ok(None) => {}
            Ok(Some(c)) => {
                n += 1;
                ours += c.ours;
                theirs += c.theirs;
                frames += c.frames;
                let verdict = if c.mismatches == 0 {
                    "same"
                } else {
                    "DIFFERENT"
                };
                if c.mismatches > 0 {
                    bad += 1;
                }
                println!(
                    "{verdict:9} {:>6} packets {:>10} frames {:>3} failed by both  ours {:>7.1} ms  symphonia {:>7.1} ms  {}{}",
                    c.packets,
                    c.frames,
                    c.both_failed,
                    c.ours.as_secs_f64() * 1e3,
                    c.theirs.as_secs_f64() * 1e3,
                    f.display(),
                    c.first_mismatch.map(|m| format!("  ({m})")).unwrap_or_default(),
                );
            }
            Err(e) => {
                n += 1;
                bad += 1;
                println!("ERROR     {}: {e}", f.display());
            }
        }
    }
    println!(
        "{n} ALAC files, {} identical, {bad} different or unreadable; {frames} frames; \
         decode time ours {:.3} s, symphonia {:.3} s ({:.2}x)",
        n - bad,
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    );
    if bad > 0 {
        std::process::exit(1);
    }
}
