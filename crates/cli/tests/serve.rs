//! `sonoprint serve` as the real binary on an ephemeral loopback port, with a real HTTP client.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sonoprint_engine::Fingerprint;

mod common;
use common::{start, wav, Server};

fn command(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sonoprint"));
    c.arg("--data-dir")
        .arg(data)
        .arg("serve")
        .args(args)
        .env_remove("SONOPRINT_HOME")
        .env_remove("SONOPRINT_TOKEN")
        .env_remove("SONOPRINT_AURALIS")
        .stdin(Stdio::null());
    c
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// An error answer: status, `error` and `class`.
    fn error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        assert!(v["error"].is_string(), "{v}");
        assert!(v["class"].is_string(), "{v}");
        v
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap();
    Reply {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: r.body_mut().read_to_string().unwrap(),
    }
}

fn get(s: &Server, path: &str) -> Reply {
    reply(agent().get(format!("{}{path}", s.base)).call())
}

fn post(s: &Server, path: &str, body: &str) -> Reply {
    reply(
        agent()
            .post(format!("{}{path}", s.base))
            .header("Content-Type", "text/plain")
            .send(body),
    )
}

fn fingerprint(s: &Server, path: &Path) -> Reply {
    let body = json!({"track_id": 7, "filepath": path, "extra": "ignored"}).to_string();
    post(s, "/fingerprint", &body)
}

/// music/ with good, broken and non-audio files; outside/ with a good file; a symlink from
/// music/ to outside/.
fn folders(dir: &Path) -> (PathBuf, PathBuf) {
    let music = dir.join("music");
    let outside = dir.join("outside");
    fs::create_dir_all(music.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    wav(&music.join("a.wav"), 3.0, 440.0);
    wav(&music.join("sub/b.wav"), 2.0, 660.0);
    wav(&outside.join("secret.wav"), 2.0, 330.0);
    fs::write(music.join("text.flac"), "this is not audio\n".repeat(50)).unwrap();
    fs::write(music.join("empty.wav"), b"").unwrap();
    let good = fs::read(music.join("a.wav")).unwrap();
    fs::write(music.join("cut.wav"), &good[..2000]).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.wav"), music.join("link.wav")).unwrap();
    (music, outside)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn compatible_endpoints_library_cache_and_access() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (music, outside) = folders(dir.path());
    let scan = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .arg("--data-dir")
        .arg(&data)
        .arg("scan")
        .arg(&music)
        .output()
        .unwrap();
    assert!(scan.status.success(), "{scan:?}");
    // No --root: the library's scanned folder is the allowed root.
    let s = start(command(&data, &["--port", "0", "--jobs", "1"]));

    // /health: exactly these three fields.
    let h = get(&s, "/health");
    assert_eq!(h.status, 200);
    let h = h.json();
    let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "version", "uptime_sec"]);
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["uptime_sec"].is_u64());

    // /fingerprint: computed the first time, with the contract's shape.
    let a = music.join("a.wav");
    let r = fingerprint(&s, &a);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["track_id"], 7);
    let names: Vec<&str> = v["fingerprint"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, Fingerprint::NAMES);
    assert!(v["fingerprint"]
        .as_object()
        .unwrap()
        .values()
        .all(Value::is_f64));
    let m = &v["metadata"];
    assert!(
        (m["duration_sec"].as_f64().unwrap() - 3.0).abs() < 0.01,
        "{m}"
    );
    assert_eq!(m["sample_rate"], 22050);
    assert_eq!(m["channels"], 1);
    assert_eq!(m["format"], "wav");
    assert!(v["processing_time_ms"].is_u64());
    assert_eq!(v["cached"], false);

    // Again: answered from the library, no second decode.
    let r2 = fingerprint(&s, &a);
    assert_eq!(r2.status, 200, "{}", r2.body);
    let v2 = r2.json();
    assert_eq!(v2["cached"], true);
    assert_eq!(v2["fingerprint"], v["fingerprint"]);
    assert_eq!(v2["metadata"]["sample_rate"], 22050);
    assert_eq!(v2["metadata"]["format"], "wav");
    let metrics = get(&s, "/metrics").body;
    assert_eq!(
        metric(&metrics, "sonoprint_fingerprints_computed_total"),
        1.0
    );
    assert_eq!(metric(&metrics, "sonoprint_fingerprints_cached_total"), 1.0);
    assert!(
        metrics.contains("sonoprint_http_requests_total{route=\"/fingerprint\",status=\"200\"} 2")
    );
    assert!(metrics.contains("sonoprint_analysis_duration_seconds_count 1"));
    assert!(metrics.contains("sonoprint_queue_depth 0"));

    // Status codes of the contract.
    assert!(fingerprint(&s, &music.join("nope.wav")).error(404)["error"]
        .as_str()
        .unwrap()
        .contains("not found"));
    fingerprint(&s, &music.join("text.flac")).error(415);
    for broken in ["empty.wav", "cut.wav"] {
        let e = fingerprint(&s, &music.join(broken)).error(400);
        assert!(
            e["error"].as_str().unwrap().contains("appears corrupted"),
            "{e}"
        );
    }
    assert_eq!(
        post(&s, "/fingerprint", "{not json").error(400)["class"],
        "bad_request"
    );
    post(&s, "/fingerprint", r#"{"filepath": "/x"}"#).error(400);
    // track_id is a JSON Schema integer: 7.0 is 7; 7.5, -1 and 2^32 are not.
    let whole = json!({"track_id": 7.0, "filepath": a}).to_string();
    assert_eq!(post(&s, "/fingerprint", &whole).json()["track_id"], 7);
    for bad in ["7.5", "-1", "4294967296"] {
        let body = format!(r#"{{"track_id": {bad}, "filepath": {}}}"#, json!(a));
        let e = post(&s, "/fingerprint", &body).error(400);
        assert!(e["error"].as_str().unwrap().contains("track_id"), "{e}");
    }
    let big = format!(
        r#"{{"track_id": 1, "filepath": "{}", "pad": "{}"}}"#,
        a.display(),
        "x".repeat(70 * 1024)
    );
    post(&s, "/fingerprint", &big).error(413);

    // Escapes: `..`, a symlink out of the root, an absolute path elsewhere, a relative path.
    let dotdot = format!("{}/../outside/secret.wav", music.display());
    for p in [
        PathBuf::from(dotdot),
        music.join("link.wav"),
        outside.join("secret.wav"),
        PathBuf::from("/etc/passwd"),
        PathBuf::from("music/a.wav"),
    ] {
        assert_eq!(
            fingerprint(&s, &p).error(403)["class"],
            "forbidden",
            "{}",
            p.display()
        );
    }

    // /api/v1.
    let st = get(&s, "/api/v1/status");
    assert_eq!(st.status, 200);
    let st = st.json();
    assert_eq!(st["fingerprinted_current"], 1, "{st}");
    assert!(st["tracks"].as_u64().unwrap() >= 2);
    let t = get(&s, "/api/v1/tracks?fingerprinted=true").json();
    let list = t["tracks"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{t}");
    let id = list[0]["id"].as_i64().unwrap();
    let one = get(&s, &format!("/api/v1/tracks/{id}")).json();
    assert_eq!(one["fingerprint"]["current"], true);
    assert_eq!(one["fingerprint"]["values"], v["fingerprint"]);
    get(&s, "/api/v1/tracks/999999").error(404);
    get(&s, "/api/v1/tracks?limit=0").error(400);
    let page = get(&s, "/api/v1/tracks?limit=1").json();
    assert_eq!(page["tracks"].as_array().unwrap().len(), 1);
    let next = page["next_after"].as_i64().unwrap();
    let page2 = get(&s, &format!("/api/v1/tracks?limit=1&after={next}")).json();
    assert!(page2["tracks"][0]["id"].as_i64().unwrap() > next);
    let an = post(
        &s,
        "/api/v1/analyze",
        &json!({"path": music.join("sub/b.wav")}).to_string(),
    );
    assert_eq!(an.status, 200, "{}", an.body);
    assert_eq!(an.json()["cached"], false);
    let f = get(&s, "/api/v1/failures").json();
    assert!(f["failures"].is_array());
    get(&s, "/api/v1/failures?class=nonsense").error(400);
    let api = get(&s, "/api/v1/openapi.json").json();
    assert!(api["openapi"].as_str().unwrap().starts_with("3."));
    assert!(api["paths"]["/fingerprint"].is_object());
    get(&s, "/no/such/route").error(404);
}

#[test]
fn busy_stuck_and_crashing_decoders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (music, _) = folders(dir.path());
    // WMA: a format only ffmpeg reads.
    let wma = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/wma.wma");
    fs::copy(&wma, music.join("stuck.wma")).unwrap();
    fs::copy(&wma, music.join("crash.wma")).unwrap();
    // A fake ffmpeg/ffprobe: hangs on stuck.wma, kills the worker process on crash.wma.
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in ["ffmpeg", "ffprobe"] {
        let p = bin.join(tool);
        fs::write(
            &p,
            "#!/bin/sh\ncase \"$*\" in\n  *crash*) kill -9 $PPID ;;\n  *) sleep 20 ;;\nesac\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = music.to_string_lossy().into_owned();
    let mut cmd = command(
        &data,
        &[
            "--port",
            "0",
            "--jobs",
            "1",
            "--max-queue",
            "0",
            "--timeout",
            "3",
            "--root",
            &root,
        ],
    );
    cmd.env("SONOPRINT_FFMPEG", bin.join("ffmpeg"));
    let s = start(cmd);

    let stuck = {
        let base = s.base.clone();
        let path = music.join("stuck.wma");
        std::thread::spawn(move || {
            let started = Instant::now();
            let body = json!({"track_id": 1, "filepath": path}).to_string();
            let r = reply(agent().post(format!("{base}/fingerprint")).send(body));
            (r, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    // Every worker is busy: /health still answers, at once; analyses are refused with 503.
    let t = Instant::now();
    assert_eq!(get(&s, "/health").status, 200);
    assert!(t.elapsed() < Duration::from_millis(500));
    let busy = fingerprint(&s, &music.join("a.wav"));
    busy.error(503);
    assert!(busy.retry_after.is_some());
    let metrics = get(&s, "/metrics").body;
    assert!(metrics.contains("sonoprint_workers_busy 1"), "{metrics}");

    let (r, took) = stuck.join().unwrap();
    assert_eq!(r.error(504)["class"], "timeout");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(get(&s, "/health").status, 200);
    // The stuck worker was replaced: the next file is analysed.
    assert_eq!(fingerprint(&s, &music.join("a.wav")).status, 200);

    // A worker process that dies mid-file costs that request only.
    assert_eq!(
        fingerprint(&s, &music.join("crash.wma")).error(500)["class"],
        "panic"
    );
    assert_eq!(get(&s, "/health").status, 200);
    assert_eq!(fingerprint(&s, &music.join("sub/b.wav")).status, 200);
    let metrics = get(&s, "/metrics").body;
    assert!(metrics.contains("sonoprint_analysis_failures_total{class=\"timeout\"} 1"));
    assert!(metrics.contains("sonoprint_analysis_failures_total{class=\"panic\"} 1"));
    assert!(metrics.contains("sonoprint_rejected_total 1"));
}

#[test]
fn token_when_bound_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (music, _) = folders(dir.path());
    let root = music.to_string_lossy().into_owned();

    // Not loopback and no token: refused before listening.
    let out = command(
        &data,
        &["--bind", "0.0.0.0", "--port", "0", "--root", &root],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));

    let s = start(command(
        &data,
        &[
            "--bind", "0.0.0.0", "--port", "0", "--root", &root, "--token", "s3cret",
        ],
    ));
    assert_eq!(get(&s, "/health").status, 200);
    assert_eq!(
        get(&s, "/api/v1/status").error(401)["class"],
        "unauthorized"
    );
    fingerprint(&s, &music.join("a.wav")).error(401);
    let with = |token: &str| {
        reply(
            agent()
                .get(format!("{}/api/v1/status", s.base))
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
    };
    assert_eq!(with("wrong").status, 401);
    assert_eq!(with("s3cret").status, 200);
}

#[test]
fn port_in_use_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (music, _) = folders(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = music.to_string_lossy().into_owned();
    let out = command(
        &dir.path().join("data"),
        &["--port", &port, "--root", &root],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("sonoprint: cannot listen on"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (music, _) = folders(dir.path());
    let root = music.to_string_lossy().into_owned();
    let mut s = start(command(
        &dir.path().join("data"),
        &["--port", "0", "--root", &root],
    ));
    assert_eq!(get(&s, "/health").status, 200);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn failures_are_recorded_and_a_lost_write_is_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (music, _) = folders(dir.path());
    let scan = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .arg("--data-dir")
        .arg(&data)
        .arg("scan")
        .arg(&music)
        .output()
        .unwrap();
    assert!(scan.status.success(), "{scan:?}");
    let s = start(command(&data, &["--port", "0", "--jobs", "1"]));

    // A broken library file: an error, and its failure is in the library as a run puts it.
    let broken = fingerprint(&s, &music.join("cut.wav"));
    assert!(
        broken.status == 400 || broken.status == 415,
        "{}",
        broken.body
    );
    let failures = Command::new(env!("CARGO_BIN_EXE_sonoprint"))
        .arg("--data-dir")
        .arg(&data)
        .args(["failures", "--json"])
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&failures.stdout).unwrap();
    let f = f.as_array().unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0]["path"].as_str().unwrap().ends_with("cut.wav"), "{f:?}");
    assert_eq!(f[0]["class"], broken.json()["class"]);

    // A result the library cannot take is an error for the client, never a 200.
    let db = rusqlite::Connection::open(data.join("library.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON track_fingerprints
         BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END;",
    )
    .unwrap();
    let v = fingerprint(&s, &music.join("a.wav")).error(500);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("could not be written"),
        "{v}"
    );
    let m = get(&s, "/metrics").body;
    assert_eq!(metric(&m, "sonoprint_store_errors_total"), 1.0, "{m}");
    db.execute_batch("DROP TRIGGER test_refuse").unwrap();
    let r = fingerprint(&s, &music.join("a.wav"));
    assert_eq!(
        (r.status, r.json()["cached"].as_bool()),
        (200, Some(false)),
        "{}",
        r.body
    );
    assert_eq!(fingerprint(&s, &music.join("a.wav")).json()["cached"], true);

    // Malformed query strings get the JSON error.
    for q in [
        "limit=%FF%FE",
        "limit=%",
        "state=%00&state=gone",
        "after=1e99",
    ] {
        get(&s, &format!("/api/v1/tracks?{q}")).error(400);
    }
}
