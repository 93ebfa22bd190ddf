//! The similarity graph and answers on generated fingerprints, where the right answer is known,
//! through a real SQLite library.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sonoprint_app::similarity::{
    resolve_track, update_graph, GraphOptions, SimilarQuery, Similarity,
};
use sonoprint_core::{Analysis, Fingerprint, Metadata, Mode, FINGERPRINT_VERSION};
use sonoprint_similarity::synthetic::generate_with;
use sonoprint_similarity::{Graph, Index, Model};
use sonoprint_store::{
    ClaimOptions, GraphEdge, Library, Outcome, RunnerId, ScannedFile, SqliteLibrary, TrackId,
};

fn analysis(fp: &Fingerprint) -> Analysis {
    Analysis {
        fingerprint: *fp,
        metadata: Metadata {
            duration_sec: 180.0,
            sample_rate: 44100,
            channels: 2,
            bits_per_sample: Some(16),
            format: "flac".into(),
            codec: "flac".into(),
            analyzed_sec: 90.0,
            mode: Mode::Excerpt,
            decoder: "symphonia".into(),
            fingerprint_version: FINGERPRINT_VERSION,
            access: "seek".into(),
            duration_known: true,
            truncated: false,
            skipped_packets: 0,
        },
    }
}

/// A library in `dir` whose tracks are `dir/music/<folder>/<name>.flac` with these
/// fingerprints (`None`: the track failed).
struct TestLib {
    dir: PathBuf,
    lib: SqliteLibrary,
    ids: HashMap<String, TrackId>,
}

impl TestLib {
    fn new(dir: &Path) -> TestLib {
        TestLib {
            dir: dir.to_path_buf(),
            lib: SqliteLibrary::open(&dir.join("library.db")).unwrap(),
            ids: HashMap::new(),
        }
    }

    /// Adds (or changes) tracks and records their results.
    fn put(&mut self, tracks: &[(&str, &str, Option<Fingerprint>)]) {
        let root = self.dir.join("music");
        let mut files = Vec::new();
        for (folder, name, _) in tracks {
            let p = root.join(folder).join(format!("{name}.flac"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            // A new size each time, so that a changed track is pending again.
            let old = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            std::fs::write(&p, vec![b'x'; old as usize + 1]).unwrap();
            files.push(p);
        }
        let root = root.canonicalize().unwrap();
        let cat = self.lib.catalog().unwrap();
        let scan = cat.begin_scan(std::slice::from_ref(&root)).unwrap();
        let mut all: Vec<ScannedFile> = Vec::new();
        for e in walk(&root) {
            let m = std::fs::metadata(&e).unwrap();
            all.push(ScannedFile {
                filesize: m.len(),
                mtime_ns: sonoprint_store::mtime_ns(&m),
                title: Some(e.file_stem().unwrap().to_string_lossy().into_owned()),
                path: e,
            });
        }
        cat.upsert_scanned(&scan, &all).unwrap();
        cat.finish_scan(&scan, &[]).unwrap();
        let by_path: HashMap<PathBuf, (&str, &str, &Option<Fingerprint>)> = files
            .iter()
            .zip(tracks)
            .map(|(p, (f, n, fp))| (p.canonicalize().unwrap(), (*f, *n, fp)))
            .collect();
        let r = RunnerId::for_this_process();
        let jobs = self
            .lib
            .claim(
                &r,
                100_000,
                Duration::from_secs(600),
                &ClaimOptions::default(),
            )
            .unwrap();
        let mut outs = Vec::new();
        for job in jobs {
            let Some((folder, name, fp)) = by_path.get(&job.path) else {
                continue;
            };
            self.ids.insert(format!("{folder}/{name}"), job.track_id);
            outs.push(match fp {
                Some(fp) => Outcome::Done {
                    job,
                    analysis: analysis(fp),
                    computed_ms: 1,
                },
                None => Outcome::Failed {
                    job,
                    class: sonoprint_core::ErrorClass::Corrupt,
                    message: "broken".into(),
                    decoders: vec![],
                },
            });
        }
        self.lib.record(&r, &outs).unwrap();
        self.lib.release(&r).unwrap();
    }

    fn id(&self, key: &str) -> TrackId {
        self.ids[key]
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn clustered(n: usize, clusters: usize, seed: u64) -> Vec<(String, String, Option<Fingerprint>)> {
    generate_with(n, clusters, 0.15, seed)
        .into_iter()
        .map(|t| {
            (
                format!("album{}", t.cluster),
                format!("t{:03}", t.id),
                Some(t.fingerprint),
            )
        })
        .collect()
}

fn refs(v: &[(String, String, Option<Fingerprint>)]) -> Vec<(&str, &str, Option<Fingerprint>)> {
    v.iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
        .collect()
}

/// The graph that a full build with the stored model gives now.
fn expected_graph(lib: &dyn Library) -> Vec<GraphEdge> {
    let state = lib.graph_state().unwrap().unwrap();
    let model: Model = serde_json::from_str(&state.model).unwrap();
    let tracks: Vec<(i64, Fingerprint)> = lib
        .fingerprints()
        .unwrap()
        .into_iter()
        .map(|(id, fp)| (id.0, fp))
        .collect();
    let index = Index::build(model, &tracks).unwrap();
    Graph::build(&index, state.k as usize)
        .edges()
        .map(|e| GraphEdge {
            track_id: TrackId(e.track_id),
            similar_track_id: TrackId(e.similar_track_id),
            distance: f64::from(e.distance),
            similarity_score: f64::from(e.similarity_score),
            rank: e.rank,
        })
        .collect()
}

fn folder_of(lib: &dyn Library, id: TrackId) -> PathBuf {
    lib.track(id)
        .unwrap()
        .unwrap()
        .path
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_graph_finds_the_clusters_and_updates_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLib::new(dir.path());
    let mut tracks = clustered(80, 4, 7);
    tracks.push(("album0".into(), "broken".into(), None));
    t.put(&refs(&tracks));

    let report = update_graph(
        &mut t.lib,
        &GraphOptions {
            k: Some(5),
            rebuild: false,
            weights: None,
        },
    )
    .unwrap();
    assert!(report.rebuilt, "{report:?}");
    assert_eq!((report.tracks, report.k, report.rows_written), (80, 5, 400));
    let edges = t.lib.graph_edges(None).unwrap();
    assert_eq!(edges, expected_graph(&t.lib));
    // Well-separated clusters: every neighbour is from the track's own album.
    let same = edges
        .iter()
        .filter(|e| folder_of(&t.lib, e.track_id) == folder_of(&t.lib, e.similar_track_id))
        .count();
    assert_eq!(same, edges.len());
    // The failed track has no row and nothing points at it.
    let broken = t.id("album0/broken");
    assert!(edges
        .iter()
        .all(|e| e.track_id != broken && e.similar_track_id != broken));
    assert!(edges
        .iter()
        .all(|e| (0.0..=1.0).contains(&e.similarity_score)));

    // Nothing changed: nothing recomputed.
    let again = update_graph(&mut t.lib, &GraphOptions::default()).unwrap();
    assert!(!again.rebuilt);
    assert_eq!(
        (again.changed, again.recomputed, again.rows_written),
        (0, 0, 0)
    );
    assert_eq!(t.lib.graph_edges(None).unwrap(), edges);

    // Three tracks move to another album's sound, two new ones arrive, one loses its
    // fingerprint (its file now fails): the update touches only their neighbourhoods and
    // equals a full build with the same model.
    let other = clustered(80, 4, 8);
    let mut changes: Vec<(&str, &str, Option<Fingerprint>)> = (1..4)
        .map(|i| (tracks[i].0.as_str(), tracks[i].1.as_str(), other[i * 20].2))
        .collect();
    changes.push(("album3", "new1", other[11].2));
    changes.push(("album3", "new2", other[12].2));
    let first = tracks[0].clone();
    changes.push((first.0.as_str(), first.1.as_str(), None));
    let model_before = t.lib.graph_state().unwrap().unwrap().model_id;
    t.put(&changes);
    let upd = update_graph(&mut t.lib, &GraphOptions::default()).unwrap();
    assert!(!upd.rebuilt, "{upd:?}");
    assert_eq!(upd.model, model_before);
    assert_eq!((upd.changed, upd.removed), (5, 1));
    assert!(upd.recomputed < upd.tracks / 2, "{upd:?}");
    assert_eq!(t.lib.graph_edges(None).unwrap(), expected_graph(&t.lib));
    let gone = t.id(&format!("{}/{}", first.0, first.1));
    assert!(t
        .lib
        .graph_edges(None)
        .unwrap()
        .iter()
        .all(|e| e.track_id != gone && e.similar_track_id != gone));

    // A new k rebuilds; so does --rebuild, with the next model generation.
    let k3 = update_graph(
        &mut t.lib,
        &GraphOptions {
            k: Some(3),
            rebuild: false,
            weights: None,
        },
    )
    .unwrap();
    assert!(k3.rebuilt && k3.reason.contains("k changed"), "{k3:?}");
    let rb = update_graph(
        &mut t.lib,
        &GraphOptions {
            k: None,
            rebuild: true,
            weights: None,
        },
    )
    .unwrap();
    assert_eq!((rb.k, rb.model_generation), (3, k3.model_generation + 1));
}

#[test]
fn more_than_a_tenth_changed_refits_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLib::new(dir.path());
    t.put(&refs(&clustered(40, 4, 1)));
    let first = update_graph(&mut t.lib, &GraphOptions::default()).unwrap();
    assert_eq!(first.k, 10);
    let more: Vec<_> = clustered(60, 4, 2)
        .into_iter()
        .skip(40)
        .map(|(_, n, fp)| ("extra".to_string(), n, fp))
        .collect();
    t.put(&refs(&more));
    let second = update_graph(&mut t.lib, &GraphOptions::default()).unwrap();
    assert!(
        second.rebuilt && second.reason.contains("changed"),
        "{second:?}"
    );
    assert_eq!(second.model_generation, first.model_generation + 1);
    assert_eq!(second.model_fitted_on, 60);
}

#[test]
fn similar_shows_the_same_audio_once_and_keeps_out_the_folder_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLib::new(dir.path());
    let mut tracks = clustered(40, 4, 3);
    let twin = tracks[5].2;
    let query_key = format!("{}/{}", tracks[5].0, tracks[5].1);
    tracks.push(("copies".into(), "twin".into(), twin));
    t.put(&refs(&tracks));
    update_graph(&mut t.lib, &GraphOptions::default()).unwrap();
    let sim = Similarity::load(&t.lib).unwrap();
    let q = t.id(&query_key);
    let ans = sim
        .similar(
            &t.lib,
            q,
            &SimilarQuery {
                n: 5,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ans.model, sim.model_id());
    assert!(ans.note.is_none());
    assert_eq!(ans.results.len(), 5);
    let first = &ans.results[0];
    assert!(first.same_audio_as_query, "{first:?}");
    assert_eq!(first.track.id, t.id("copies/twin").0);
    assert_eq!(first.score, 1.0);
    assert!(ans.results[1..]
        .iter()
        .all(|r| !r.same_audio_as_query && r.score < 1.0));
    assert!(ans
        .results
        .windows(2)
        .all(|w| w[0].distance <= w[1].distance));
    assert!(ans.results.iter().all(|r| r.closest_dimensions.len() == 3));
    // The query's album mates are its neighbours; excluding its folder removes them.
    let own = folder_of(&t.lib, q);
    let excl = sim
        .similar(
            &t.lib,
            q,
            &SimilarQuery {
                n: 5,
                exclude_same_folder: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(excl.results.len(), 5);
    assert!(excl
        .results
        .iter()
        .all(|r| r.track.path.parent().unwrap() != own));
    // A minimum score leaves out the rest.
    let strict = sim
        .similar(
            &t.lib,
            q,
            &SimilarQuery {
                n: 5,
                min_score: 0.999,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(strict.results.len(), 1);
    // Unknown and unfingerprinted tracks are errors that say so.
    let e = sim
        .similar(&t.lib, TrackId(999_999), &SimilarQuery::default())
        .unwrap_err();
    assert!(e.to_string().contains("no track 999999"), "{e}");
    // Tracks are named by path or id.
    let path = t.lib.track(q).unwrap().unwrap().path;
    assert_eq!(resolve_track(&t.lib, path.to_str().unwrap()).unwrap(), q);
    assert_eq!(resolve_track(&t.lib, &q.0.to_string()).unwrap(), q);
}

#[test]
fn a_path_along_a_line_moves_toward_the_end_and_a_playlist_spreads_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLib::new(dir.path());
    // 30 tracks on a straight line from A to B (every dimension interpolated), plus noise
    // tracks around, in 3 folders.
    let base = generate_with(60, 3, 0.4, 11);
    let a = base[0].fingerprint.to_array();
    let b = base[1].fingerprint.to_array();
    let mut tracks: Vec<(String, String, Option<Fingerprint>)> = Vec::new();
    for i in 0..30 {
        let s = i as f64 / 29.0;
        let mut v = [0.0; 25];
        for d in 0..25 {
            v[d] = a[d] + (b[d] - a[d]) * s;
        }
        tracks.push((
            format!("f{}", i % 3),
            format!("line{i:02}"),
            Some(Fingerprint::from_array(v)),
        ));
    }
    for x in &base[2..] {
        tracks.push((
            format!("f{}", x.cluster),
            format!("noise{:02}", x.id),
            Some(x.fingerprint),
        ));
    }
    t.put(&refs(&tracks));
    let sim = Similarity::load(&t.lib).unwrap();
    assert!(sim
        .similar(&t.lib, t.id("f0/line00"), &SimilarQuery::default())
        .unwrap()
        .note
        .is_some());
    let (ia, ib) = (t.id("f0/line00"), t.id("f2/line29"));
    let p = sim.path(&t.lib, ia, ib, 10).unwrap();
    assert_eq!(p.tracks.first().unwrap().track.id, ia.0);
    assert_eq!(p.tracks.last().unwrap().track.id, ib.0);
    assert_eq!(p.tracks.len(), 10);
    let to_end: Vec<f64> = p
        .tracks
        .iter()
        .map(|s| s.distance_to_end.unwrap())
        .collect();
    assert!(to_end.windows(2).all(|w| w[1] < w[0]), "{to_end:?}");
    let mut ids: Vec<i64> = p.tracks.iter().map(|s| s.track.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "no track twice");

    let pl = sim.playlist(&t.lib, &[ia], 12, 1).unwrap();
    assert_eq!(pl.tracks.len(), 12);
    assert!(pl.tracks[0].seed && pl.tracks[0].track.id == ia.0);
    let folders: Vec<PathBuf> = pl
        .tracks
        .iter()
        .map(|s| s.track.path.parent().unwrap().to_path_buf())
        .collect();
    assert!(folders.windows(2).all(|w| w[0] != w[1]), "{folders:?}");
    let m3u = sonoprint_app::similarity::m3u(&pl);
    assert!(m3u.starts_with("#EXTM3U\n#EXTINF:180,line00\n"), "{m3u}");
    assert_eq!(m3u.lines().count(), 1 + 2 * 12);
}
