//! Speed and scale on generated fingerprints (clustered, correlated, in range:
//! `sonoprint_similarity::synthetic`).
//!
//! ```sh
//! cargo run --release -p sonoprint-similarity --example bench -- --n 50000 --mode exact
//! cargo run --release -p sonoprint-similarity --example bench -- --n 1000000 --mode auto
//! ```
//!
//! Prints: fit and index build time, single-query latency (p50/p99 of `--queries` k-NN
//! queries by track), the whole graph's time, its recall@k against exact search on a sample of
//! `--recall-sample` tracks, and the peak RSS of the process.

use std::error::Error;
use std::time::Instant;

use sonoprint_core::Fingerprint;
use sonoprint_similarity::{synthetic, Graph, Index, IndexOptions, Model, SearchMode};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut n = 50_000usize;
    let mut k = 10usize;
    let mut queries = 1000usize;
    let mut recall_sample = 1000usize;
    let mut mode = SearchMode::Auto;
    let mut options = IndexOptions::default();
    let mut graph = true;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--n" => n = value()?.parse()?,
            "--k" => k = value()?.parse()?,
            "--queries" => queries = value()?.parse()?,
            "--recall-sample" => recall_sample = value()?.parse()?,
            "--probes" => options.probes = value()?.parse()?,
            "--cells" => options.cells = Some(value()?.parse()?),
            "--no-graph" => graph = false,
            "--mode" => {
                mode = match value()?.as_str() {
                    "auto" => SearchMode::Auto,
                    "exact" => SearchMode::Exact,
                    "approx" | "approximate" => SearchMode::Approximate,
                    other => return Err(format!("unknown mode {other}").into()),
                }
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    options.mode = mode;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!("n = {n}, k = {k}, mode = {mode:?}, threads = {threads}, {options:?}");

    let t = Instant::now();
    let tracks: Vec<(i64, Fingerprint)> = synthetic::generate(n, (n / 200).max(10), 42)
        .into_iter()
        .map(|t| (t.id, t.fingerprint))
        .collect();
    println!("generate: {:.2} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.1).collect();
    let model = Model::fit(&fps)?;
    drop(fps);
    println!("fit: {:.2} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let index = Index::build_with(model, &tracks, &options)?;
    println!(
        "index build: {:.2} s (approximate: {})",
        t.elapsed().as_secs_f64(),
        index.is_approximate()
    );
    drop(tracks);

    // Query latency: k nearest of tracks spread over the library.
    let step = (n / queries.max(1)).max(1);
    let mut lat: Vec<f64> = Vec::with_capacity(queries);
    for q in 0..queries.min(n) {
        let id = (q * step) as i64 + 1;
        let t = Instant::now();
        let r = index.neighbours_of(id, k, &|_| true)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(r);
    }
    lat.sort_by(f64::total_cmp);
    if !lat.is_empty() {
        let p = |x: f64| lat[((lat.len() - 1) as f64 * x).round() as usize];
        println!(
            "query k={k}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} queries)",
            p(0.5),
            p(0.99),
            p(1.0),
            lat.len()
        );
    }

    if graph {
        let t = Instant::now();
        let g = Graph::build(&index, k);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "graph k={k}: {secs:.2} s ({} edges, {:.1} µs per track)",
            g.edges().count(),
            secs * 1e6 / n as f64
        );
        // Recall against exact search on a sample.
        let step = (n / recall_sample.max(1)).max(1);
        let (mut hits, mut total) = (0usize, 0usize);
        let t = Instant::now();
        for s in 0..recall_sample.min(n) {
            let id = (s * step) as i64 + 1;
            let exact = index.exact_neighbours_of(id, k)?;
            let row = g.row(id).ok_or("no row")?;
            total += exact.len();
            hits += exact
                .iter()
                .filter(|e| row.iter().any(|r| r.id == e.id))
                .count();
        }
        println!(
            "recall@{k} vs exact: {:.4} ({} tracks sampled, {:.1} s)",
            hits as f64 / total.max(1) as f64,
            recall_sample.min(n),
            t.elapsed().as_secs_f64()
        );
    }
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
    Ok(())
}
