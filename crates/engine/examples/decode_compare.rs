//! Decodes every audio file under the given folders twice, in-process (the decoding layer
//! `sonoprint_engine::decode`, as the analysis uses it) and with `ffmpeg -f f32le` at the
//! file's native rate and channel count, and compares the two sample by sample.
//!
//! ```sh
//! cargo run --release -p sonoprint-engine --example decode_compare -- ~/.cache/sonoprint-corpus/music
//! cargo run --release -p sonoprint-engine --example decode_compare -- -v FILE_OR_DIR...
//! ```
//!
//! Prints one line per file (`-v`: every file; otherwise only those that differ) and a table per
//! codec: files compared, files with the same number of samples, and the largest absolute sample
//! difference over the common length. Streams both decoders side by side: memory stays small
//! whatever the length of the file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sonoprint_engine::decode::{self, sniff, OpenOptions};

#[derive(Default)]
struct Row {
    files: usize,
    equal: usize,
    max_diff: f32,
    failed: usize,
}

struct Outcome {
    key: String,
    ours: u64,
    theirs: u64,
    max_diff: f32,
    decoder: &'static str,
    declared: Option<u64>,
}

fn main() {
    let mut verbose = false;
    let mut roots = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "-v" {
            verbose = true;
        } else {
            roots.push(PathBuf::from(a));
        }
    }
    if roots.is_empty() {
        eprintln!("usage: decode_compare [-v] FILE_OR_DIR...");
        std::process::exit(2);
    }
    let mut files = Vec::new();
    for r in &roots {
        walk(r, &mut files);
    }
    files.sort();
    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    for f in &files {
        match compare(f) {
            Ok(o) => {
                let row = table.entry(o.key.clone()).or_default();
                row.files += 1;
                if o.ours == o.theirs {
                    row.equal += 1;
                }
                row.max_diff = row.max_diff.max(o.max_diff);
                if verbose || o.ours != o.theirs || o.max_diff > 1e-3 {
                    println!(
                        "{:<10} {:<9} ours {:>10} ffmpeg {:>10} ({:+}) declared {:>10} max diff {:.2e}  {}",
                        o.key,
                        o.decoder,
                        o.ours,
                        o.theirs,
                        o.ours as i64 - o.theirs as i64,
                        o.declared.map_or("?".into(), |d| d.to_string()),
                        o.max_diff,
                        f.display()
                    );
                }
            }
            Err((key, e)) => {
                table.entry(key).or_default().failed += 1;
                println!("FAILED {}: {e}", f.display());
            }
        }
    }
    println!();
    println!(
        "| format/codec | files | sample counts equal | max sample difference | not compared |"
    );
    println!("|---|---|---|---|---|");
    for (k, r) in &table {
        println!(
            "| {k} | {} | {}/{} | {:.1e} | {} |",
            r.files, r.equal, r.files, r.max_diff, r.failed
        );
    }
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                walk(&e.path(), out);
            }
        }
    } else if p.is_file() {
        let mut head = Vec::new();
        if let Ok(f) = std::fs::File::open(p) {
            if f.take(64).read_to_end(&mut head).is_ok()
                && matches!(sniff::sniff(&head), sniff::Kind::Audio(_))
            {
                out.push(p.to_path_buf());
            }
        }
    }
}

fn compare(path: &Path) -> Result<Outcome, (String, String)> {
    let opts = OpenOptions::default();
    let mut src = decode::open(path, &opts).map_err(|e| ("?".to_string(), e.to_string()))?;
    let info = src.info().clone();
    let key = format!("{}/{}", info.format, info.codec);
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "f32le", "-ac"])
        .arg(info.channels.to_string())
        .arg("-ar")
        .arg(info.sample_rate.to_string())
        .arg("-")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| (key.clone(), format!("cannot run ffmpeg: {e}")))?;
    let mut theirs_out = child
        .stdout
        .take()
        .ok_or_else(|| (key.clone(), "no ffmpeg stdout".to_string()))?;
    let ch = info.channels.max(1) as u64;
    let mut ours = 0u64;
    let mut theirs = 0u64;
    let mut max_diff = 0f32;
    let mut bytes = Vec::new();
    let mut theirs_done = false;
    loop {
        let chunk = match src.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err((key, format!("our decoder: {e}"))),
        };
        ours += chunk.len() as u64;
        if theirs_done {
            continue;
        }
        bytes.resize(chunk.len() * 4, 0);
        let got = read_full(&mut theirs_out, &mut bytes);
        theirs += got as u64 / 4;
        if got < bytes.len() {
            theirs_done = true;
        }
        for (a, b) in chunk.iter().zip(bytes[..got / 4 * 4].chunks_exact(4)) {
            let b = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            max_diff = max_diff.max((a - b).abs());
        }
    }
    let mut rest = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut theirs_out, &mut rest);
        theirs += n as u64 / 4;
        if n < rest.len() {
            break;
        }
    }
    child.wait().ok();
    Ok(Outcome {
        key,
        ours: ours / ch,
        theirs: theirs / ch,
        max_diff,
        decoder: info.decoder,
        declared: info.total_frames,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}
