//! Decoding: any common audio file to interleaved `f32` chunks, streamed, with seeking for the
//! excerpt plan. The choice of decoder lives here alone: symphonia first; an `ffmpeg`
//! subprocess when symphonia cannot open the file ([`open`]) or fails before it has produced
//! any audio ([`decode_with`]).

/// symphonia's `AudioDecoder` for a frame decoder of our own that keeps nothing from one packet
/// to the next (FLAC, ALAC): the type has `params: AudioCodecParameters`, `buf: AudioBuffer<i32>`
/// and `decode_inner(&mut self, &[u8]) -> symphonia Result<()>`; its codec is the first of its
/// `supported_codecs`. A packet that fails leaves an empty buffer, not the previous one.
macro_rules! frame_decoder {
    ($t:ty) => {
        impl ::symphonia::core::codecs::audio::AudioDecoder for $t {
            fn reset(&mut self) {}

            fn codec_info(&self) -> &::symphonia::core::codecs::CodecInfo {
                &<Self as ::symphonia::core::codecs::registry::RegisterableAudioDecoder>::supported_codecs()[0].info
            }

            fn codec_params(&self) -> &::symphonia::core::codecs::audio::AudioCodecParameters {
                &self.params
            }

            fn decode_ref(
                &mut self,
                packet: &::symphonia::core::packet::PacketRef<'_>,
            ) -> ::symphonia::core::errors::Result<::symphonia::core::audio::GenericAudioBufferRef<'_>> {
                match self.decode_inner(packet.data) {
                    Ok(()) => Ok(self.buf.as_generic_audio_buffer_ref()),
                    Err(e) => {
                        self.buf.clear();
                        Err(e)
                    }
                }
            }

            fn finalize(&mut self) -> ::symphonia::core::codecs::audio::FinalizeResult {
                ::symphonia::core::codecs::audio::FinalizeResult::default()
            }

            fn last_decoded(&self) -> ::symphonia::core::audio::GenericAudioBufferRef<'_> {
                self.buf.as_generic_audio_buffer_ref()
            }
        }
    };
}

pub mod alac;
mod ffmpeg;
pub mod flac;
mod gapless;
mod memory;
mod opus;
pub mod sniff;
mod symphonia;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use memory::MemorySource;
use sniff::Kind;
use sonoprint_core::{AnalysisError, ErrorClass};

/// The codecs symphonia decodes with: its own, plus ours, registered at the preferred tier so
/// that they win over symphonia's for the same codec whatever the order of registration:
/// Opus (symphonia has no decoder), and FLAC and ALAC (hand-written for speed; symphonia's
/// decoders stay registered below them and are the tests' oracle).
fn codecs() -> &'static ::symphonia::core::codecs::registry::CodecRegistry {
    use ::symphonia::core::codecs::registry::CodecRegistry;
    use ::symphonia::core::common::Tier;
    static REGISTRY: std::sync::LazyLock<CodecRegistry> = std::sync::LazyLock::new(|| {
        let mut registry = CodecRegistry::new();
        ::symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder_at_tier::<opus::OpusDecoder>(Tier::Preferred);
        registry.register_audio_decoder_at_tier::<flac::FlacDecoder>(Tier::Preferred);
        registry.register_audio_decoder_at_tier::<alac::AlacDecoder>(Tier::Preferred);
        registry
    });
    &REGISTRY
}

/// What the decoder knows about the stream before decoding it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub sample_rate: u32,
    pub channels: usize,
    pub bits_per_sample: Option<u32>,
    /// Container name, e.g. `flac`, `mp3`, `mp4`, `ogg`, `wav`, `aiff`.
    pub format: String,
    /// Codec name, e.g. `flac`, `mp3`, `aac`.
    pub codec: String,
    /// Length in sample frames as the container states it, when it does.
    pub total_frames: Option<u64>,
    /// Index of the LFE channel, excluded from the mono mix and from loudness.
    pub lfe: Option<usize>,
    /// Which decoding path this is: `symphonia` or `ffmpeg`.
    pub decoder: &'static str,
}

impl StreamInfo {
    pub fn duration_sec(&self) -> Option<f64> {
        self.total_frames
            .map(|f| f as f64 / self.sample_rate as f64)
    }
}

/// How a seek was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The container seeked to the position.
    Seek,
    /// The stream was decoded up to the position (the format cannot seek accurately).
    Sequential,
}

/// A failure inside a decoder, before the path is attached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: ErrorClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }
}

/// A stream of decoded audio.
pub trait AudioSource: Send {
    fn info(&self) -> &StreamInfo;
    /// Positions the stream so that the next chunk starts at sample frame `frame`.
    fn seek(&mut self, frame: u64) -> Result<Access, Failure>;
    /// The next chunk of interleaved samples, `Ok(None)` at the end of the stream.
    fn next_chunk(&mut self) -> Result<Option<&[f32]>, Failure>;
    /// Packets that failed to decode and were skipped.
    fn skipped_packets(&self) -> u32;
    /// The stream ended before the end its container announced, or in the middle of a packet.
    fn ended_early(&self) -> bool;
}

/// Options for opening a file.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Allow the ffmpeg fallback when it is on the PATH.
    pub ffmpeg_fallback: bool,
    /// Longest an ffmpeg subprocess may run before it is killed.
    pub ffmpeg_timeout: Duration,
    /// Set from another thread to stop decoding: the next packet read fails as `timeout` (an
    /// ffmpeg subprocess is killed). A caller that gave up on a file (its time limit passed)
    /// sets it, so that the decoder does not go on working for nobody.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            ffmpeg_fallback: true,
            ffmpeg_timeout: Duration::from_secs(120),
            cancel: None,
        }
    }
}

/// The check of [`OpenOptions::cancel`] that the decoders make before each packet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancel(Option<Arc<AtomicBool>>);

impl Cancel {
    pub(crate) fn check(&self) -> Result<(), Failure> {
        match &self.0 {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Failure::new(
                ErrorClass::Timeout,
                "decoding was stopped: the file's time limit passed",
            )),
            _ => Ok(()),
        }
    }
}

/// Opens `path` for decoding: checks what it is without blocking, sniffs the content, then tries
/// symphonia and, when symphonia cannot read it, ffmpeg.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn AudioSource>, AnalysisError> {
    let fail = |class, msg: String| AnalysisError::new(class, path, msg);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let msg = if std::fs::symlink_metadata(path).is_ok() {
                "dangling symbolic link: its target does not exist".to_string()
            } else {
                "file not found".to_string()
            };
            return Err(fail(ErrorClass::Io, msg));
        }
        Err(e) => {
            return Err(fail(
                ErrorClass::Io,
                format!("cannot read file metadata: {e}"),
            ))
        }
    };
    if meta.is_dir() {
        return Err(fail(
            ErrorClass::Io,
            "is a directory, not an audio file".into(),
        ));
    }
    if !meta.is_file() {
        // Opening a FIFO would block for ever; a device or socket is never a track.
        return Err(fail(
            ErrorClass::Io,
            "not a regular file (FIFO, socket or device); not opened".into(),
        ));
    }
    if meta.len() == 0 {
        return Err(fail(ErrorClass::Empty, "file is empty (0 bytes)".into()));
    }
    let mut file = File::open(path).map_err(|e| {
        fail(
            ErrorClass::Io,
            format!("cannot open file: {e}; check its permissions"),
        )
    })?;
    let mut head = Vec::with_capacity(64);
    (&mut file)
        .take(64)
        .read_to_end(&mut head)
        .map_err(|e| fail(ErrorClass::Io, format!("cannot read file: {e}")))?;
    let kind = sniff::sniff(&head);
    if let Kind::Other(what) = kind {
        return Err(fail(
            ErrorClass::NotAudio,
            format!("content is {what}, not audio"),
        ));
    }

    let mut tried = vec!["symphonia"];
    let first = match symphonia::SymphoniaSource::open(file, meta.len()) {
        Ok(mut src) => {
            src.set_cancel(Cancel(opts.cancel.clone()));
            return Ok(Box::new(src));
        }
        Err(f) => f,
    };
    // Empty, I/O and short-file failures are about the file, not the decoder: ffmpeg would say
    // the same, slower.
    let worth_fallback = matches!(
        first.class,
        ErrorClass::UnsupportedCodec | ErrorClass::NotAudio | ErrorClass::Corrupt
    );
    if !(opts.ffmpeg_fallback && worth_fallback) {
        return Err(fail(first.class, first.message).tried(&tried));
    }
    let Some(ffmpeg) = ffmpeg::locate() else {
        // A container the sniffer knows as audio (ASF, APE, WavPack, ...) that symphonia cannot
        // read is audio in an unsupported format, not "not audio". The weak sniffs (a bare ID3
        // tag, an MPEG or ADTS sync word) prove nothing, so symphonia's verdict stands for them.
        let (class, cause) = match (kind, first.class) {
            (Kind::Audio(what), ErrorClass::NotAudio)
                if !matches!(what, "id3-tagged" | "mpeg" | "adts") =>
            {
                (
                    ErrorClass::UnsupportedCodec,
                    format!("the content is {what} audio, which symphonia cannot read"),
                )
            }
            (_, class) => (class, first.message),
        };
        let msg = format!(
            "{cause}; installing ffmpeg (on the PATH) would let sonoprint try a second decoder"
        );
        return Err(fail(class, msg).tried(&tried));
    };
    tried.push("ffmpeg");
    match ffmpeg::FfmpegSource::open(&ffmpeg, path, opts.ffmpeg_timeout) {
        Ok(mut src) => {
            src.set_cancel(Cancel(opts.cancel.clone()));
            Ok(Box::new(src))
        }
        Err(second) => {
            // symphonia's verdict is the more specific one unless ffmpeg says it is not audio.
            let class = if kind == Kind::Unknown && second.class == ErrorClass::NotAudio {
                ErrorClass::NotAudio
            } else {
                first.class
            };
            let msg = format!("symphonia: {}; ffmpeg: {}", first.message, second.message);
            Err(fail(class, msg).tried(&tried))
        }
    }
}

/// Opens audio held in memory with symphonia alone (no ffmpeg, no file system): the decoding
/// front end on arbitrary bytes, as the fuzz targets drive it. Sniffing and probing are those of
/// [`open`].
pub fn open_memory(bytes: Vec<u8>) -> Result<Box<dyn AudioSource>, Failure> {
    if bytes.is_empty() {
        return Err(Failure::new(ErrorClass::Empty, "no bytes"));
    }
    if let Kind::Other(what) = sniff::sniff(&bytes[..bytes.len().min(64)]) {
        return Err(Failure::new(
            ErrorClass::NotAudio,
            format!("content is {what}, not audio"),
        ));
    }
    let len = bytes.len() as u64;
    let src = symphonia::SymphoniaSource::open_source(std::io::Cursor::new(bytes), len)?;
    Ok(Box::new(src))
}

/// Why a consumer of a source stopped (see [`decode_with`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{failure}")]
pub struct Stop {
    pub failure: Failure,
    /// The decoder failed before producing any audio: another decoder may read the file.
    pub before_audio: bool,
}

/// A source opened by [`decode_with`], and the means to open it again from the start.
pub struct Opened<'a> {
    source: Box<dyn AudioSource>,
    path: &'a Path,
    opts: &'a OpenOptions,
}

impl Opened<'_> {
    /// The source.
    pub fn source(&mut self) -> &mut dyn AudioSource {
        self.source.as_mut()
    }

    /// Replaces the source by a fresh one from the same decoder, at the start of the file.
    pub fn reopen(&mut self) -> Result<(), Failure> {
        let fresh = match self.source.info().decoder {
            "ffmpeg" => match open_ffmpeg(self.path, self.opts) {
                Some(r) => r?,
                None => return Err(Failure::new(ErrorClass::Io, "ffmpeg is gone from the PATH")),
            },
            _ => open(self.path, self.opts).map_err(|e| Failure::new(e.class, e.message))?,
        };
        self.source = fresh;
        Ok(())
    }
}

/// Opens `path` ([`open`]) and hands the source to `consume`. When symphonia's source fails in
/// `consume` before producing any audio, as an unsupported codec or a corrupt stream, and the
/// options allow it, `consume` runs again on ffmpeg's. Errors name the decoders tried.
pub fn decode_with<T>(
    path: &Path,
    opts: &OpenOptions,
    mut consume: impl FnMut(&mut Opened<'_>) -> Result<T, Stop>,
) -> Result<T, AnalysisError> {
    let source = open(path, opts)?;
    let mut tried = vec![source.info().decoder];
    let mut opened = Opened { source, path, opts };
    let wrap = |f: Failure, tried: &[&'static str]| {
        AnalysisError::new(f.class, path, f.message).tried(tried)
    };
    let stop = match consume(&mut opened) {
        Ok(v) => return Ok(v),
        Err(stop) => stop,
    };
    let first = stop.failure;
    let worth_fallback = stop.before_audio
        && tried == ["symphonia"]
        && opts.ffmpeg_fallback
        && matches!(
            first.class,
            ErrorClass::UnsupportedCodec | ErrorClass::Corrupt
        );
    if !worth_fallback {
        return Err(wrap(first, &tried));
    }
    let both = |second: &Failure| {
        Failure::new(
            first.class,
            format!("symphonia: {}; ffmpeg: {}", first.message, second.message),
        )
    };
    match open_ffmpeg(path, opts) {
        Some(Ok(source)) => {
            tried.push("ffmpeg");
            opened.source = source;
            consume(&mut opened).map_err(|second| wrap(both(&second.failure), &tried))
        }
        Some(Err(second)) => {
            tried.push("ffmpeg");
            Err(wrap(both(&second), &tried))
        }
        None => Err(wrap(first, &tried)),
    }
}

/// Opens `path` with ffmpeg alone: `None` when ffmpeg is not installed.
fn open_ffmpeg(path: &Path, opts: &OpenOptions) -> Option<Result<Box<dyn AudioSource>, Failure>> {
    let ffmpeg = ffmpeg::locate()?;
    Some(
        ffmpeg::FfmpegSource::open(&ffmpeg, path, opts.ffmpeg_timeout).map(|mut s| {
            s.set_cancel(Cancel(opts.cancel.clone()));
            Box::new(s) as Box<dyn AudioSource>
        }),
    )
}
