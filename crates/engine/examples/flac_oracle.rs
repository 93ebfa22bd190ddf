//! Compares our FLAC decoder with symphonia's (kept as the oracle) on every `.flac` file under
//! the given folders, packet by packet and sample by sample (see `tests/flac_oracle`).
//!
//! ```sh
//! cargo run --release -p sonoprint-engine --example flac_oracle -- ~/.cache/sonoprint-corpus/music
//! cargo run --release -p sonoprint-engine --example flac_oracle -- --mutate 300 SEED_DIR
//! ```
//!
//! `--mutate SECS` instead feeds damaged copies of the packets (CRC made valid again, see
//! `mutate_packets`) to our decoder alone, round after round with new seeds, for `SECS` seconds:
//! a panic or a hang is a bug.

use std::path::{Path, PathBuf};

#[path = "../tests/flac_oracle/mod.rs"]
mod flac_oracle;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("flac"))
        {
            out.push(p);
        }
    }
}

fn main() {
    let mut files = Vec::new();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mutate = match args.first().map(String::as_str) {
        Some("--mutate") => {
            let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
            args.drain(..2.min(args.len()));
            Some(secs)
        }
        _ => None,
    };
    for arg in args {
        let p = PathBuf::from(arg);
        if p.is_dir() {
            walk(&p, &mut files);
        } else {
            files.push(p);
        }
    }
    files.sort();
    if let Some(secs) = mutate {
        let start = std::time::Instant::now();
        let (mut rounds, mut total) = (0u64, flac_oracle::Mutated::default());
        while start.elapsed().as_secs() < secs {
            for f in &files {
                match flac_oracle::mutate_packets(f, rounds.wrapping_mul(0x9e37_79b9) + 1, 4) {
                    Ok(m) => {
                        total.packets += m.packets;
                        total.decoded += m.decoded;
                        total.errors += m.errors;
                    }
                    Err(e) => println!("{}: {e}", f.display()),
                }
            }
            rounds += 1;
        }
        println!(
            "{} files, {rounds} rounds in {:.0} s: {} damaged packets decoded, {} decoded, {} errors, no panic",
            files.len(),
            start.elapsed().as_secs_f64(),
            total.packets,
            total.decoded,
            total.errors
        );
        return;
    }
    let (mut same, mut differ, mut failed) = (0, 0, 0);
    let (mut packets, mut samples) = (0u64, 0u64);
    for f in &files {
        match flac_oracle::compare(f) {
            Ok(a) if a.identical() => {
                same += 1;
                packets += a.packets;
                samples += a.samples;
                if a.both_failed > 0 {
                    println!(
                        "{}: identical; {} packets refused by both",
                        f.display(),
                        a.both_failed
                    );
                }
            }
            Ok(a) => {
                differ += 1;
                println!(
                    "{}: {} packets differ: {:?}",
                    f.display(),
                    a.different_packets,
                    a.differences
                );
            }
            Err(e) => {
                failed += 1;
                println!("{}: not compared: {e}", f.display());
            }
        }
    }
    println!(
        "{} FLAC files: {same} identical ({packets} packets, {samples} samples), {differ} differ, {failed} not compared",
        files.len()
    );
    if differ > 0 || failed > 0 {
        std::process::exit(1);
    }
}
