//! A fuzzing driver on stable Rust: the same target functions as the libFuzzer targets, fed by a
//! mutation loop (bit flips, byte runs, cuts, duplications, splices of the seed files), without
//! coverage feedback. Each input runs on a thread under a time limit: a panic is saved as
//! `artifacts/<target>/crash-<hash>`, an input still running at the limit as `hang-<hash>` (the
//! driver then stops: a stuck thread cannot be killed).
//!
//! ```sh
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin drive -- decode SECS SEED_DIR...
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin drive -- analyze_pcm SECS
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin drive -- decode 0 FILE   # replay
//! ```
//!
//! `SECS` 0 replays the given files once each. Prints executions, distinct crashes and hangs.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const MAX_INPUT: usize = 256 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 0xFF, 0x7F, 0x80, 1][rng.below(5)];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                for b in &mut input[i..i + n] {
                    *b = rng.next() as u8;
                }
            }
            3 if len > 1 => input.truncate(rng.below(len)),
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(4096).min(len - i);
                let copy = input[i..i + n].to_vec();
                let at = rng.below(len);
                input.splice(at..at, copy);
            }
            5 if len > 0 => {
                // A 16- or 32-bit field set to an extreme (sizes, counts, rates in headers).
                let i = rng.below(len);
                let v: [u8; 4] = [0xFF, 0xFF, 0xFF, 0x7F];
                for (k, b) in v
                    .iter()
                    .take(if rng.below(2) == 0 { 2 } else { 4 })
                    .enumerate()
                {
                    if let Some(x) = input.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            6 if !seeds.is_empty() => {
                // Splice: a piece of another seed.
                let s = &seeds[rng.below(seeds.len())];
                if !s.is_empty() {
                    let i = rng.below(s.len());
                    let n = rng.below(8192).min(s.len() - i);
                    let at = rng.below(len + 1);
                    input.splice(at..at, s[i..i + n].iter().copied());
                }
            }
            7 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(256).min(len - i);
                input.drain(i..i + n);
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(MAX_INPUT);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(target), Some(secs)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: drive decode|analyze_pcm SECS [SEED_FILE_OR_DIR...]");
        std::process::exit(2);
    };
    let run: fn(&[u8]) = match target.as_str() {
        "decode" => sonoprint_fuzz::decode,
        "analyze_pcm" => sonoprint_fuzz::analyze_pcm,
        _ => {
            eprintln!("unknown target {target}");
            std::process::exit(2);
        }
    };
    // Panics are reported as findings; the default hook would print each one.
    std::panic::set_hook(Box::new(|_| {}));
    let mut seeds = Vec::new();
    for a in &args[2..] {
        collect(Path::new(a), &mut seeds);
    }
    let artifacts = PathBuf::from("artifacts").join(target);
    let mut crashes = HashSet::new();
    let started = Instant::now();
    let mut execs = 0u64;
    let report = |execs: u64, crashes: &HashSet<u64>, hang: bool| {
        println!(
            "target {target}: {execs} executions in {:.0} s, {} distinct crashes, {} hangs",
            started.elapsed().as_secs_f64(),
            crashes.len(),
            u8::from(hang)
        );
    };
    if secs == 0 {
        for s in &seeds {
            execs += 1;
            if let Some(hang) = one(run, s, &artifacts, &mut crashes) {
                report(execs, &crashes, hang);
                std::process::exit(1);
            }
        }
        report(execs, &crashes, false);
        std::process::exit(i32::from(!crashes.is_empty()));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64);
    if seeds.is_empty() {
        seeds.push(vec![0u8; 64]);
    }
    let deadline = started + Duration::from_secs(secs);
    let mut last = Instant::now();
    while Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        if target == "analyze_pcm" && rng.below(2) == 0 {
            input = (0..8 + rng.below(4096)).map(|_| rng.next() as u8).collect();
        }
        mutate(&mut rng, &seeds, &mut input);
        execs += 1;
        if let Some(true) = one(run, &input, &artifacts, &mut crashes) {
            report(execs, &crashes, true);
            std::process::exit(1);
        }
        if last.elapsed() > Duration::from_secs(60) {
            report(execs, &crashes, false);
            last = Instant::now();
        }
    }
    report(execs, &crashes, false);
}

/// Runs one input; `Some(true)` for a hang (saved), `Some(false)` for a new crash (saved).
fn one(run: fn(&[u8]), input: &[u8], dir: &Path, crashes: &mut HashSet<u64>) -> Option<bool> {
    let (tx, rx) = mpsc::channel();
    let data = input.to_vec();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| run(&data));
        let msg = r.err().map(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        });
        tx.send(msg).ok();
    });
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    let id = h.finish();
    match rx.recv_timeout(LIMIT) {
        Ok(None) => None,
        Ok(Some(msg)) => {
            // One artifact per distinct message: the same bug found again is not news.
            let mut mh = DefaultHasher::new();
            msg.hash(&mut mh);
            if crashes.insert(mh.finish()) {
                save(dir, &format!("crash-{id:016x}"), input);
                eprintln!("crash: {msg} (input saved as crash-{id:016x})");
                Some(false)
            } else {
                None
            }
        }
        Err(_) => {
            save(dir, &format!("hang-{id:016x}"), input);
            eprintln!(
                "hang: still running after {} s (input saved as hang-{id:016x})",
                LIMIT.as_secs()
            );
            Some(true)
        }
    }
}

fn save(dir: &Path, name: &str, input: &[u8]) {
    if std::fs::create_dir_all(dir).is_ok() && std::fs::write(dir.join(name), input).is_ok() {
        return;
    }
    eprintln!("cannot save {name} under {}", dir.display());
}

fn collect(p: &Path, out: &mut Vec<Vec<u8>>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            entries.sort();
            for e in entries {
                collect(&e, out);
            }
        }
    } else if let Ok(b) = std::fs::read(p) {
        if b.len() <= MAX_INPUT {
            out.push(b);
        }
    }
}
