//! Who may ask, and which files they may have read: the allowed roots and the bearer token.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// Canonical forms of the allowed roots; roots that do not exist (any more) are dropped with a
/// warning.
pub fn canonical_roots(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| match std::fs::canonicalize(r) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("allowed root {} is unusable: {e}", r.display());
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Resolves a requested path to the canonical path of a file under one of `roots`: `..`,
/// symbolic links and the like are resolved first, so nothing escapes. A path that resolves
/// outside every root is 403 whether or not it exists; one inside that does not exist is 404.
pub fn resolve(roots: &[PathBuf], requested: &str) -> Result<PathBuf, ApiError> {
    if requested.is_empty() {
        return Err(ApiError::bad_request("the path is empty"));
    }
    let p = Path::new(requested);
    if !p.is_absolute() {
        return Err(ApiError::forbidden(format!(
            "{requested}: the path must be absolute"
        )));
    }
    let inside = |c: &Path| roots.iter().any(|r| c.starts_with(r));
    let outside = || ApiError::forbidden(format!("{requested} is outside the allowed folders"));
    match std::fs::canonicalize(p) {
        Ok(c) if inside(&c) => {
            if c.is_file() {
                Ok(c)
            } else {
                Err(ApiError::not_found(format!(
                    "{requested} is not a regular file"
                )))
            }
        }
        Ok(_) => Err(outside()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            // Where would it be? The deepest existing ancestor, canonical, plus the rest.
            let lexical = normalize(p);
            let mut base = lexical.as_path();
            let mut rest = Vec::new();
            let resolved = loop {
                match std::fs::canonicalize(base) {
                    Ok(c) => break Some(c),
                    Err(_) => {
                        let (Some(parent), Some(name)) = (base.parent(), base.file_name()) else {
                            break None;
                        };
                        rest.push(name.to_os_string());
                        base = parent;
                    }
                }
            };
            let Some(mut c) = resolved else {
                return Err(outside());
            };
            c.extend(rest.iter().rev());
            if inside(&c) {
                Err(ApiError::not_found(format!("file not found: {requested}")))
            } else {
                Err(outside())
            }
        }
        Err(e) => Err(ApiError::forbidden(format!(
            "{requested}: cannot access: {e}"
        ))),
    }
}

/// `..` and `.` removed without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// With a token configured, every route but `/health` needs `Authorization: Bearer <token>`;
/// the OpenSubsonic routes under `/rest/` take it as their `apiKey` parameter instead.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = state.token.as_deref() else {
        return next.run(req).await;
    };
    if req.uri().path() == "/health" || req.uri().path().starts_with("/rest/") {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs `Authorization: Bearer <token>`",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("music");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(root.join("a.flac"), b"x").unwrap();
        std::fs::write(other.join("b.flac"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(other.join("b.flac"), root.join("link.flac")).unwrap();
        let roots = canonical_roots(std::slice::from_ref(&root));
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        assert!(resolve(&roots, &s(root.join("a.flac"))).is_ok());
        let code = |p: &str| resolve(&roots, p).unwrap_err().status.as_u16();
        assert_eq!(code(&s(root.join("../other/b.flac"))), 403);
        assert_eq!(code(&s(other.join("b.flac"))), 403);
        #[cfg(unix)]
        assert_eq!(code(&s(root.join("link.flac"))), 403);
        assert_eq!(code(&s(root.join("nope.flac"))), 404);
        assert_eq!(code(&s(root.join("../other/nope.flac"))), 403);
        assert_eq!(code("relative.flac"), 403);
        assert_eq!(code("/"), 403);
    }
}
