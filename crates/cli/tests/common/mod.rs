//! Helpers shared by the CLI integration tests: the binary with a data dir, exit checks,
//! generated WAV files. Each test binary uses a subset.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `sonoprint --data-dir DATA ARGS...`, with no library, ffmpeg or log settings inherited from
/// the environment.
pub fn command(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sonoprint"));
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SONOPRINT_HOME")
        .env_remove("SONOPRINT_FFMPEG")
        .env_remove("SONOPRINT_AURALIS")
        .env_remove("SONOPRINT_DATABASE_URL")
        .env_remove("RUST_LOG");
    c
}

/// Runs `sonoprint --data-dir DATA ARGS...` to completion.
pub fn sonoprint(data: &Path, args: &[&str]) -> Output {
    command(data, args).output().unwrap()
}

/// The stdout of a command that must have succeeded (the message shows both streams).
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A mono 16-bit 22 050 Hz WAV of `secs` seconds of a tone.
pub fn wav(path: &Path, secs: f64, freq: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(secs * 22050.0) as usize {
        let t = i as f64 / 22050.0;
        w.write_sample(((t * freq * std::f64::consts::TAU).sin() * 12000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// A small deterministic PRNG (xorshift) for random moments and choices that a test can
/// replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// A running `sonoprint serve`, killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `serve --port 0` command) and waits for the line that says where it
/// listens.
pub fn start(mut cmd: Command) -> Server {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        child,
        base: String::new(),
        _log: rx,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.base.is_empty() {
        let line = server
            ._log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server did not say where it listens");
        if let Some(i) = line.find("listening on http://") {
            let addr = line[i + "listening on http://".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            let port = addr.rsplit(':').next().unwrap();
            server.base = format!("http://127.0.0.1:{port}");
        }
    }
    server
}

/// The PostgreSQL server of the tests (`SONOPRINT_TEST_POSTGRES`); a panic saying how to get
/// one when it is not set: the PostgreSQL tests fail, never skip.
pub fn pg_server() -> String {
    match std::env::var("SONOPRINT_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SONOPRINT_TEST_POSTGRES is not set: the PostgreSQL tests need a server. Run them as \
             `scripts/with-postgres.sh cargo test --workspace` (it starts a throwaway server)"
        ),
    }
}

/// `url` with its database name replaced by `name`.
pub fn pg_with_dbname(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// A new empty database on the test server: its URL.
pub fn pg_database(tag: &str) -> String {
    let server = pg_server();
    let mut c = postgres::Client::connect(&server, postgres::NoTls).unwrap_or_else(|e| {
        panic!("cannot reach the PostgreSQL server of SONOPRINT_TEST_POSTGRES: {e}")
    });
    let name = format!(
        "sonoprint_cli_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    pg_with_dbname(&server, &name)
}

/// A connection to the database at `url`.
pub fn pg(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// The first column of the one row of `sql`, as i64.
pub fn pg_count(url: &str, sql: &str) -> i64 {
    pg(url).query_one(sql, &[]).unwrap().get(0)
}
