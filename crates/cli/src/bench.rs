//! `sonoprint bench`: throughput of analysis against decoding alone, on a folder of audio.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sonoprint_engine::{analyze_file, decode_file, Fingerprint, Mode, Options};

use crate::sysinfo;

/// Extensions the benchmark picks up (content is still sniffed when decoding).
const AUDIO_EXT: &[&str] = &[
    "flac", "mp3", "m4a", "mp4", "aac", "alac", "ogg", "oga", "opus", "wav", "wave", "aif", "aiff",
    "aifc", "wma", "ape", "wv", "mka", "caf",
];

#[derive(clap::Args)]
pub struct Args {
    /// Benchmark full mode (every sample) instead of the excerpt plan.
    #[arg(long)]
    full: bool,
    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Also run full mode and report, per dimension, how far excerpt mode is from it.
    #[arg(long, conflicts_with = "full")]
    compare_full: bool,
    /// Folder to scan for audio files (recursively).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

struct Phase {
    name: String,
    files: usize,
    failures: usize,
    audio_sec: f64,
    wall_sec: f64,
    cpu_sec: Option<f64>,
    peak_rss: Option<u64>,
}

impl Phase {
    fn row(&self) -> String {
        let ok = (self.files - self.failures).max(1) as f64;
        let cpu = self
            .cpu_sec
            .map_or("-".into(), |c| format!("{:.3}", c / ok));
        let rss = self
            .peak_rss
            .map_or("-".into(), |r| format!("{:.0}", r as f64 / 1048576.0));
        format!(
            "{:<16} {:>6} {:>8} {:>8.2} {:>8.1} {:>9.2} {:>12} {:>9}",
            self.name,
            self.files,
            self.failures,
            self.audio_sec / 3600.0,
            self.wall_sec,
            self.files as f64 / self.wall_sec.max(1e-9),
            cpu,
            rss
        )
    }
}

/// Runs `work` over `files` on `jobs` threads; `work` returns the seconds of audio it covered.
fn run_phase<T: Send>(
    name: &str,
    files: &[PathBuf],
    jobs: usize,
    work: impl Fn(&Path) -> Result<(f64, T), String> + Sync,
) -> (Phase, Vec<Option<T>>) {
    // Without a reset the phase's peak also covers the phases before it: then it is not shown.
    let rss_reset = sysinfo::reset_peak_rss().is_ok();
    // The CPU of the ffmpeg subprocesses too (the files symphonia cannot decode): they are
    // part of what a track costs.
    let cpu = || Some(sysinfo::cpu_seconds()? + sysinfo::children_cpu_seconds()?);
    let cpu0 = cpu();
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(f64, T)>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                match work(path) {
                    Ok(r) => {
                        if let Ok(mut v) = results.lock() {
                            v[i] = Some(r);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut v) = errors.lock() {
                            v.push(e);
                        }
                    }
                }
            });
        }
    });
    let wall_sec = t0.elapsed().as_secs_f64();
    let cpu_sec = cpu0.and_then(|c0| cpu().map(|c1| c1 - c0));
    let results = results.into_inner().unwrap_or_default();
    let errors = errors.into_inner().unwrap_or_default();
    for e in &errors {
        eprintln!("  {name}: {e}");
    }
    let audio_sec = results.iter().flatten().map(|r| r.0).sum();
    let phase = Phase {
        name: name.to_string(),
        files: files.len(),
        failures: errors.len(),
        audio_sec,
        wall_sec,
        cpu_sec,
        peak_rss: sysinfo::peak_rss_bytes().filter(|_| rss_reset),
    };
    (
        phase,
        results.into_iter().map(|r| r.map(|(_, t)| t)).collect(),
    )
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let files: Vec<PathBuf> = crate::walk_files(&args.dir)
        .map_err(|e| format!("cannot read {}: {e}", args.dir.display()))?
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXT.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    if files.is_empty() {
        return Err(format!("no audio files under {}", args.dir.display()));
    }
    let mode = if args.full { Mode::Full } else { Mode::Excerpt };
    let opts = Options {
        mode,
        ..Default::default()
    };
    println!(
        "sonoprint bench: {} files under {}, {} mode, {jobs} threads",
        files.len(),
        args.dir.display(),
        mode.as_str()
    );
    println!("machine: {}", machine());
    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>8} {:>9} {:>12} {:>9}",
        "phase", "files", "failures", "audio h", "wall s", "tracks/s", "CPU-s/track", "peak MB"
    );
    // Decoding first also warms the page cache for both phases alike.
    let (decode, _) = run_phase("decode only", &files, jobs, |p| {
        decode_file(p, &opts)
            .map(|d| (d.duration_sec, ()))
            .map_err(|e| e.to_string())
    });
    println!("{}", decode.row());
    let (analysis, excerpt_fps) =
        run_phase(&format!("analyze ({})", mode.as_str()), &files, jobs, |p| {
            analyze_file(p, &opts)
                .map(|a| (a.metadata.duration_sec, a.fingerprint))
                .map_err(|e| e.to_string())
        });
    println!("{}", analysis.row());
    if let (Some(a), Some(d)) = (analysis.cpu_sec, decode.cpu_sec) {
        println!(
            "analysis CPU / decoding CPU: {:.2} (analysis alone costs {:.2}x the decoding)",
            a / d.max(1e-9),
            (a - d) / d.max(1e-9)
        );
    }
    println!(
        "audio analysed per wall second: {:.0}x real time",
        analysis.audio_sec / analysis.wall_sec.max(1e-9)
    );
    if args.compare_full {
        let full_opts = Options {
            mode: Mode::Full,
            ..Default::default()
        };
        let (full, full_fps) = run_phase("analyze (full)", &files, jobs, |p| {
            analyze_file(p, &full_opts)
                .map(|a| (a.metadata.duration_sec, a.fingerprint))
                .map_err(|e| e.to_string())
        });
        println!("{}", full.row());
        let pairs: Vec<(Fingerprint, Fingerprint)> = excerpt_fps
            .into_iter()
            .zip(full_fps)
            .filter_map(|(e, f)| Some((e?, f?)))
            .collect();
        print!("{}", compare(&pairs));
    }
    let failed = decode.failures + analysis.failures;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// Excerpt against full mode: per-dimension agreement and nearest-neighbour agreement.
fn compare(pairs: &[(Fingerprint, Fingerprint)]) -> String {
    let n = pairs.len();
    let mut s = format!("\nexcerpt vs full mode over {n} tracks\n");
    if n < 3 {
        s.push_str("  (too few tracks to compare)\n");
        return s;
    }
    let ex: Vec<[f64; 25]> = pairs.iter().map(|p| p.0.to_array()).collect();
    let fu: Vec<[f64; 25]> = pairs.iter().map(|p| p.1.to_array()).collect();
    s.push_str(&format!(
        "{:<26} {:>9} {:>12} {:>12}\n",
        "dimension", "pearson r", "mean |diff|", "within"
    ));
    for (d, name) in Fingerprint::NAMES.iter().enumerate() {
        let a: Vec<f64> = ex.iter().map(|v| v[d]).collect();
        let b: Vec<f64> = fu.iter().map(|v| v[d]).collect();
        let mad = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64;
        let within = match *name {
            "lufs" => format!(
                "{:.0} % <= 1 LU",
                100.0 * share(&a, &b, |x, y| (x - y).abs() <= 1.0)
            ),
            "tempo_bpm" => format!(
                "{:.0} % <= 3 %",
                100.0
                    * share(&a, &b, |x, y| (x - y).abs() <= 0.03 * y.abs().max(1e-9)
                        || x == y)
            ),
            _ => String::new(),
        };
        s.push_str(&format!(
            "{name:<26} {:>9.4} {mad:>12.4} {within:>12}\n",
            pearson(&a, &b)
        ));
    }
    s.push_str(&format!(
        "5 nearest neighbours (z-scored Euclidean, 25 dims) shared by both modes: {:.1} %\n",
        100.0 * knn_agreement(&ex, &fu, 5)
    ));
    s
}

fn share(a: &[f64], b: &[f64], ok: impl Fn(f64, f64) -> bool) -> f64 {
    a.iter().zip(b).filter(|(x, y)| ok(**x, **y)).count() as f64 / a.len().max(1) as f64
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        return if va == vb { 1.0 } else { 0.0 };
    }
    cov / (va * vb).sqrt()
}

/// Mean share of each track's `k` nearest neighbours that both modes agree on, with every
/// dimension z-scored on the full-mode statistics.
fn knn_agreement(ex: &[[f64; 25]], fu: &[[f64; 25]], k: usize) -> f64 {
    let n = fu.len();
    let k = k.min(n - 1);
    let mut mean = [0f64; 25];
    let mut sd = [0f64; 25];
    for d in 0..25 {
        mean[d] = fu.iter().map(|v| v[d]).sum::<f64>() / n as f64;
        sd[d] = (fu.iter().map(|v| (v[d] - mean[d]).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-12);
    }
    let z = |v: &[f64; 25]| -> [f64; 25] { std::array::from_fn(|d| (v[d] - mean[d]) / sd[d]) };
    let (ze, zf): (Vec<_>, Vec<_>) = (ex.iter().map(z).collect(), fu.iter().map(z).collect());
    let neighbours = |pts: &[[f64; 25]], i: usize| -> Vec<usize> {
        let mut d: Vec<(f64, usize)> = (0..pts.len())
            .filter(|&j| j != i)
            .map(|j| {
                (
                    pts[i]
                        .iter()
                        .zip(&pts[j])
                        .map(|(a, b)| (a - b).powi(2))
                        .sum(),
                    j,
                )
            })
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        d.into_iter().take(k).map(|x| x.1).collect()
    };
    let mut total = 0.0;
    for i in 0..n {
        let a = neighbours(&ze, i);
        let b = neighbours(&zf, i);
        total += a.iter().filter(|j| b.contains(j)).count() as f64 / k.max(1) as f64;
    }
    total / n as f64
}
