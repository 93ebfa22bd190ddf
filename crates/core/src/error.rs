//! Classified analysis errors: every failure says what failed, on which file, and why.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The class of a failure: stable, machine-readable names used in the database, the JSON output
/// and the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Zero-byte file.
    Empty,
    /// Not an audio file (text, image, unknown content).
    NotAudio,
    /// Audio, but in a codec no available decoder reads.
    UnsupportedCodec,
    /// Too many undecodable packets, or a stream that breaks before any audio.
    Corrupt,
    /// The file ends early and less than 1 s of audio decodes.
    Truncated,
    /// Less than 1 s of audio.
    TooShort,
    /// The file could not be read (permissions, missing, not a regular file, I/O error).
    Io,
    /// The decoder exceeded its time limit.
    Timeout,
    /// The decoder or analyser panicked.
    Panic,
    /// The analysis produced a non-finite value (a bug in sonoprint).
    Analysis,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::Empty,
        ErrorClass::NotAudio,
        ErrorClass::UnsupportedCodec,
        ErrorClass::Corrupt,
        ErrorClass::Truncated,
        ErrorClass::TooShort,
        ErrorClass::Io,
        ErrorClass::Timeout,
        ErrorClass::Panic,
        ErrorClass::Analysis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Empty => "empty",
            ErrorClass::NotAudio => "not_audio",
            ErrorClass::UnsupportedCodec => "unsupported_codec",
            ErrorClass::Corrupt => "corrupt",
            ErrorClass::Truncated => "truncated",
            ErrorClass::TooShort => "too_short",
            ErrorClass::Io => "io",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Panic => "panic",
            ErrorClass::Analysis => "analysis",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorClass> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure to fingerprint one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisError {
    pub class: ErrorClass,
    pub path: PathBuf,
    /// The cause and, where there is one, what to do about it. Does not repeat the path.
    pub message: String,
    /// The decoders that were tried, in order.
    pub decoders_tried: Vec<&'static str>,
}

impl AnalysisError {
    pub fn new(class: ErrorClass, path: &Path, message: impl Into<String>) -> Self {
        AnalysisError {
            class,
            path: path.to_path_buf(),
            message: message.into(),
            decoders_tried: Vec::new(),
        }
    }

    pub fn tried(mut self, decoders: &[&'static str]) -> Self {
        self.decoders_tried = decoders.to_vec();
        self
    }
}

impl fmt::Display for AnalysisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.path.display(),
            self.message,
            self.class
        )
    }
}

impl std::error::Error for AnalysisError {}
