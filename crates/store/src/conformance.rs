//! The conformance suite: what every backend of [`Library`] must do, run against each of them
//! on real database files and real (small) files on disk. A new backend gets a [`Harness`] and
//! one `conformance!` line at the bottom.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sonoprint_core::{Analysis, ErrorClass, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};

use crate::*;

const LONG: Duration = Duration::from_secs(600);

/// How the suite makes and inspects a library of one backend.
pub(crate) trait Harness {
    /// A new library holding `n` tracks whose files exist under `dir` (`music/00000.flac`...).
    fn create(dir: &Path, n: usize) -> Box<dyn Library>;
    /// Another connection to the library made in `dir`.
    fn reopen(dir: &Path) -> Box<dyn Library>;
    /// Lets the library see the files as they are now on disk (a rescan, or a run's start).
    fn refresh(lib: &mut dyn Library, dir: &Path);
    /// Adds a track whose file is `dir/music/<name>`.
    fn add_track(lib: &mut dyn Library, dir: &Path, name: &str);
    /// Runs a statement on the library's database from another connection (fault injection
    /// and counting).
    fn sql(dir: &Path, sql: &str) -> i64;
    /// The name of the claims table.
    const CLAIMS: &'static str;
    /// Makes every later write of a fingerprint of `track` fail with "injected failure".
    fn inject_fingerprint_failure(dir: &Path, track: i64) {
        Self::sql(
            dir,
            &format!(
                "CREATE TRIGGER boom BEFORE INSERT ON track_fingerprints WHEN NEW.track_id = {track}
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            ),
        );
    }
    /// Undoes [`Harness::inject_fingerprint_failure`].
    fn remove_injected_failure(dir: &Path) {
        Self::sql(dir, "DROP TRIGGER boom");
    }
}

fn music(dir: &Path) -> PathBuf {
    dir.join("music")
}

/// Writes `n` files of distinct sizes and returns their paths.
pub(crate) fn make_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(music(dir)).unwrap();
    (0..n)
        .map(|i| {
            let p = music(dir).join(format!("{i:05}.flac"));
            std::fs::write(&p, vec![b'x'; 1000 + i]).unwrap();
            p
        })
        .collect()
}

pub(crate) fn analysis(seed: f64, mode: Mode) -> Analysis {
    let mut values = [0.0; 25];
    for (i, v) in values.iter_mut().enumerate() {
        *v = seed + i as f64 / 100.0;
    }
    Analysis {
        fingerprint: Fingerprint::from_array(values),
        metadata: Metadata {
            duration_sec: 200.0,
            sample_rate: 44100,
            channels: 2,
            bits_per_sample: Some(16),
            format: "flac".into(),
            codec: "flac".into(),
            analyzed_sec: 90.0,
            mode,
            decoder: "symphonia".into(),
            fingerprint_version: FINGERPRINT_VERSION,
            access: "seek".into(),
            duration_known: true,
            truncated: false,
            skipped_packets: 0,
        },
    }
}

fn done(job: &Job) -> Outcome {
    Outcome::Done {
        job: job.clone(),
        analysis: analysis(job.track_id.0 as f64, Mode::Excerpt),
        computed_ms: 5,
    }
}

fn failed(job: &Job) -> Outcome {
    Outcome::Failed {
        job: job.clone(),
        class: ErrorClass::Corrupt,
        message: "broken stream".into(),
        decoders: vec!["symphonia".into(), "ffmpeg".into()],
    }
}

/// A pid that no process has.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Claims and records every pending track with `outcome`.
fn run_all(lib: &mut dyn Library, outcome: fn(&Job) -> Outcome, opts: &ClaimOptions) -> u64 {
    let r = RunnerId::for_this_process();
    let mut n = 0;
    loop {
        let jobs = lib.claim(&r, 16, LONG, opts).unwrap();
        if jobs.is_empty() {
            return n;
        }
        let c = lib
            .record(&r, &jobs.iter().map(outcome).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(c.written(), jobs.len() as u64);
        n += c.written();
    }
}

pub(crate) fn claims_never_hand_a_track_to_two_runners<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    drop(H::create(dir.path(), 300));
    for round in 0..3 {
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut s = H::reopen(&d);
                    let r = RunnerId::for_this_process();
                    let mut got = Vec::new();
                    loop {
                        let jobs = s.claim(&r, 7, LONG, &ClaimOptions::default()).unwrap();
                        if jobs.is_empty() {
                            break;
                        }
                        got.extend(jobs.into_iter().map(|j| j.track_id));
                    }
                    (r, got)
                })
            })
            .collect();
        let results: Vec<_> = claimers.into_iter().map(|h| h.join().unwrap()).collect();
        let mut all = HashSet::new();
        for (_, got) in &results {
            for id in got {
                assert!(all.insert(*id), "round {round}: track {id} claimed twice");
            }
        }
        assert_eq!(all.len(), 300, "round {round}");
        let mut s = H::reopen(dir.path());
        for (r, got) in &results {
            assert_eq!(s.release(r).unwrap(), got.len() as u64);
        }
    }
}

/// Runners that claim and record at the same time write every track exactly once: a track whose
/// result was just written is never handed out again.
pub(crate) fn concurrent_runners_write_each_track_once<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    drop(H::create(dir.path(), 400));
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let d = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut s = H::reopen(&d);
                let r = RunnerId::for_this_process();
                let mut written = 0;
                loop {
                    let jobs = s.claim(&r, 7, LONG, &ClaimOptions::default()).unwrap();
                    if jobs.is_empty() {
                        return written;
                    }
                    let c = s
                        .record(&r, &jobs.iter().map(done).collect::<Vec<_>>())
                        .unwrap();
                    assert_eq!((c.done, c.stale), (jobs.len() as u64, 0));
                    written += c.done;
                }
            })
        })
        .collect();
    let total: u64 = runners.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 400, "tracks written more than once");
    assert_eq!(
        H::sql(dir.path(), "SELECT COUNT(*) FROM track_fingerprints"),
        400
    );
}

pub(crate) fn a_dead_runners_claims_are_free_at_once_a_live_ones_after_expiry<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 6);
    let opts = ClaimOptions::default();
    let dead = RunnerId::from_parts(&hostname(), dead_pid(), "dead");
    let dead_run = s.begin_run(&dead, Mode::Excerpt).unwrap();
    let a = s.claim(&dead, 3, LONG, &opts).unwrap();
    assert_eq!(a.len(), 3);

    let live = RunnerId::for_this_process();
    let b = s.claim(&live, 6, LONG, &opts).unwrap();
    assert_eq!(b.len(), 6, "the dead runner's tracks were not reclaimed");
    // Its claims are gone, so its run is recorded as died, not left running.
    let info = s.last_run().unwrap().unwrap();
    assert_eq!((info.id, info.summary.status), (dead_run, RunStatus::Died));
    // The dead runner's late write is stale: the live runner's counts.
    let late = s
        .record(&dead, &a.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((late.written(), late.stale), (0, 3));

    // A live runner's claims stay until they expire.
    let other = RunnerId::for_this_process();
    assert!(s.claim(&other, 6, LONG, &opts).unwrap().is_empty());
    assert_eq!(s.renew(&live, Duration::from_millis(1)).unwrap(), 6);
    std::thread::sleep(Duration::from_millis(20));
    let c = s.claim(&other, 6, LONG, &opts).unwrap();
    assert_eq!(c.len(), 6);
    // Now `live` lost them: its results are stale, `other`'s are written, each counted once.
    let stale = s
        .record(&live, &b.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((stale.written(), stale.stale), (0, 6));
    let ok = s
        .record(&other, &c.iter().map(done).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((ok.done, ok.stale), (6, 0));
    assert_eq!(
        H::sql(dir.path(), &format!("SELECT COUNT(*) FROM {}", H::CLAIMS)),
        0
    );
    assert_eq!(s.status().unwrap().fingerprinted_current, 6);

    // A runner on another host is judged by its lease alone.
    H::add_track(s.as_mut(), dir.path(), "extra.flac");
    let far = RunnerId::from_parts("elsewhere", dead_pid(), "x");
    assert_eq!(s.claim(&far, 5, LONG, &opts).unwrap().len(), 1);
    assert!(s.claim(&other, 5, LONG, &opts).unwrap().is_empty());
    assert_eq!(s.release(&far).unwrap(), 1);
    assert_eq!(s.claim(&other, 5, LONG, &opts).unwrap().len(), 1);
}

pub(crate) fn record_is_all_or_nothing<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 3);
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 3, LONG, &ClaimOptions::default()).unwrap();
    let third = jobs[2].track_id.0;
    H::inject_fingerprint_failure(dir.path(), third);
    let batch = vec![done(&jobs[0]), failed(&jobs[1]), done(&jobs[2])];
    let err = s.record(&r, &batch).unwrap_err();
    let msg = err.to_string();
    // The message names the operation and the track (a backend that writes the batch in one
    // statement names the batch's tracks).
    assert!(
        msg.contains("write a fingerprint")
            && (msg.contains(&format!("track {third}"))
                || msg.contains(&format!(", {third})"))
                || msg.contains(&format!(", {third},"))),
        "{msg}"
    );
    assert!(msg.contains("injected failure"), "{msg}");
    assert_eq!(
        H::sql(dir.path(), "SELECT COUNT(*) FROM track_fingerprints"),
        0
    );
    assert!(s.failures(None).unwrap().is_empty());
    assert_eq!(
        H::sql(dir.path(), &format!("SELECT COUNT(*) FROM {}", H::CLAIMS)),
        3
    );

    // Once the fault is gone the same batch goes through, each result once.
    H::remove_injected_failure(dir.path());
    let c = s.record(&r, &batch).unwrap();
    assert_eq!((c.done, c.failed, c.stale), (2, 1, 0));
    let again = s.record(&r, &batch).unwrap();
    assert_eq!((again.written(), again.stale), (0, 3));

    // A non-finite value is refused, not stored.
    H::add_track(s.as_mut(), dir.path(), "nan.flac");
    let jobs = s.claim(&r, 3, LONG, &ClaimOptions::default()).unwrap();
    assert_eq!(jobs.len(), 1);
    let mut a = analysis(1.0, Mode::Excerpt);
    a.fingerprint.lufs = f64::NAN;
    let bad = Outcome::Done {
        job: jobs[0].clone(),
        analysis: a,
        computed_ms: 1,
    };
    assert!(matches!(
        s.record(&r, &[bad]),
        Err(StoreError::NonFinite {
            dimension: "lufs",
            ..
        })
    ));
    assert_eq!(
        H::sql(dir.path(), "SELECT COUNT(*) FROM track_fingerprints"),
        2
    );
}

pub(crate) fn a_changed_file_is_pending_again<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 3);
    let opts = ClaimOptions::default();
    assert_eq!(s.pending(&opts).unwrap(), 3);
    assert_eq!(run_all(s.as_mut(), done, &opts), 3);
    assert_eq!(s.pending(&opts).unwrap(), 0);
    let st = s.status().unwrap();
    assert_eq!((st.fingerprinted_current, st.pending, st.stale), (3, 0, 0));

    // An unchanged library stays done after a refresh.
    H::refresh(s.as_mut(), dir.path());
    assert_eq!(s.pending(&opts).unwrap(), 0);

    // One file changes: it alone is pending (and stale: it has an older fingerprint).
    std::fs::write(music(dir.path()).join("00001.flac"), b"changed content").unwrap();
    H::refresh(s.as_mut(), dir.path());
    assert_eq!(s.pending(&opts).unwrap(), 1);
    let st = s.status().unwrap();
    assert_eq!((st.fingerprinted_current, st.pending, st.stale), (2, 1, 1));
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 10, LONG, &opts).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].path.ends_with("00001.flac"));
    assert_eq!(jobs[0].filesize, b"changed content".len() as u64);
    s.record(&r, &[done(&jobs[0])]).unwrap();
    assert_eq!(s.pending(&opts).unwrap(), 0);

    // Full mode wants full-mode fingerprints: the excerpt ones are its work.
    let full = ClaimOptions {
        mode: Mode::Full,
        ..Default::default()
    };
    assert_eq!(s.pending(&full).unwrap(), 3);
    let full_done: fn(&Job) -> Outcome = |j| Outcome::Done {
        job: j.clone(),
        analysis: analysis(2.0, Mode::Full),
        computed_ms: 9,
    };
    assert_eq!(run_all(s.as_mut(), full_done, &full), 3);
    assert_eq!(
        (s.pending(&full).unwrap(), s.pending(&opts).unwrap()),
        (0, 0)
    );
}

pub(crate) fn an_unchanged_failure_waits_for_retry_failed<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 2);
    let opts = ClaimOptions::default();
    assert_eq!(run_all(s.as_mut(), failed, &opts), 2);
    assert_eq!(s.pending(&opts).unwrap(), 0);
    let st = s.status().unwrap();
    assert_eq!((st.failed(), st.pending), (2, 0));
    assert_eq!(st.failed_by_class, vec![("corrupt".to_string(), 2)]);
    let rows = s.failures(Some("corrupt")).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].decoders, vec!["symphonia", "ffmpeg"]);
    assert_eq!(rows[0].attempts, 1);
    assert!(s.failures(Some("io")).unwrap().is_empty());

    // Retried on demand: a second failure counts a second attempt.
    let retry = ClaimOptions {
        retry_failed: true,
        ..Default::default()
    };
    assert_eq!(s.pending(&retry).unwrap(), 2);
    // (One round only: with retry_failed a failure stays work, so claiming again would loop.)
    let r = RunnerId::for_this_process();
    let jobs = s.claim(&r, 10, LONG, &retry).unwrap();
    assert_eq!(jobs.len(), 2);
    let c = s
        .record(&r, &jobs.iter().map(failed).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(c.failed, 2);
    assert_eq!(s.failures(None).unwrap()[0].attempts, 2);

    // A changed file is tried again without being asked; success clears its failure.
    std::fs::write(music(dir.path()).join("00000.flac"), b"fixed").unwrap();
    H::refresh(s.as_mut(), dir.path());
    assert_eq!(s.pending(&opts).unwrap(), 1);
    assert_eq!(run_all(s.as_mut(), done, &opts), 1);
    assert_eq!(s.failures(None).unwrap().len(), 1);
    let st = s.status().unwrap();
    assert_eq!((st.fingerprinted_current, st.failed()), (1, 1));
}

pub(crate) fn store_outcome_writes_one_result_without_a_claim<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 2);
    let path = music(dir.path()).join("00000.flac");
    let id = s.track_id_by_path(&path).unwrap().unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let (size, mtime) = (meta.len(), mtime_ns(&meta));
    let job = Job {
        track_id: id,
        path: path.clone(),
        filesize: size,
        mtime_ns: mtime,
    };
    s.store_outcome(&Outcome::Done {
        job: job.clone(),
        analysis: analysis(0.5, Mode::Excerpt),
        computed_ms: 12,
    })
    .unwrap();
    let row = s.track(id).unwrap().unwrap();
    let fp = row.fingerprint.unwrap();
    assert!(fp.current);
    assert!(fp.is_current_for(size, mtime, Mode::Excerpt));
    assert!(!fp.is_current_for(size + 1, mtime, Mode::Excerpt));
    assert!(!fp.is_current_for(size, mtime, Mode::Full));
    assert_eq!(fp.fingerprint, analysis(0.5, Mode::Excerpt).fingerprint);
    assert_eq!(s.status().unwrap().pending, 1);
    assert_eq!(s.pending(&ClaimOptions::default()).unwrap(), 1);

    // A failure found outside a run is recorded like one a run finds.
    let other = s
        .track_id_by_path(&music(dir.path()).join("00001.flac"))
        .unwrap()
        .unwrap();
    let other_meta = std::fs::metadata(music(dir.path()).join("00001.flac")).unwrap();
    s.store_outcome(&Outcome::Failed {
        job: Job {
            track_id: other,
            path: music(dir.path()).join("00001.flac"),
            filesize: other_meta.len(),
            mtime_ns: mtime_ns(&other_meta),
        },
        class: ErrorClass::NotAudio,
        message: "content is text".into(),
        decoders: vec![],
    })
    .unwrap();
    let f = s.failures(None).unwrap();
    assert_eq!((f.len(), f[0].class.as_str()), (1, "not_audio"));

    // A non-finite value is refused and nothing is written.
    let mut bad = analysis(0.9, Mode::Excerpt);
    bad.fingerprint.lufs = f64::NAN;
    assert!(s
        .store_outcome(&Outcome::Done {
            job,
            analysis: bad,
            computed_ms: 1
        })
        .is_err());
    let kept = s.track(id).unwrap().unwrap().fingerprint.unwrap();
    assert_eq!(kept.fingerprint, analysis(0.5, Mode::Excerpt).fingerprint);
}

pub(crate) fn runs_and_paging<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = H::create(dir.path(), 5);
    assert!(s.last_run().unwrap().is_none());
    let r = RunnerId::for_this_process();
    let run = s.begin_run(&r, Mode::Full).unwrap();
    let info = s.last_run().unwrap().unwrap();
    assert_eq!(
        (info.id, info.summary.status, info.mode),
        (run, RunStatus::Running, Mode::Full)
    );
    let summary = RunSummary {
        completed: 4,
        failed: 1,
        skipped: 0,
        wall_sec: 2.5,
        cpu_sec: 4.0,
        status: RunStatus::Finished,
    };
    s.finish_run(run, &summary).unwrap();
    let info = s.last_run().unwrap().unwrap();
    assert_eq!(info.summary, summary);
    assert!(info.finished_at_ms.is_some());
    assert!(s.status().unwrap().last_run.is_some());

    run_all(s.as_mut(), done, &ClaimOptions::default());
    let first = s
        .tracks(
            Page {
                after: None,
                limit: 2,
            },
            TrackFilter::default(),
        )
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = s
        .tracks(
            Page {
                after: Some(first[1].id),
                limit: 10,
            },
            TrackFilter::default(),
        )
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest.iter().all(|t| t.id > first[1].id));
    let unfingerprinted = TrackFilter {
        fingerprinted: Some(false),
        ..Default::default()
    };
    let all = Page {
        after: None,
        limit: 100,
    };
    assert!(s.tracks(all, unfingerprinted).unwrap().is_empty());
    let t = s.track(first[0].id).unwrap().unwrap();
    assert_eq!(t.path, first[0].path);
    assert!(t
        .fingerprint
        .is_some_and(|f| f.current && f.mode == Some(Mode::Excerpt)));
    assert_eq!(s.track_id_by_path(&t.path).unwrap(), Some(t.id));
    assert_eq!(
        s.track_id_by_path(Path::new("/nowhere.flac")).unwrap(),
        None
    );
    assert!(s.track(TrackId(999_999)).unwrap().is_none());
    let roots = s.roots().unwrap();
    assert!(roots.iter().any(|r| t.path.starts_with(r)), "{roots:?}");
}

fn edge(from: TrackId, to: TrackId, rank: u32) -> GraphEdge {
    GraphEdge {
        track_id: from,
        similar_track_id: to,
        distance: rank as f64 / 10.0,
        similarity_score: 1.0 / (1.0 + rank as f64),
        rank,
    }
}

fn graph_state(k: u32) -> GraphState {
    GraphState {
        model: "{\"a\": 1}".into(),
        model_id: format!("test-k{k}"),
        k,
        fitted_on: 3,
        built_at_ms: 1_700_000_000_000,
    }
}

/// The graph: a rebuild replaces every row (the player's own ones too), an update only the
/// rows it names, a track without a fingerprint leaves no row pointing at it, and a bad row
/// writes nothing.
pub(crate) fn the_similarity_graph<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut lib = H::create(dir.path(), 4);
    assert!(lib.graph_state().unwrap().is_none());
    assert!(lib.fingerprints().unwrap().is_empty());
    // Three of four tracks fingerprinted; the fourth fails.
    let r = RunnerId::for_this_process();
    let jobs = lib.claim(&r, 4, LONG, &ClaimOptions::default()).unwrap();
    let ids: Vec<TrackId> = jobs.iter().map(|j| j.track_id).collect();
    let mut outs: Vec<Outcome> = jobs[..3].iter().map(done).collect();
    outs.push(failed(&jobs[3]));
    lib.record(&r, &outs).unwrap();
    let fps = lib.fingerprints().unwrap();
    assert_eq!(fps.iter().map(|f| f.0).collect::<Vec<_>>(), ids[..3]);
    assert_eq!(
        fps[0].1,
        analysis(ids[0].0 as f64, Mode::Excerpt).fingerprint
    );

    // A row left by someone else (the player) goes with a rebuild.
    H::sql(
        dir.path(),
        &format!(
            "INSERT INTO similarity_graph (track_id, similar_track_id, distance, similarity_score, rank)
             VALUES ({}, {}, 0.5, 0.5, 1)",
            ids[3], ids[0]
        ),
    );
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let all = [
        edge(a, b, 1),
        edge(a, c, 2),
        edge(b, a, 1),
        edge(b, c, 2),
        edge(c, b, 1),
        edge(c, a, 2),
    ];
    let state = graph_state(2);
    let counts = lib
        .write_graph(&GraphUpdate {
            state: &state,
            rebuild: true,
            rows_of: &[],
            edges: &all,
            nodes: &[(a, 1), (b, 2), (c, 3)],
            removed: &[],
        })
        .unwrap();
    assert_eq!((counts.rows_written, counts.rows_deleted), (6, 1));
    assert_eq!(lib.graph_state().unwrap(), Some(state.clone()));
    assert_eq!(lib.graph_edges(None).unwrap(), all);
    assert_eq!(lib.graph_edges(Some(b)).unwrap(), all[2..4]);
    assert_eq!(lib.graph_nodes().unwrap(), vec![(a, 1), (b, 2), (c, 3)]);

    // A row of a track whose rows are not being replaced is refused; nothing is written.
    let bad = lib.write_graph(&GraphUpdate {
        state: &state,
        rebuild: false,
        rows_of: &[a],
        edges: &[edge(a, c, 1), edge(b, c, 1)],
        nodes: &[],
        removed: &[],
    });
    assert!(bad.is_err());
    assert_eq!(lib.graph_edges(None).unwrap(), all);
    // A score outside [0, 1] too.
    let mut e = edge(a, c, 1);
    e.similarity_score = 1.5;
    assert!(lib
        .write_graph(&GraphUpdate {
            state: &state,
            rebuild: false,
            rows_of: &[a],
            edges: &[e],
            nodes: &[],
            removed: &[]
        })
        .is_err());
    assert_eq!(lib.graph_edges(None).unwrap(), all);

    // Track c loses its fingerprint: its rows and the rows pointing at it go; a's and b's
    // rows are replaced.
    let counts = lib
        .write_graph(&GraphUpdate {
            state: &state,
            rebuild: false,
            rows_of: &[a, b],
            edges: &[edge(a, b, 1), edge(b, a, 1)],
            nodes: &[(a, 11)],
            removed: &[c],
        })
        .unwrap();
    assert_eq!(counts.rows_written, 2);
    assert_eq!(
        lib.graph_edges(None).unwrap(),
        vec![edge(a, b, 1), edge(b, a, 1)]
    );
    assert_eq!(lib.graph_nodes().unwrap(), vec![(a, 11), (b, 2)]);
    assert_eq!(
        H::sql(
            dir.path(),
            &format!("SELECT COUNT(*) FROM similarity_graph WHERE similar_track_id = {c}")
        ),
        0
    );
    // Another connection sees the same.
    assert_eq!(
        H::reopen(dir.path()).graph_edges(Some(a)).unwrap(),
        vec![edge(a, b, 1)]
    );
}

/// One `#[test]` per conformance check for backend `$h`.
macro_rules! conformance {
    ($module:ident, $h:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn claims_never_hand_a_track_to_two_runners() {
                super::claims_never_hand_a_track_to_two_runners::<$h>();
            }
            #[test]
            fn concurrent_runners_write_each_track_once() {
                super::concurrent_runners_write_each_track_once::<$h>();
            }
            #[test]
            fn a_dead_runners_claims_are_free_at_once_a_live_ones_after_expiry() {
                super::a_dead_runners_claims_are_free_at_once_a_live_ones_after_expiry::<$h>();
            }
            #[test]
            fn record_is_all_or_nothing() {
                super::record_is_all_or_nothing::<$h>();
            }
            #[test]
            fn a_changed_file_is_pending_again() {
                super::a_changed_file_is_pending_again::<$h>();
            }
            #[test]
            fn an_unchanged_failure_waits_for_retry_failed() {
                super::an_unchanged_failure_waits_for_retry_failed::<$h>();
            }
            #[test]
            fn store_outcome_writes_one_result_without_a_claim() {
                super::store_outcome_writes_one_result_without_a_claim::<$h>();
            }
            #[test]
            fn runs_and_paging() {
                super::runs_and_paging::<$h>();
            }
            #[test]
            fn the_similarity_graph() {
                super::the_similarity_graph::<$h>();
            }
        }
    };
}

// ---- the backends ---------------------------------------------------------------------------

/// sonoprint's own SQLite file, filled by a scan of the files.
pub(crate) struct Own;

impl Own {
    fn db(dir: &Path) -> PathBuf {
        dir.join("library.db")
    }

    fn scan(lib: &mut dyn Library, dir: &Path) {
        let files: Vec<ScannedFile> = std::fs::read_dir(music(dir))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let m = std::fs::metadata(&p).unwrap();
                ScannedFile {
                    path: p,
                    filesize: m.len(),
                    mtime_ns: mtime_ns(&m),
                    title: None,
                }
            })
            .collect();
        let cat = lib.catalog().unwrap();
        let scan = cat.begin_scan(&[music(dir)]).unwrap();
        cat.upsert_scanned(&scan, &files).unwrap();
        cat.finish_scan(&scan, &[]).unwrap();
    }
}

impl Harness for Own {
    const CLAIMS: &'static str = "claims";

    fn create(dir: &Path, n: usize) -> Box<dyn Library> {
        make_files(dir, n);
        let mut lib: Box<dyn Library> = Box::new(SqliteLibrary::open(&Own::db(dir)).unwrap());
        Own::scan(lib.as_mut(), dir);
        lib
    }

    fn reopen(dir: &Path) -> Box<dyn Library> {
        Box::new(SqliteLibrary::open(&Own::db(dir)).unwrap())
    }

    fn refresh(lib: &mut dyn Library, dir: &Path) {
        Own::scan(lib, dir);
        assert_eq!(lib.prepare_run().unwrap(), 0);
    }

    fn add_track(lib: &mut dyn Library, dir: &Path, name: &str) {
        std::fs::write(music(dir).join(name), b"another file").unwrap();
        Own::scan(lib, dir);
    }

    fn sql(dir: &Path, sql: &str) -> i64 {
        sql_on(&Own::db(dir), sql)
    }
}

/// The player's database (the migrated kind), its `tracks` pointing at the files.
pub(crate) struct Auralis;

impl Auralis {
    fn db(dir: &Path) -> PathBuf {
        dir.join("library.db")
    }
}

/// The player's schema as its migrations make it (the parts sonoprint reads and writes).
pub(crate) const AURALIS_SCHEMA: &str = "
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title VARCHAR NOT NULL,
    filepath VARCHAR NOT NULL UNIQUE,
    duration FLOAT, sample_rate INTEGER, bit_depth INTEGER, channels INTEGER,
    format VARCHAR, filesize INTEGER,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    fingerprint_status TEXT DEFAULT 'pending',
    fingerprint_computed_at DATETIME,
    fingerprint_error_message TEXT,
    fingerprint_vector TEXT
);
CREATE TABLE track_fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    sub_bass_pct REAL NOT NULL, bass_pct REAL NOT NULL, low_mid_pct REAL NOT NULL,
    mid_pct REAL NOT NULL, upper_mid_pct REAL NOT NULL, presence_pct REAL NOT NULL,
    air_pct REAL NOT NULL,
    lufs REAL NOT NULL, crest_db REAL NOT NULL, bass_mid_ratio REAL NOT NULL,
    tempo_bpm REAL NOT NULL, rhythm_stability REAL NOT NULL, transient_density REAL NOT NULL,
    silence_ratio REAL NOT NULL,
    spectral_centroid REAL NOT NULL, spectral_rolloff REAL NOT NULL, spectral_flatness REAL NOT NULL,
    harmonic_ratio REAL NOT NULL, pitch_stability REAL NOT NULL, chroma_energy REAL NOT NULL,
    dynamic_range_variation REAL NOT NULL, loudness_variation_std REAL NOT NULL,
    peak_consistency REAL NOT NULL,
    stereo_width REAL NOT NULL, phase_correlation REAL NOT NULL,
    fingerprint_version INTEGER NOT NULL DEFAULT 1,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    is_reference INTEGER NOT NULL DEFAULT 0,
    reference_weight REAL NOT NULL DEFAULT 0.0
);
CREATE INDEX idx_fingerprints_track_id ON track_fingerprints(track_id);
CREATE TABLE similarity_graph (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    similar_track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    distance REAL NOT NULL,
    similarity_score REAL NOT NULL,
    rank INTEGER NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
";

impl Harness for Auralis {
    const CLAIMS: &'static str = "sonoprint_claims";

    fn create(dir: &Path, n: usize) -> Box<dyn Library> {
        let files = make_files(dir, n);
        let conn = rusqlite::Connection::open(Auralis::db(dir)).unwrap();
        conn.execute_batch(AURALIS_SCHEMA).unwrap();
        for f in files {
            conn.execute(
                "INSERT INTO tracks (title, filepath) VALUES ('t', ?1)",
                [f.to_str().unwrap()],
            )
            .unwrap();
        }
        drop(conn);
        Auralis::reopen(dir)
    }

    fn reopen(dir: &Path) -> Box<dyn Library> {
        Box::new(AuralisLibrary::open(&Auralis::db(dir), 1).unwrap())
    }

    fn refresh(lib: &mut dyn Library, _dir: &Path) {
        lib.prepare_run().unwrap();
    }

    fn add_track(_lib: &mut dyn Library, dir: &Path, name: &str) {
        let p = music(dir).join(name);
        std::fs::write(&p, b"another file").unwrap();
        sql_on(
            &Auralis::db(dir),
            &format!(
                "INSERT INTO tracks (title, filepath) VALUES ('t', '{}')",
                p.display()
            ),
        );
    }

    fn sql(dir: &Path, sql: &str) -> i64 {
        sql_on(&Auralis::db(dir), sql)
    }
}

/// Runs `sql` on another connection; a query's first column, or the rows changed.
fn sql_on(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    if sql.trim_start().to_ascii_uppercase().starts_with("SELECT") {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    } else {
        conn.execute_batch(sql).unwrap();
        conn.changes() as i64
    }
}

/// A PostgreSQL database, a fresh one per test, on the server named by
/// `SONOPRINT_TEST_POSTGRES` (`scripts/with-postgres.sh` starts one). Without the variable, or
/// with a server that does not answer, the tests fail: they are never skipped.
pub(crate) struct Pg;

/// The test server's URL, or a panic saying how to get one.
pub(crate) fn test_server() -> String {
    match std::env::var("SONOPRINT_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SONOPRINT_TEST_POSTGRES is not set: the PostgreSQL tests need a server. Run the \
             tests as `scripts/with-postgres.sh cargo test --workspace` (it starts a throwaway \
             server), or set SONOPRINT_TEST_POSTGRES=postgres://user@host:port/db"
        ),
    }
}

/// `url` with its database name replaced by `name`.
pub(crate) fn with_dbname(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// Creates a new, empty database on the test server and returns its URL.
pub(crate) fn fresh_database() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let server = test_server();
    let mut c = ::postgres::Client::connect(&server, ::postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot reach the PostgreSQL server of SONOPRINT_TEST_POSTGRES ({}): {e}",
            describe_url(&server)
        )
    });
    let name = format!(
        "sonoprint_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    with_dbname(&server, &name)
}

impl Pg {
    fn url(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("pg_url")).unwrap()
    }
}

impl Harness for Pg {
    const CLAIMS: &'static str = "claims";

    fn create(dir: &Path, n: usize) -> Box<dyn Library> {
        make_files(dir, n);
        let url = fresh_database();
        std::fs::write(dir.join("pg_url"), &url).unwrap();
        let mut lib: Box<dyn Library> = Box::new(PostgresLibrary::open(&url).unwrap());
        Own::scan(lib.as_mut(), dir);
        lib
    }

    fn reopen(dir: &Path) -> Box<dyn Library> {
        Box::new(PostgresLibrary::open(&Pg::url(dir)).unwrap())
    }

    fn refresh(lib: &mut dyn Library, dir: &Path) {
        Own::scan(lib, dir);
        assert_eq!(lib.prepare_run().unwrap(), 0);
    }

    fn add_track(lib: &mut dyn Library, dir: &Path, name: &str) {
        std::fs::write(music(dir).join(name), b"another file").unwrap();
        Own::scan(lib, dir);
    }

    fn sql(dir: &Path, sql: &str) -> i64 {
        let mut c = ::postgres::Client::connect(&Pg::url(dir), ::postgres::NoTls).unwrap();
        if sql.trim_start().to_ascii_uppercase().starts_with("SELECT") {
            c.query_one(sql, &[]).unwrap().get::<_, i64>(0)
        } else {
            c.execute(sql, &[]).unwrap() as i64
        }
    }

    fn inject_fingerprint_failure(dir: &Path, track: i64) {
        let mut c = ::postgres::Client::connect(&Pg::url(dir), ::postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.track_id = {track} THEN RAISE EXCEPTION 'injected failure'; END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER boom BEFORE INSERT ON track_fingerprints
               FOR EACH ROW EXECUTE FUNCTION boom();"
        ))
        .unwrap();
    }

    fn remove_injected_failure(dir: &Path) {
        Pg::sql(dir, "DROP TRIGGER boom ON track_fingerprints");
    }
}

conformance!(own_sqlite, Own);
conformance!(postgres, Pg);
conformance!(auralis, Auralis);
