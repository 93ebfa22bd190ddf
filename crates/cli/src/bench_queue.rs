//! `sonoprint bench-queue URL` (hidden): the throughput of the work queue itself. A generated
//! catalogue (1,000,000 tracks by default, added through the scan interface) in an empty
//! PostgreSQL database, then `--runners` threads, each with its own connection and runner id,
//! claiming batches and recording a fixed fingerprint for every track (an analysis that does
//! nothing), until nothing is left. Prints tracks/s and the round trips to the server per
//! track (every prepare, query, begin and commit of the runners' connections; the heartbeat
//! connections renew once a lease/3 and are not counted), and checks that every track has
//! exactly one fingerprint and no claim is left. `scripts/bench-queue.sh` runs it on a
//! throwaway server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sonoprint_engine::{Analysis, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};
use sonoprint_store::{
    ClaimOptions, Job, Library, Outcome, PostgresLibrary, RunnerId, ScannedFile,
};

#[derive(clap::Args)]
pub struct Args {
    /// The PostgreSQL database (empty, or holding this benchmark's catalogue).
    url: String,
    /// Tracks in the generated catalogue.
    #[arg(long, default_value_t = 1_000_000)]
    tracks: u64,
    /// Runner threads, each with its own connection.
    #[arg(long, default_value_t = 8)]
    runners: usize,
    /// Tracks per claim (and per write transaction).
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

fn no_op(job: &Job) -> Outcome {
    let mut values = [0.0; 25];
    for (i, v) in values.iter_mut().enumerate() {
        *v = 0.5 + i as f64;
    }
    Outcome::Done {
        job: job.clone(),
        analysis: Analysis {
            fingerprint: Fingerprint::from_array(values),
            metadata: Metadata {
                duration_sec: 200.0,
                sample_rate: 44100,
                channels: 2,
                bits_per_sample: Some(16),
                format: "flac".into(),
                codec: "flac".into(),
                analyzed_sec: 90.0,
                mode: Mode::Excerpt,
                decoder: "none".into(),
                fingerprint_version: FINGERPRINT_VERSION,
                access: "seek".into(),
                duration_known: true,
                truncated: false,
                skipped_packets: 0,
            },
        },
        computed_ms: 0,
    }
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    if args.runners == 0 || args.batch == 0 {
        return Err("--runners and --batch must be at least 1".into());
    }
    let err = |e: sonoprint_store::StoreError| e.to_string();
    let mut lib = PostgresLibrary::open(&args.url).map_err(err)?;
    let opts = ClaimOptions::default();
    let st = lib.status().map_err(err)?;
    if st.tracks == 0 {
        let t0 = Instant::now();
        let cat = lib
            .catalog()
            .ok_or("a PostgreSQL library has a catalogue")?;
        let root = PathBuf::from("/bench/music");
        let scan = cat.begin_scan(std::slice::from_ref(&root)).map_err(err)?;
        let mut i = 0u64;
        while i < args.tracks {
            let end = (i + 20_000).min(args.tracks);
            let files: Vec<ScannedFile> = (i..end)
                .map(|n| ScannedFile {
                    path: root.join(format!("{:04}/{n:07}.flac", n / 1000)),
                    filesize: 1_000_000 + n,
                    mtime_ns: 1_700_000_000_000_000_000 + n as i64,
                    title: Some(format!("track {n}")),
                })
                .collect();
            cat.upsert_scanned(&scan, &files).map_err(err)?;
            i = end;
        }
        println!(
            "catalogue: {} tracks added through the scan interface in {:.1} s",
            args.tracks,
            t0.elapsed().as_secs_f64()
        );
    } else if st.tracks != args.tracks || st.pending != args.tracks {
        return Err(format!(
            "the database holds {} tracks ({} pending): give an empty database",
            st.tracks, st.pending
        ));
    }
    drop(lib);

    let done = Arc::new(AtomicU64::new(0));
    let trips = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..args.runners)
        .map(|_| {
            let (url, done, trips) = (args.url.clone(), done.clone(), trips.clone());
            let batch = args.batch;
            std::thread::spawn(move || -> Result<(u64, u64), String> {
                let mut lib = PostgresLibrary::open(&url).map_err(|e| e.to_string())?;
                let runner = RunnerId::for_this_process();
                let base = lib.round_trips();
                let mut mine = 0u64;
                loop {
                    let jobs = lib
                        .claim(&runner, batch, Duration::from_secs(300), &opts)
                        .map_err(|e| e.to_string())?;
                    if jobs.is_empty() {
                        break;
                    }
                    let outcomes: Vec<Outcome> = jobs.iter().map(no_op).collect();
                    let c = lib.record(&runner, &outcomes).map_err(|e| e.to_string())?;
                    if c.done != jobs.len() as u64 {
                        return Err(format!(
                            "{} of {} results written ({} stale)",
                            c.done,
                            jobs.len(),
                            c.stale
                        ));
                    }
                    mine += c.done;
                    done.fetch_add(c.done, Ordering::Relaxed);
                }
                lib.release(&runner).map_err(|e| e.to_string())?;
                let t = lib.round_trips() - base;
                trips.fetch_add(t, Ordering::Relaxed);
                Ok((mine, t))
            })
        })
        .collect();
    let mut per_runner = Vec::new();
    for h in handles {
        per_runner.push(h.join().map_err(|_| "a runner thread panicked")??);
    }
    let secs = t0.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let rt = trips.load(Ordering::Relaxed);
    let lib = PostgresLibrary::open(&args.url).map_err(err)?;
    let st = lib.status().map_err(err)?;
    println!(
        "{total} tracks claimed and recorded by {} runners (batch {}) in {secs:.1} s: \
         {:.0} tracks/s; {rt} round trips, {:.4} per track",
        args.runners,
        args.batch,
        total as f64 / secs,
        rt as f64 / total.max(1) as f64
    );
    println!(
        "per runner (tracks, round trips): {}",
        per_runner
            .iter()
            .map(|(n, t)| format!("({n}, {t})"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "check: {} fingerprinted, {} pending, {} claimed",
        st.fingerprinted_current, st.pending, st.claimed
    );
    if total != args.tracks || st.fingerprinted_current != args.tracks || st.claimed != 0 {
        return Err(format!(
            "the queue lost or doubled work: {total} recorded, {} fingerprinted of {}",
            st.fingerprinted_current, args.tracks
        ));
    }
    Ok(ExitCode::SUCCESS)
}
