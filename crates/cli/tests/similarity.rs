//! `graph`, `run --graph`, `similar`, `path` and `playlist` through the real binary, on
//! generated WAVs in three "albums" whose sound differs (low tones, middle tones, high
//! tones), and a copy of one file under another path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{ok, sonoprint, wav};

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    music: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let music = root.join("music");
    for (album, freqs) in [
        ("low", [70.0, 85.0, 100.0, 115.0]),
        ("mid", [700.0, 800.0, 900.0, 1000.0]),
        ("high", [4000.0, 4600.0, 5200.0, 5800.0]),
    ] {
        std::fs::create_dir_all(music.join(album)).unwrap();
        for (i, f) in freqs.iter().enumerate() {
            wav(&music.join(album).join(format!("{album}{i}.wav")), 3.0, *f);
        }
    }
    std::fs::create_dir_all(music.join("copies")).unwrap();
    std::fs::copy(
        music.join("low/low0.wav"),
        music.join("copies/low0-copy.wav"),
    )
    .unwrap();
    Fixture {
        _tmp: tmp,
        data: root.join("data"),
        music,
    }
}

impl Fixture {
    fn ok(&self, args: &[&str]) -> String {
        ok(sonoprint(&self.data, args))
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn path(&self, rel: &str) -> String {
        self.music.join(rel).to_str().unwrap().to_string()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data.join("library.db")).unwrap()
    }
}

fn album(track: &Value) -> String {
    Path::new(track["path"].as_str().unwrap())
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn graph_similar_path_and_playlist() {
    let fx = fixture();
    fx.ok(&["scan", fx.music.to_str().unwrap()]);
    let out = fx.ok(&["run", "--jobs", "2", "--graph"]);
    assert!(out.contains("Similarity graph of 13 tracks built"), "{out}");

    // The player's table and columns, k = 10 rows per track, ranks 1..10.
    let db = fx.db();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM similarity_graph", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 13 * 10);
    let bad: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM similarity_graph WHERE similarity_score < 0
             OR similarity_score > 1 OR rank < 1 OR rank > 10 OR track_id = similar_track_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);

    // The copy is the same audio: shown first, flagged, once; then the query's album mates.
    let q = fx.path("low/low0.wav");
    let v = fx.json(&["similar", &q, "-n", "3", "--json"]);
    assert!(v["model"].as_str().unwrap().starts_with('g'), "{v}");
    assert!(v["note"].is_null(), "{v}");
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0]["track"]["path"], fx.path("copies/low0-copy.wav"));
    assert_eq!(res[0]["same_audio_as_query"], true);
    for r in &res[1..] {
        assert_eq!(album(&r["track"]), "low", "{v}");
        assert_eq!(r["same_audio_as_query"], false);
        assert!(r["score"].as_f64().unwrap() < 1.0);
        assert_eq!(r["closest_dimensions"].as_array().unwrap().len(), 3);
    }
    // By id, and without the query's folder.
    let id = v["query"]["id"].as_i64().unwrap().to_string();
    let v = fx.json(&["similar", &id, "-n", "4", "--exclude-folder", "--json"]);
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| album(&r["track"]) != "low"));
    let table = fx.ok(&["similar", &q, "-n", "2"]);
    assert!(table.contains("[same audio as the query]"), "{table}");
    // Errors say what is wrong.
    let out = sonoprint(&fx.data, &["similar", "999999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no track 999999"));
    let out = sonoprint(&fx.data, &["similar", "/no/such/file.flac"]);
    assert!(!out.status.success());

    // A path from low to high: moves toward the end at every step, no track twice.
    let m3u = fx.data.join("path.m3u");
    let v = fx.json(&[
        "path",
        &q,
        &fx.path("high/high3.wav"),
        "--length",
        "5",
        "--m3u",
        m3u.to_str().unwrap(),
        "--json",
    ]);
    let steps = v["tracks"].as_array().unwrap();
    assert!(steps.len() >= 2 && steps.len() <= 5, "{v}");
    assert_eq!(steps[0]["track"]["path"], q);
    assert_eq!(
        steps.last().unwrap()["track"]["path"],
        fx.path("high/high3.wav")
    );
    let to_end: Vec<f64> = steps
        .iter()
        .map(|s| s["distance_to_end"].as_f64().unwrap())
        .collect();
    assert!(to_end.windows(2).all(|w| w[1] < w[0]), "{to_end:?}");
    let text = std::fs::read_to_string(&m3u).unwrap();
    assert!(text.starts_with("#EXTM3U\n#EXTINF:3,"), "{text}");
    assert_eq!(text.lines().count(), 1 + 2 * steps.len());

    // A playlist around a mid track, never the same folder twice in a row.
    let v = fx.json(&[
        "playlist",
        "--seed",
        &fx.path("mid/mid1.wav"),
        "--length",
        "6",
        "--no-repeat-folder",
        "1",
        "--json",
    ]);
    let tracks = v["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 6);
    assert_eq!(tracks[0]["seed"], true);
    let albums: Vec<String> = tracks.iter().map(|t| album(&t["track"])).collect();
    assert!(albums.windows(2).all(|w| w[0] != w[1]), "{albums:?}");
    // Without the rule: the nearest first, starting with an album mate of the seed.
    let v = fx.json(&[
        "playlist",
        "--seed",
        &fx.path("mid/mid1.wav"),
        "--length",
        "4",
        "--json",
    ]);
    let tracks = v["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 4);
    assert_eq!(album(&tracks[1]["track"]), "mid", "{v}");
    let d: Vec<f64> = tracks[1..]
        .iter()
        .map(|t| t["distance"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");

    // `graph` again: nothing changed, nothing recomputed; a weights file rebuilds.
    let again = fx.json(&["graph", "--json"]);
    assert_eq!(again["recomputed"], 0, "{again}");
    assert_eq!(again["rebuilt"], false);
    let w = fx.data.join("weights.json");
    std::fs::write(&w, r#"{"tempo_bpm": 0, "spectral_centroid": 3}"#).unwrap();
    let rb = fx.json(&["graph", "--weights", w.to_str().unwrap(), "--json"]);
    assert_eq!(rb["rebuilt"], true);
    assert_eq!(rb["reason"], "new weights");
    std::fs::write(&w, r#"{"tempo": 1}"#).unwrap();
    let out = sonoprint(&fx.data, &["graph", "--weights", w.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dimension is called \"tempo\""));
}

#[test]
fn graph_needs_enough_fingerprints_and_says_so() {
    let fx = fixture();
    fx.ok(&["scan", fx.music.to_str().unwrap()]);
    let out = sonoprint(&fx.data, &["graph"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at least 10 fingerprinted tracks") && err.contains("sonoprint run"),
        "{err}"
    );
}

fn http_get(url: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut r = agent.get(url).call().unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

#[test]
fn similarity_over_http_and_opensubsonic() {
    let fx = fixture();
    fx.ok(&["scan", fx.music.to_str().unwrap()]);
    fx.ok(&["run", "--jobs", "2", "--graph"]);
    let id_of = |rel: &str| -> i64 {
        fx.db()
            .query_row(
                "SELECT id FROM tracks WHERE filepath = ?1",
                [fx.path(rel)],
                |r| r.get(0),
            )
            .unwrap()
    };
    let (low0, copy, high3, mid1) = (
        id_of("low/low0.wav"),
        id_of("copies/low0-copy.wav"),
        id_of("high/high3.wav"),
        id_of("mid/mid1.wav"),
    );
    let mut cmd = common::command(&fx.data, &["serve", "--port", "0", "--jobs", "1"]);
    cmd.env_remove("SONOPRINT_TOKEN")
        .stdin(std::process::Stdio::null());
    let server = common::start(cmd);
    let base = &server.base;

    let (st, v) = http_get(&format!("{base}/api/v1/tracks/{low0}/similar?count=3"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["query"]["id"], low0);
    assert_eq!(v["results"][0]["track"]["id"], copy);
    assert_eq!(v["results"][0]["same_audio_as_query"], true);
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let (st, v) = http_get(&format!(
        "{base}/api/v1/path?from={low0}&to={high3}&length=5"
    ));
    assert_eq!(st, 200, "{v}");
    let tracks = v["tracks"].as_array().unwrap();
    assert_eq!(tracks[0]["track"]["id"], low0);
    assert_eq!(tracks.last().unwrap()["track"]["id"], high3);
    let (st, v) = http_get(&format!(
        "{base}/api/v1/playlist?seeds={mid1},{low0}&length=5"
    ));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["tracks"].as_array().unwrap().len(), 5);
    assert_eq!(v["tracks"][1]["seed"], true);
    for (url, want) in [
        (format!("{base}/api/v1/tracks/999999/similar"), 404),
        (format!("{base}/api/v1/tracks/0/similar"), 400),
        (format!("{base}/api/v1/tracks/{low0}/similar?count=0"), 400),
        (
            format!("{base}/api/v1/tracks/{low0}/similar?min_score=2"),
            400,
        ),
        (format!("{base}/api/v1/path?from={low0}"), 400),
        (format!("{base}/api/v1/playlist?seeds=x"), 400),
    ] {
        let (st, v) = http_get(&url);
        assert_eq!(st, want, "{url}: {v}");
        assert!(v["error"].is_string() && v["class"].is_string(), "{v}");
    }

    // OpenSubsonic: getSonicSimilarTracks (count defaults to 10), .view, errors 10 and 70.
    let (st, v) = http_get(&format!(
        "{base}/rest/getSonicSimilarTracks.view?id={low0}&f=json"
    ));
    assert_eq!(st, 200);
    let r = &v["subsonic-response"];
    assert_eq!(r["status"], "ok", "{v}");
    let matches = r["sonicMatch"].as_array().unwrap();
    assert_eq!(matches.len(), 10);
    assert_eq!(r["sonicSimilarTracksResult"]["sonicMatch"], r["sonicMatch"]);
    let first = &matches[0];
    assert_eq!(first["entry"]["id"], copy.to_string());
    assert_eq!(first["id"], copy.to_string());
    assert_eq!(first["similarity"], 1.0);
    assert_eq!(first["distance"], 0.0);
    for m in matches {
        for field in [
            "id",
            "title",
            "path",
            "duration",
            "suffix",
            "size",
            "samplingRate",
            "channelCount",
        ] {
            assert!(!m["entry"][field].is_null(), "{field}: {m}");
        }
        let d = m["distance"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&d));
    }
    let (_, v) = http_get(&format!(
        "{base}/rest/getSonicSimilarTracks?id={low0}&count=2&f=json"
    ));
    assert_eq!(
        v["subsonic-response"]["sonicMatch"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, v) = http_get(&format!("{base}/rest/getSonicSimilarTracks?f=json"));
    assert_eq!(v["subsonic-response"]["error"]["code"], 10, "{v}");
    let (_, v) = http_get(&format!(
        "{base}/rest/getSonicSimilarTracks?id=999999&f=json"
    ));
    assert_eq!(v["subsonic-response"]["error"]["code"], 70, "{v}");
    // findSonicPath: the start first, the end last, similarity to the start.
    let (_, v) = http_get(&format!(
        "{base}/rest/findSonicPath?startSongId={low0}&endSongId={high3}&count=5&f=json"
    ));
    let r = &v["subsonic-response"];
    assert_eq!(r["status"], "ok", "{v}");
    let path = r["findSonicPathResult"]["sonicMatch"].as_array().unwrap();
    assert!(path.len() >= 2 && path.len() <= 5);
    assert_eq!(path[0]["entry"]["id"], low0.to_string());
    assert_eq!(path[0]["similarity"], 1.0);
    assert_eq!(path.last().unwrap()["entry"]["id"], high3.to_string());
    let (_, v) = http_get(&format!(
        "{base}/rest/findSonicPath?startSongId={low0}&f=json"
    ));
    assert_eq!(v["subsonic-response"]["error"]["code"], 10, "{v}");
    let (_, v) = http_get(&format!("{base}/rest/getOpenSubsonicExtensions?f=json"));
    assert_eq!(
        v["subsonic-response"]["openSubsonicExtensions"][0]["name"],
        "sonicSimilarity"
    );
    drop(server);
}
