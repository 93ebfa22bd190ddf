//! The second decoding path: an `ffmpeg` subprocess writing raw `f32` PCM on its stdout.
//! It covers what symphonia cannot read (WMA, APE, Opus outside Ogg, ...). Every subprocess runs under a
//! deadline and is killed when it passes it or when the source is dropped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Access, AudioSource, Cancel, Failure, StreamInfo};
use sonoprint_core::ErrorClass;

/// Finds `ffmpeg` and `ffprobe`: `SONOPRINT_FFMPEG` names the ffmpeg binary, else the PATH.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SONOPRINT_FFMPEG") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file() && p.with_file_name("ffprobe").is_file())
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_name: Option<String>,
    sample_rate: Option<String>,
    channels: Option<usize>,
    channel_layout: Option<String>,
    bits_per_raw_sample: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

/// A running subprocess whose stdout we read; a watchdog kills it at its deadline or on drop.
struct Running {
    stdout: ChildStdout,
    stop: mpsc::Sender<()>,
    stderr: Arc<Mutex<String>>,
    done: mpsc::Receiver<Option<i32>>,
}

impl Running {
    fn spawn(cmd: &mut Command, timeout: Duration) -> Result<Running, Failure> {
        let mut child: Child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::new(ErrorClass::Io, format!("cannot start ffmpeg: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::new(ErrorClass::Io, "ffmpeg has no stdout"))?;
        let stderr_text = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = Arc::clone(&stderr_text);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        // Keep the first 4 KiB: enough to say what went wrong.
                        if s.len() < 4096 {
                            s.push_str(&String::from_utf8_lossy(&buf[..n]));
                        }
                    }
                }
            });
        }
        let (stop, stop_rx) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        thread::spawn(move || loop {
            match stop_rx.recv_timeout(Duration::from_millis(50)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // The source may be gone already; then nobody needs the status.
                        done_tx.send(status.code()).ok();
                        return;
                    }
                    if Instant::now() >= deadline {
                        stop_child(&mut child);
                        done_tx.send(None).ok();
                        return;
                    }
                }
                // Asked to stop, or the source was dropped: never leave a decoder running.
                _ => {
                    stop_child(&mut child);
                    return;
                }
            }
        });
        Ok(Running {
            stdout,
            stop,
            stderr: stderr_text,
            done,
        })
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

/// Kills the decoder and reaps it. `kill` fails only when the process has exited already (then
/// `wait` reaps it), `wait` only when it was reaped already: nothing is left running either way.
fn stop_child(child: &mut std::process::Child) {
    child.kill().ok();
    child.wait().ok();
}

impl Drop for Running {
    fn drop(&mut self) {
        // A send fails only when the watcher thread has ended, i.e. the decoder is reaped.
        self.stop.send(()).ok();
    }
}

pub struct FfmpegSource {
    ffmpeg: PathBuf,
    path: PathBuf,
    timeout: Duration,
    info: StreamInfo,
    running: Option<Running>,
    bytes: Vec<u8>,
    samples: Vec<f32>,
    /// Bytes of an incomplete sample left over from the previous read.
    carry: usize,
    /// Some audio came out of the current process.
    produced: bool,
    ended_early: bool,
    cancel: Cancel,
}

impl FfmpegSource {
    pub fn open(ffmpeg: &Path, path: &Path, timeout: Duration) -> Result<FfmpegSource, Failure> {
        let ffprobe = ffmpeg.with_file_name("ffprobe");
        let mut cmd = Command::new(&ffprobe);
        cmd.args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
            .arg("stream=codec_name,sample_rate,channels,channel_layout,bits_per_raw_sample,duration:format=format_name,duration")
            .args(["-of", "json"])
            .arg(path);
        let mut run = Running::spawn(&mut cmd, Duration::from_secs(20))?;
        let mut out = String::new();
        run.stdout.read_to_string(&mut out).map_err(|e| {
            Failure::new(ErrorClass::Io, format!("cannot read ffprobe output: {e}"))
        })?;
        let status = run.done.recv().ok().flatten();
        if status.is_none() {
            return Err(Failure::new(
                ErrorClass::Timeout,
                "ffprobe did not finish in 20 s",
            ));
        }
        let probe: Probe = serde_json::from_str(&out).map_err(|_| {
            Failure::new(
                ErrorClass::NotAudio,
                format!("ffprobe cannot read it: {}", run.stderr()),
            )
        })?;
        let stream =
            probe.streams.into_iter().next().ok_or_else(|| {
                Failure::new(ErrorClass::NotAudio, "ffprobe finds no audio stream")
            })?;
        let sample_rate = stream
            .sample_rate
            .as_deref()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|&r| r > 0)
            .ok_or_else(|| Failure::new(ErrorClass::Corrupt, "ffprobe states no sample rate"))?;
        let channels = stream
            .channels
            .filter(|&c| c > 0)
            .ok_or_else(|| Failure::new(ErrorClass::Corrupt, "ffprobe states no channel count"))?;
        let duration = stream
            .duration
            .as_deref()
            .or(probe.format.as_ref().and_then(|f| f.duration.as_deref()))
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0);
        let layout = stream.channel_layout.unwrap_or_default();
        // ffmpeg's 5.1 / 7.1 layouts put the LFE fourth (FL FR FC LFE ...).
        let lfe = (channels >= 6 && (layout.starts_with("5.1") || layout.starts_with("7.1")))
            .then_some(3);
        let format = probe
            .format
            .and_then(|f| f.format_name)
            .map(|f| f.split(',').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let codec = stream.codec_name.unwrap_or_default();
        let mut total_frames = duration.map(|d| (d * sample_rate as f64).round() as u64);
        // ffprobe's duration of an Ogg Opus stream counts the pre-skip, which ffmpeg's decoding
        // drops: the declared length is the one without it.
        if codec == "opus" {
            if let (Some(t), Some(skip)) = (total_frames, opus_pre_skip(path)) {
                total_frames = Some(t.saturating_sub(u64::from(skip)));
            }
        }
        let info = StreamInfo {
            sample_rate,
            channels,
            bits_per_sample: stream
                .bits_per_raw_sample
                .and_then(|b| b.parse().ok())
                .filter(|&b| b > 0),
            format,
            codec,
            total_frames,
            lfe,
            decoder: "ffmpeg",
        };
        let mut src = FfmpegSource {
            ffmpeg: ffmpeg.to_path_buf(),
            path: path.to_path_buf(),
            timeout,
            info,
            running: None,
            bytes: vec![0u8; 1 << 16],
            samples: Vec::new(),
            carry: 0,
            produced: false,
            ended_early: false,
            cancel: Cancel::default(),
        };
        src.start(0)?;
        Ok(src)
    }

    pub(crate) fn set_cancel(&mut self, cancel: Cancel) {
        self.cancel = cancel;
    }

    fn start(&mut self, frame: u64) -> Result<(), Failure> {
        self.running = None; // kills the previous process
        self.carry = 0;
        self.produced = false;
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-nostdin", "-v", "error"]);
        if frame > 0 {
            let secs = frame as f64 / self.info.sample_rate as f64;
            cmd.args(["-ss", &format!("{secs:.6}")]);
        }
        cmd.arg("-i").arg(&self.path).args([
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "pipe:1",
        ]);
        self.running = Some(Running::spawn(&mut cmd, self.timeout)?);
        Ok(())
    }
}

/// The pre-skip of an Ogg Opus file: the 16-bit field at offset 10 of its `OpusHead` packet,
/// which starts in the file's first page (read from its first 512 bytes).
fn opus_pre_skip(path: &Path) -> Option<u16> {
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .ok()?
        .take(512)
        .read_to_end(&mut head)
        .ok()?;
    let at = head.windows(8).position(|w| w == b"OpusHead")?;
    let b = head.get(at + 10..at + 12)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

impl AudioSource for FfmpegSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn seek(&mut self, frame: u64) -> Result<Access, Failure> {
        self.start(frame)?;
        Ok(Access::Seek)
    }

    fn next_chunk(&mut self) -> Result<Option<&[f32]>, Failure> {
        if let Err(stop) = self.cancel.check() {
            self.running = None; // kills the subprocess
            return Err(stop);
        }
        let Some(run) = self.running.as_mut() else {
            return Ok(None);
        };
        let n = loop {
            match run.stdout.read(&mut self.bytes[self.carry..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::new(
                        ErrorClass::Io,
                        format!("reading ffmpeg output: {e}"),
                    ))
                }
            }
        };
        if n == 0 {
            let status = run.done.recv_timeout(Duration::from_secs(5)).ok().flatten();
            let stderr = run.stderr();
            self.running = None;
            return match status {
                Some(0) => Ok(None),
                None => Err(Failure::new(
                    ErrorClass::Timeout,
                    "ffmpeg was killed at its time limit",
                )),
                Some(code) => {
                    // Audio was produced and then the decoder gave up: keep what decoded.
                    if self.produced {
                        self.ended_early = true;
                        Ok(None)
                    } else {
                        Err(Failure::new(
                            ErrorClass::Corrupt,
                            format!("ffmpeg exited with {code}: {stderr}"),
                        ))
                    }
                }
            };
        }
        let avail = self.carry + n;
        // Hand out whole frames only: a chunk never splits a frame's channels.
        let frame_bytes = 4 * self.info.channels;
        let whole = avail / frame_bytes * frame_bytes;
        self.produced |= whole > 0;
        self.samples.clear();
        self.samples.extend(
            self.bytes[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        self.bytes.copy_within(whole..avail, 0);
        self.carry = avail - whole;
        Ok(Some(&self.samples))
    }

    fn skipped_packets(&self) -> u32 {
        0
    }

    fn ended_early(&self) -> bool {
        self.ended_early
    }
}
