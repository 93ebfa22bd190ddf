//! The log file `<data-dir>/logs/sonoprint.log`: one line per failure and per run summary,
//! filtered like `RUST_LOG` (default `info`). Rotated by size when opened: over 10 MB it becomes
//! `sonoprint.log.1`, and so on up to five old files. The terminal gets only progress and
//! summaries, never the log.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;

const MAX_BYTES: u64 = 10 * 1024 * 1024;
const KEEP: usize = 5;

/// Starts logging to `dir/sonoprint.log`. An error here is reported but does not stop the work:
/// results go to the database, not the log.
pub fn init(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log folder {}: {e}", dir.display()))?;
    let path = dir.join("sonoprint.log");
    if fs::metadata(&path)
        .map(|m| m.len() > MAX_BYTES)
        .unwrap_or(false)
    {
        for i in (1..KEEP).rev() {
            let from = dir.join(format!("sonoprint.log.{i}"));
            if from.exists() {
                fs::rename(&from, dir.join(format!("sonoprint.log.{}", i + 1)))
                    .map_err(|e| format!("cannot rotate {}: {e}", from.display()))?;
            }
        }
        fs::rename(&path, dir.join("sonoprint.log.1"))
            .map_err(|e| format!("cannot rotate {}: {e}", path.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open log {}: {e}", path.display()))?;
    let file = Arc::new(Mutex::new(file));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || LogWriter(Arc::clone(&file)))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
}

struct LogWriter(Arc<Mutex<File>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Err(std::io::Error::other("log file lock poisoned")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}
