//! The OpenSubsonic face of the server under `/rest/`, following the OpenSubsonic documents
//! (opensubsonic.netlify.app): `ping` and `getOpenSubsonicExtensions`, and the shared pieces
//! every endpoint of the `sonicSimilarity` extension uses.
//!
//! - Every endpoint answers at `/rest/NAME` and `/rest/NAME.view`, to GET.
//! - `f=json` answers JSON; `f=xml`, or no `f` (the Subsonic default), answers XML; any
//!   other `f` (such as `jsonp`) answers JSON.
//! - Every answer, success or failure, is HTTP 200 with the `subsonic-response` envelope
//!   (`status` `ok` or `failed` with `error {code, message}`), as Subsonic clients expect; only
//!   an unknown `/rest/` endpoint is a 404, in the envelope too.
//! - Without `--token` nothing is checked (the server then listens on loopback only), whatever
//!   credentials a client sends. With a token, every endpoint but `getOpenSubsonicExtensions`
//!   (which the documents require to answer without authentication) needs `apiKey=TOKEN`:
//!   missing is error 10, wrong is 44, `u`/`p`/`t`/`s` instead are 42, `apiKey` with any of
//!   them is 43.
//!
//! Adding an endpoint: a handler taking [`SubsonicQuery`] that returns `q.reply(result)` with
//! `result: Result<Payload, SubsonicError>`, registered with [`routes`]'s `rest(...)` line.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, MethodRouter};
use axum::Router;
use serde_json::{json, Map, Value};
use sonoprint_store::{TrackId, TrackRow};

use crate::access::constant_time_eq;
use crate::{AppState, VERSION};

/// The Subsonic REST protocol version the envelope states.
pub const API_VERSION: &str = "1.16.1";

/// The OpenSubsonic extensions this server implements, with their versions.
pub const EXTENSIONS: [(&str, &[u32]); 1] = [("sonicSimilarity", &[1])];

/// The payload of a successful answer: the members put next to `status` in the envelope,
/// e.g. `{"sonicMatch": [...]}`.
pub type Payload = Map<String, Value>;

/// The answer format asked with `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// A failed answer: a Subsonic error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsonicError {
    pub code: u32,
    pub message: String,
}

impl SubsonicError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        SubsonicError {
            code,
            message: message.into(),
        }
    }

    /// 0: a generic error (e.g. a parameter with a bad value).
    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }

    /// 10: a required parameter is missing.
    pub fn missing(name: &str) -> Self {
        Self::new(10, format!("required parameter is missing: {name}"))
    }

    /// 70: the requested data was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(70, message)
    }
}

/// The query of a `/rest/` request: its parameters and the format to answer in. Extracting it
/// never fails; a query string that cannot be read leaves no parameters, so the answer is a
/// missing-parameter error.
pub struct SubsonicQuery {
    params: Vec<(String, String)>,
    pub format: Format,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SubsonicQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let params = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| q)
            .unwrap_or_default();
        Ok(SubsonicQuery::new(params))
    }
}

impl SubsonicQuery {
    pub fn new(params: Vec<(String, String)>) -> Self {
        let format = match params
            .iter()
            .find(|(k, _)| k == "f")
            .map(|(_, v)| v.as_str())
        {
            None | Some("xml") => Format::Xml,
            Some(_) => Format::Json,
        };
        SubsonicQuery { params, format }
    }

    /// The first value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a required parameter: error 10 when it is missing or empty.
    pub fn required(&self, name: &str) -> Result<&str, SubsonicError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SubsonicError::missing(name))
    }

    /// A count parameter: `default` when absent, at most `max` (larger asks get `max`, as
    /// Subsonic servers do); a value that is not a whole number 0 or more is error 0.
    pub fn count(&self, name: &str, default: u32, max: u32) -> Result<u32, SubsonicError> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(default.min(max)),
            Some(v) => v.trim().parse::<u32>().map(|n| n.min(max)).map_err(|_| {
                SubsonicError::generic(format!("bad {name}: {v:?} (a whole number 0 or more)"))
            }),
        }
    }

    /// A song id parameter (sonoprint's track id): error 10 when missing; an id that cannot
    /// be a track is error 70, as an unknown one is.
    pub fn track_id(&self, name: &str) -> Result<TrackId, SubsonicError> {
        let v = self.required(name)?;
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(TrackId)
            .ok_or_else(|| SubsonicError::not_found(format!("song not found: {v}")))
    }

    /// The answer: the envelope with `payload`, or the failure.
    pub fn reply(&self, result: Result<Payload, SubsonicError>) -> Response {
        match result {
            Ok(payload) => subsonic_ok(self.format, payload),
            Err(e) => subsonic_error(self.format, &e),
        }
    }
}

/// The `subsonic-response` object, without the payload.
fn envelope(ok: bool) -> Payload {
    let mut m = Map::new();
    m.insert("status".into(), json!(if ok { "ok" } else { "failed" }));
    m.insert("version".into(), json!(API_VERSION));
    m.insert("type".into(), json!("sonoprint"));
    m.insert("serverVersion".into(), json!(VERSION));
    m.insert("openSubsonic".into(), json!(true));
    m
}

/// A successful answer carrying `payload`.
pub fn subsonic_ok(format: Format, payload: Payload) -> Response {
    let mut m = envelope(true);
    m.extend(payload);
    render(format, m, StatusCode::OK)
}

/// A failed answer: `status: failed` and `error {code, message}`, HTTP 200.
pub fn subsonic_error(format: Format, e: &SubsonicError) -> Response {
    failed(format, e, StatusCode::OK)
}

fn failed(format: Format, e: &SubsonicError, status: StatusCode) -> Response {
    let mut m = envelope(false);
    m.insert(
        "error".into(),
        json!({"code": e.code, "message": e.message}),
    );
    render(format, m, status)
}

fn render(format: Format, response: Payload, status: StatusCode) -> Response {
    match format {
        Format::Json => {
            let body = json!({ "subsonic-response": response });
            (status, axum::Json(body)).into_response()
        }
        Format::Xml => (
            status,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            xml(&response),
        )
            .into_response(),
    }
}

/// The XML form of an envelope, by the rule the Subsonic JSON form was derived with: a scalar
/// member is an attribute, an object member a child element, an array member one child element
/// per item (an item that is a scalar is the element's text); null members are left out.
/// Hand-written because that rule is Subsonic's own: a general serializer would need every
/// payload typed with attribute markers.
fn xml(response: &Payload) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    element(
        &mut out,
        "subsonic-response",
        response,
        Some("http://subsonic.org/restapi"),
    );
    out
}

fn element(out: &mut String, name: &str, members: &Payload, xmlns: Option<&str>) {
    out.push('<');
    out.push_str(name);
    if let Some(ns) = xmlns {
        out.push_str(" xmlns=\"");
        out.push_str(ns);
        out.push('"');
    }
    for (k, v) in members {
        if let Some(text) = scalar(v) {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape(&text));
            out.push('"');
        }
    }
    out.push('>');
    for (k, v) in members {
        match v {
            Value::Object(m) => element(out, k, m, None),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(m) => element(out, k, m, None),
                        other => {
                            if let Some(text) = scalar(other) {
                                out.push_str(&format!("<{k}>{}</{k}>", escape(&text)));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A library track as a Subsonic `Child` (a song): the fields the library has. `path` is
/// relative to the allowed folder holding the file, when one does (Subsonic paths are relative
/// to the music folder).
pub fn song_child(t: &TrackRow, roots: &[std::path::PathBuf]) -> Value {
    let suffix = t
        .path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let title = t.title.clone().unwrap_or_else(|| {
        t.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let path = roots
        .iter()
        .find_map(|r| t.path.strip_prefix(r).ok())
        .unwrap_or(&t.path);
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id.0.to_string()));
    m.insert("isDir".into(), json!(false));
    m.insert("title".into(), json!(title));
    m.insert("isVideo".into(), json!(false));
    m.insert("type".into(), json!("music"));
    m.insert("path".into(), json!(path.to_string_lossy()));
    if let Some(d) = t.duration {
        m.insert("duration".into(), json!(d.round() as u64));
    }
    if let Some(s) = &suffix {
        m.insert("suffix".into(), json!(s));
        if let Some(ct) = content_type(s) {
            m.insert("contentType".into(), json!(ct));
        }
    }
    if let Some(size) = t.filesize {
        m.insert("size".into(), json!(size));
        if let Some(d) = t.duration.filter(|d| *d > 0.0) {
            // Average kbit/s of the whole file, as Subsonic servers report it.
            m.insert(
                "bitRate".into(),
                json!((size as f64 * 8.0 / d / 1000.0).round() as u64),
            );
        }
    }
    if let Some(sr) = t.sample_rate {
        m.insert("samplingRate".into(), json!(sr));
    }
    if let Some(ch) = t.channels {
        m.insert("channelCount".into(), json!(ch));
    }
    Value::Object(m)
}

/// The MIME type of an audio file by its suffix.
fn content_type(suffix: &str) -> Option<&'static str> {
    Some(match suffix {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" | "mp4" | "aac" | "alac" => "audio/mp4",
        "wav" => "audio/wav",
        "aif" | "aiff" => "audio/aiff",
        "wma" => "audio/x-ms-wma",
        "ape" => "audio/x-ape",
        "wv" => "audio/x-wavpack",
        "mpc" => "audio/x-musepack",
        _ => return None,
    })
}

/// The `/rest/` routes, each at `NAME` and `NAME.view`, with the apiKey check.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let r = Router::new();
    let r = rest(r, "ping", get(ping));
    let r = rest(r, "getOpenSubsonicExtensions", get(extensions));
    let r = rest(
        r,
        "getSonicSimilarTracks",
        get(crate::similar::get_sonic_similar_tracks),
    );
    let r = rest(r, "findSonicPath", get(crate::similar::find_sonic_path));
    r.route("/rest/{*method}", any(unknown))
        .layer(axum::middleware::from_fn_with_state(state, require_api_key))
}

/// Adds the endpoint `name` at `/rest/NAME` and `/rest/NAME.view`.
pub fn rest(
    r: Router<Arc<AppState>>,
    name: &str,
    method: MethodRouter<Arc<AppState>>,
) -> Router<Arc<AppState>> {
    r.route(&format!("/rest/{name}"), method.clone())
        .route(&format!("/rest/{name}.view"), method)
}

/// `ping`: an empty successful answer (with a token: when the apiKey is right).
async fn ping(q: SubsonicQuery) -> Response {
    q.reply(Ok(Payload::new()))
}

/// `getOpenSubsonicExtensions`: the extensions and their versions; never needs a key.
async fn extensions(q: SubsonicQuery) -> Response {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(name, versions)| json!({"name": name, "versions": versions}))
        .collect();
    let mut p = Payload::new();
    p.insert("openSubsonicExtensions".into(), Value::Array(list));
    q.reply(Ok(p))
}

async fn unknown(q: SubsonicQuery, req: Request) -> Response {
    let e = SubsonicError::generic(format!("unknown endpoint: {}", req.uri().path()));
    failed(q.format, &e, StatusCode::NOT_FOUND)
}

/// The name of the endpoint a `/rest/` path asks for, without `.view`.
fn method_name(path: &str) -> &str {
    let name = path.strip_prefix("/rest/").unwrap_or(path);
    name.strip_suffix(".view").unwrap_or(name)
}

/// With a token configured, every `/rest/` endpoint but `getOpenSubsonicExtensions` needs
/// `apiKey=TOKEN` (see the module's documentation for the error codes).
async fn require_api_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(token) = state.token.as_deref() else {
        return next.run(req).await;
    };
    if method_name(req.uri().path()) == "getOpenSubsonicExtensions" {
        return next.run(req).await;
    }
    let params = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let q = SubsonicQuery::new(params);
    match check_api_key(&q, token) {
        Ok(()) => next.run(req).await,
        Err(e) => subsonic_error(q.format, &e),
    }
}

/// The apiKeyAuthentication rules of the OpenSubsonic documents.
pub fn check_api_key(q: &SubsonicQuery, token: &str) -> Result<(), SubsonicError> {
    let others = ["u", "p", "t", "s"]
        .iter()
        .any(|k| q.get(k).is_some_and(|v| !v.is_empty()));
    match q.get("apiKey").filter(|k| !k.is_empty()) {
        Some(_) if others => Err(SubsonicError::new(
            43,
            "multiple conflicting authentication mechanisms provided: send apiKey alone",
        )),
        Some(key) if constant_time_eq(key.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(SubsonicError::new(44, "invalid API key")),
        None if others => Err(SubsonicError::new(
            42,
            "provided authentication mechanism not supported: this server takes its token as \
             apiKey",
        )),
        None => Err(SubsonicError::missing("apiKey")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> SubsonicQuery {
        SubsonicQuery::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn parameters() {
        let p = q(&[("id", "12"), ("count", "5000"), ("f", "json"), ("bad", "x")]);
        assert_eq!(p.format, Format::Json);
        assert_eq!(p.track_id("id"), Ok(TrackId(12)));
        assert_eq!(p.count("count", 10, 500), Ok(500));
        assert_eq!(p.count("other", 10, 500), Ok(10));
        assert_eq!(p.count("bad", 10, 500).map_err(|e| e.code), Err(0));
        assert_eq!(p.required("nope").map_err(|e| e.code), Err(10));
        assert_eq!(p.track_id("bad").map_err(|e| e.code), Err(70));
        assert_eq!(q(&[]).format, Format::Xml);
        assert_eq!(q(&[("f", "xml")]).format, Format::Xml);
    }

    #[test]
    fn api_key_rules() {
        let code = |pairs: &[(&str, &str)]| check_api_key(&q(pairs), "k3y").map_err(|e| e.code);
        assert_eq!(code(&[("apiKey", "k3y")]), Ok(()));
        assert_eq!(code(&[("apiKey", "nope")]), Err(44));
        assert_eq!(code(&[("apiKey", "k3y"), ("u", "joe")]), Err(43));
        assert_eq!(code(&[("u", "joe"), ("p", "pw")]), Err(42));
        assert_eq!(code(&[]), Err(10));
    }

    #[test]
    fn xml_form() {
        let mut p = Payload::new();
        p.insert(
            "openSubsonicExtensions".into(),
            json!([{"name": "a<b", "versions": [1, 2]}]),
        );
        p.insert("nothing".into(), Value::Null);
        let mut m = envelope(true);
        m.extend(p);
        assert_eq!(
            xml(&m),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><subsonic-response \
                 xmlns=\"http://subsonic.org/restapi\" status=\"ok\" version=\"1.16.1\" \
                 type=\"sonoprint\" serverVersion=\"{VERSION}\" openSubsonic=\"true\">\
                 <openSubsonicExtensions name=\"a&lt;b\"><versions>1</versions>\
                 <versions>2</versions></openSubsonicExtensions></subsonic-response>"
            )
        );
    }
}
