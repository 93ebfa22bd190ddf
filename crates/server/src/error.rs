//! Every error answer: `{"error": "<message>", "class": "<class>"}` with its status code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sonoprint_core::ErrorClass;
use sonoprint_worker::Failure;

/// The classes of the answers that are not an analysis failure; with [`ErrorClass::ALL`] they
/// are every `class` an error answer can carry (the OpenAPI document lists them from here).
pub const REQUEST_CLASSES: [&str; 8] = [
    "bad_request",
    "forbidden",
    "not_found",
    "too_large",
    "unauthorized",
    "busy",
    "internal",
    "panic",
];

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program.
    #[schema(schema_with = crate::doc::error_class_schema)]
    pub class: &'static str,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub class: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 only).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, class: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn busy(message: impl Into<String>, retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
        }
    }

    /// The answer for a failed analysis of `path`.
    pub fn from_failure(path: &str, f: &Failure) -> Self {
        let class = f.class.as_str();
        let status = match f.class {
            ErrorClass::NotAudio | ErrorClass::UnsupportedCodec => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorClass::Corrupt
            | ErrorClass::Truncated
            | ErrorClass::TooShort
            | ErrorClass::Empty => StatusCode::BAD_REQUEST,
            ErrorClass::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorClass::Io | ErrorClass::Panic | ErrorClass::Analysis => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match f.class {
            ErrorClass::Corrupt
            | ErrorClass::Truncated
            | ErrorClass::TooShort
            | ErrorClass::Empty => {
                format!("{path} appears corrupted: {}", f.message)
            }
            ErrorClass::NotAudio | ErrorClass::UnsupportedCodec => {
                format!("unsupported format: {path}: {}", f.message)
            }
            _ => format!("analysis failed: {path}: {}", f.message),
        };
        ApiError::new(status, class, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(
                status = self.status.as_u16(),
                class = self.class,
                "{}",
                self.message
            );
        }
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: self.message,
                class: self.class,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}
