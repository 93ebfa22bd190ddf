//! The generated OpenAPI document and the OpenSubsonic endpoints, through the real binary on
//! an ephemeral loopback port.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{ok, sonoprint, start, wav, Server};

/// Every route the server has outside `/rest/`, with its method.
const ROUTES: [(&str, &str); 12] = [
    ("get", "/health"),
    ("post", "/fingerprint"),
    ("get", "/metrics"),
    ("get", "/api/v1/tracks"),
    ("get", "/api/v1/tracks/{id}"),
    ("post", "/api/v1/analyze"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/failures"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/tracks/{id}/similar"),
    ("get", "/api/v1/path"),
    ("get", "/api/v1/playlist"),
];

fn serve(data: &Path, args: &[&str]) -> Server {
    let mut all = vec!["serve", "--port", "0", "--jobs", "1"];
    all.extend_from_slice(args);
    let mut c: Command = common::command(data, &all);
    c.env_remove("SONOPRINT_TOKEN").stdin(Stdio::null());
    start(c)
}

/// A library of two scanned WAV files.
fn library(dir: &Path) -> std::path::PathBuf {
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    wav(&music.join("a.wav"), 2.0, 440.0);
    wav(&music.join("b.wav"), 2.0, 660.0);
    let data = dir.join("data");
    ok(sonoprint(&data, &["scan", music.to_str().unwrap()]));
    data
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `subsonic-response` object of a JSON answer.
    fn subsonic(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        let v = self.json();
        let r = v["subsonic-response"].clone();
        assert!(r.is_object(), "{v}");
        assert_eq!(r["version"], "1.16.1", "{r}");
        assert_eq!(r["type"], "sonoprint", "{r}");
        assert_eq!(r["serverVersion"], env!("CARGO_PKG_VERSION"), "{r}");
        assert_eq!(r["openSubsonic"], true, "{r}");
        r
    }

    /// The code of a failed Subsonic answer (HTTP 200).
    fn subsonic_error(&self) -> u64 {
        assert_eq!(self.status, 200, "{}", self.body);
        let r = self.subsonic();
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r["error"]["message"].is_string(), "{r}");
        r["error"]["code"].as_u64().unwrap()
    }
}

fn request(method: &str, url: &str, body: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let r = match (method, body) {
        ("post", Some(b)) => agent.post(url).send(b),
        ("post", None) => agent.post(url).send_empty(),
        _ => agent.get(url).call(),
    };
    let mut r = r.unwrap();
    Reply {
        status: r.status().as_u16(),
        content_type: r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: r.body_mut().read_to_string().unwrap(),
    }
}

fn get(s: &Server, path: &str) -> Reply {
    request("get", &format!("{}{path}", s.base), None)
}

#[test]
fn the_openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let data = library(dir.path());
    let s = serve(&data, &[]);
    let r = get(&s, "/api/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Every route is documented, and every documented route exists on the server.
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    for (method, path) in &expected {
        let url = format!("{}{}", s.base, path.replace("{id}", "1"));
        let r = request(method, &url, Some("{}"));
        // The fallback's answer is `no such endpoint`; a real route answers anything else.
        assert!(
            !r.body.contains("no such endpoint"),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"][r.status.to_string()].is_object(),
            "{method} {path}: status {} is not documented",
            r.status
        );
    }

    // Optional authentication: none, or the bearer token; /health never needs it.
    assert_eq!(doc["security"], serde_json::json!([{}, {"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["paths"]["/health"]["get"]["security"],
        serde_json::json!([{}])
    );

    // Integer ranges.
    let params = doc["paths"]["/api/v1/tracks"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["FingerprintRequest"]["properties"]["track_id"]["maximum"],
        u64::from(u32::MAX)
    );

    // Non-empty paths.
    assert_eq!(
        schemas["FingerprintRequest"]["properties"]["filepath"]["minLength"],
        1
    );
    assert_eq!(
        schemas["AnalyzeRequest"]["properties"]["path"]["minLength"],
        1
    );

    // The failure classes as an enum, in the error body and the failures filter.
    let classes: Vec<&str> = schemas["AnalysisClass"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(classes.contains(&"not_audio") && classes.contains(&"timeout"));
    let error_classes = schemas["Error"]["properties"]["class"]["enum"]
        .as_array()
        .unwrap();
    for c in &classes {
        assert!(error_classes.contains(&Value::from(*c)), "{c}");
    }
    let failures = doc["paths"]["/api/v1/failures"]["get"]["parameters"][0]["schema"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(failures.len(), classes.len());

    // The 25 dimensions with their ranges.
    let fp = &schemas["Fingerprint"];
    let props = fp["properties"].as_object().unwrap();
    assert_eq!(props.len(), 25);
    assert_eq!(fp["required"].as_array().unwrap().len(), 25);
    for (name, p) in props {
        let (lo, hi) = (
            p["minimum"].as_f64().unwrap(),
            p["maximum"].as_f64().unwrap(),
        );
        assert!(lo < hi, "{name}");
    }
    assert_eq!(props["lufs"]["minimum"], -70.0);
}

#[test]
fn opensubsonic_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = library(dir.path());
    let s = serve(&data, &[]);

    for path in [
        "/rest/ping?f=json",
        "/rest/ping.view?f=json&v=1.16.1&c=test",
    ] {
        let r = get(&s, path);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.subsonic()["status"], "ok");
    }
    // No token: any credentials a client sends are ignored.
    let r = get(&s, "/rest/ping.view?f=json&u=joe&p=x&apiKey=whatever");
    assert_eq!(r.subsonic()["status"], "ok", "{}", r.body);

    let r = get(&s, "/rest/getOpenSubsonicExtensions.view?f=json");
    let ext = r.subsonic();
    assert_eq!(ext["status"], "ok");
    let list = ext["openSubsonicExtensions"].as_array().unwrap();
    let sonic = list.iter().find(|e| e["name"] == "sonicSimilarity");
    assert_eq!(sonic.unwrap()["versions"], serde_json::json!([1]), "{ext}");

    // Without f (the Subsonic default) and with f=xml: XML.
    for path in ["/rest/ping", "/rest/ping.view?f=xml"] {
        let r = get(&s, path);
        assert_eq!(r.status, 200);
        assert!(
            r.content_type.starts_with("application/xml"),
            "{}",
            r.content_type
        );
        assert!(r.body.starts_with("<?xml"), "{}", r.body);
        assert!(
            r.body.contains("<subsonic-response xmlns=\"http://subsonic.org/restapi\" status=\"ok\" version=\"1.16.1\""),
            "{}",
            r.body
        );
    }
    let r = get(&s, "/rest/getOpenSubsonicExtensions");
    assert!(
        r.body
            .contains("<openSubsonicExtensions name=\"sonicSimilarity\"><versions>1</versions>"),
        "{}",
        r.body
    );

    // An unknown endpoint: 404, in the envelope.
    let r = get(&s, "/rest/noSuchThing.view?f=json");
    assert_eq!(r.status, 404);
    assert_eq!(r.subsonic()["status"], "failed");
}

#[test]
fn opensubsonic_api_key_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = library(dir.path());
    let s = serve(&data, &["--token", "s3cret"]);

    // The key is required: missing parameter (10), wrong key (44), u/p instead (42), both (43).
    assert_eq!(get(&s, "/rest/ping.view?f=json").subsonic_error(), 10);
    let r = get(&s, "/rest/ping.view?f=json");
    assert!(
        r.subsonic()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("apiKey"),
        "{}",
        r.body
    );
    assert_eq!(
        get(&s, "/rest/ping.view?f=json&apiKey=wrong").subsonic_error(),
        44
    );
    assert_eq!(
        get(&s, "/rest/ping.view?f=json&u=joe&p=s3cret").subsonic_error(),
        42
    );
    assert_eq!(
        get(&s, "/rest/ping.view?f=json&u=joe&apiKey=s3cret").subsonic_error(),
        43
    );
    let r = get(&s, "/rest/ping.view?f=json&apiKey=s3cret");
    assert_eq!(r.subsonic()["status"], "ok", "{}", r.body);
    // A failure in XML when no format is asked.
    let r = get(&s, "/rest/ping?apiKey=wrong");
    assert!(
        r.body.contains("status=\"failed\"") && r.body.contains("<error code=\"44\""),
        "{}",
        r.body
    );

    // getOpenSubsonicExtensions answers without authentication, as the documents require.
    let r = get(&s, "/rest/getOpenSubsonicExtensions?f=json");
    assert_eq!(r.subsonic()["status"], "ok", "{}", r.body);

    // The apiKey is not a way into the JSON API, which keeps its bearer token.
    assert_eq!(get(&s, "/api/v1/status?apiKey=s3cret").status, 401);
}
