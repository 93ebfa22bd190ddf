//! `sonoprint scan DIR...`: find the audio files under folders and bring the library up to date.
//!
//! A rescan must be cheap, so it works from `stat` alone: the walk collects (size, mtime) of every
//! file, one query per root fetches what the library knows, and only new or changed files are
//! opened (content sniffing and the title tag).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use sonoprint_app::LibrarySpec;
use sonoprint_engine::decode::sniff::{sniff, Kind};
use sonoprint_store::{KnownFile, ScanCounts, ScannedFile, TrackState};

/// Extensions taken as audio (the content is still sniffed when a file is new or changed).
const AUDIO_EXT: &[&str] = &[
    "flac", "mp3", "m4a", "mp4", "m4b", "aac", "alac", "ogg", "oga", "opus", "wav", "wave", "aif",
    "aiff", "aifc", "wma", "ape", "wv", "mka", "caf", "mp2", "mpc", "au", "snd", "w64", "rf64",
    "amr", "webm",
];

/// Extensions that are never audio: skipped without being opened.
const NOT_AUDIO_EXT: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "heic", "ico", "svg", "txt", "nfo",
    "cue", "log", "m3u", "m3u8", "pls", "xspf", "pdf", "md", "rtf", "doc", "docx", "odt", "html",
    "htm", "xml", "json", "ini", "cfg", "db", "sqlite", "sfv", "md5", "sha1", "sha256", "ffp",
    "st5", "accurip", "lrc", "srt", "sub", "url", "lnk", "desktop", "ds_store", "zip", "rar", "7z",
    "tar", "gz", "bz2", "xz", "iso", "par2", "nzb", "torrent", "exe", "dll", "so", "sh", "bat",
    "py", "js", "css", "mkv", "avi", "mov", "wmv", "flv", "mpg", "mpeg", "vob", "db-wal", "db-shm",
];

/// Files per write transaction: large enough to amortise the commit, small enough that a scan
/// never holds the write lock long against a running `run`.
const BATCH: usize = 5_000;

#[derive(clap::Args)]
pub struct Args {
    /// Walker threads [default: twice the cores, at most 16; the walk waits on the disk].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Folders to scan, recursively. Symbolic links are followed (each real file once).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

/// A regular file found by the walk, with what `stat` says of it.
struct Found {
    path: PathBuf,
    ext: Ext,
    size: u64,
    mtime_ns: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ext {
    Audio,
    Unknown,
}

/// Why files were left out.
#[derive(Default)]
struct Skipped {
    /// Known non-audio extension (not opened).
    by_name: u64,
    /// Content says it is not audio.
    by_content: u64,
    symlinks: u64,
    /// FIFOs, sockets, devices (not opened).
    special: u64,
    /// Paths that are not UTF-8 (the database stores text).
    non_utf8: u64,
    /// Files that could not be stat'ed or opened.
    unreadable: u64,
}

impl Skipped {
    fn add(&mut self, o: &Skipped) {
        self.by_name += o.by_name;
        self.by_content += o.by_content;
        self.symlinks += o.symlinks;
        self.special += o.special;
        self.non_utf8 += o.non_utf8;
        self.unreadable += o.unreadable;
    }

    fn total(&self) -> u64 {
        self.by_name
            + self.by_content
            + self.symlinks
            + self.special
            + self.non_utf8
            + self.unreadable
    }
}

/// What the walk of all roots found.
#[derive(Default)]
struct Walk {
    files: Vec<Found>,
    /// Folders that could not be listed: their files are not marked missing.
    unreadable_dirs: Vec<(PathBuf, String)>,
    skipped: Skipped,
}

pub fn run(args: Args, spec: &LibrarySpec) -> Result<ExitCode, String> {
    let t0 = Instant::now();
    let roots = roots(&args.dirs)?;
    let threads = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).min(16))
    });
    if threads == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let db = spec.describe();
    let mut lib = sonoprint_app::open_catalog(spec).map_err(|e| e.to_string())?;
    let store = lib
        .catalog()
        .ok_or("this library keeps no list of files of its own to scan")?;
    let scan = store.begin_scan(&roots).map_err(|e| e.to_string())?;

    let mut known: HashMap<PathBuf, KnownFile> = HashMap::new();
    for root in &roots {
        known.extend(store.known_files(root).map_err(|e| e.to_string())?);
    }
    let mut walk = walk(&roots, threads);
    for (dir, err) in &walk.unreadable_dirs {
        eprintln!("sonoprint: cannot read folder {}: {err}", dir.display());
    }

    // Files the library has, unchanged and present, are passed on without being opened.
    let mut files: Vec<ScannedFile> = Vec::with_capacity(walk.files.len());
    let mut inspect: Vec<Found> = Vec::new();
    for f in walk.files.drain(..) {
        if f.path.to_str().is_none() {
            walk.skipped.non_utf8 += 1;
            continue;
        }
        match known.get(&f.path) {
            Some(k)
                if k.filesize == Some(f.size)
                    && k.mtime_ns == Some(f.mtime_ns)
                    && k.state == TrackState::Present =>
            {
                files.push(ScannedFile {
                    path: f.path,
                    filesize: f.size,
                    mtime_ns: f.mtime_ns,
                    title: None,
                })
            }
            _ => inspect.push(f),
        }
    }
    let (inspected, skipped) = inspect_all(inspect, threads);
    walk.skipped.add(&skipped);
    files.extend(inspected);
    // Path order gives new tracks ids in folder order.
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let mut counts = ScanCounts::default();
    for batch in files.chunks(BATCH) {
        counts += store
            .upsert_scanned(&scan, batch)
            .map_err(|e| e.to_string())?;
    }
    let not_walked: Vec<PathBuf> = walk
        .unreadable_dirs
        .iter()
        .map(|(d, _)| d.clone())
        .collect();
    let missing = store
        .finish_scan(&scan, &not_walked)
        .map_err(|e| e.to_string())?;

    let s = &walk.skipped;
    let mut out = String::new();
    out.push_str(&format!(
        "Scanned {} folder{} in {:.2} s: {} audio files\n",
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        t0.elapsed().as_secs_f64(),
        files.len()
    ));
    out.push_str(&format!(
        "  added {}, updated {}, unchanged {}, revived {}, missing {}\n",
        counts.added, counts.updated, counts.unchanged, counts.revived, missing
    ));
    out.push_str(&format!(
        "  skipped {}: {} not audio by name, {} not audio by content, {} broken symlinks, {} special \
         files, {} non-UTF-8 paths, {} unreadable{}\n",
        s.total(),
        s.by_name,
        s.by_content,
        s.symlinks,
        s.special,
        s.non_utf8,
        s.unreadable,
        if walk.unreadable_dirs.is_empty() {
            String::new()
        } else {
            format!("; {} unreadable folders", walk.unreadable_dirs.len())
        }
    ));
    out.push_str(&format!("Library: {db}\n"));
    crate::status::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The folders to scan, absolute and canonical, without duplicates or folders inside another.
fn roots(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut roots = Vec::new();
    for d in dirs {
        let c =
            std::fs::canonicalize(d).map_err(|e| format!("cannot scan {}: {e}", d.display()))?;
        if !c.is_dir() {
            return Err(format!("cannot scan {}: not a folder", d.display()));
        }
        if c.to_str().is_none() {
            return Err(format!(
                "cannot scan {}: the path is not UTF-8",
                d.display()
            ));
        }
        roots.push(c);
    }
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
    Ok(roots)
}

/// Lists every regular file under `roots` on `threads` threads. Symbolic links are followed to
/// files and folders, and every path is kept as its real (canonical) path, so that a file
/// reached through several links is one track and a link back up the tree ends there (every
/// folder is listed once). FIFOs, sockets and devices are counted, never opened.
fn walk(roots: &[PathBuf], threads: usize) -> Walk {
    // The stack of folders to list and the number being listed: the walk is over when both are 0.
    let queue = Mutex::new((roots.to_vec(), 0usize));
    let visited: Mutex<HashSet<PathBuf>> = Mutex::new(HashSet::new());
    let wake = Condvar::new();
    let parts: Vec<Walk> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| walk_worker(&queue, &visited, &wake)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = Walk::default();
    for mut p in parts {
        out.files.append(&mut p.files);
        out.unreadable_dirs.append(&mut p.unreadable_dirs);
        out.skipped.add(&p.skipped);
    }
    // A file reached through a link and directly (or through two links) is one file.
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.files.dedup_by(|a, b| a.path == b.path);
    out
}

fn walk_worker(
    queue: &Mutex<(Vec<PathBuf>, usize)>,
    visited: &Mutex<HashSet<PathBuf>>,
    wake: &Condvar,
) -> Walk {
    let mut out = Walk::default();
    loop {
        let dir = {
            let Ok(mut q) = queue.lock() else {
                return out;
            };
            loop {
                if let Some(d) = q.0.pop() {
                    q.1 += 1;
                    break d;
                }
                if q.1 == 0 {
                    wake.notify_all();
                    return out;
                }
                q = match wake.wait(q) {
                    Ok(q) => q,
                    Err(_) => return out,
                };
            }
        };
        // Every folder is a real path: one listed before (through a link, or a link loop) is
        // not listed again.
        let first = visited
            .lock()
            .map(|mut v| v.insert(dir.clone()))
            .unwrap_or(false);
        let subdirs = if first {
            list_dir(&dir, &mut out)
        } else {
            Vec::new()
        };
        let Ok(mut q) = queue.lock() else {
            return out;
        };
        q.0.extend(subdirs);
        q.1 -= 1;
        wake.notify_all();
    }
}

/// Lists one folder into `out`; returns its subfolders.
fn list_dir(dir: &Path, out: &mut Walk) -> Vec<PathBuf> {
    let mut subdirs = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.unreadable_dirs.push((dir.to_path_buf(), e.to_string()));
            return subdirs;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                // The listing broke off: treat the folder as not (fully) walked.
                out.unreadable_dirs.push((dir.to_path_buf(), e.to_string()));
                break;
            }
        };
        // `file_type` does not follow symbolic links (and usually needs no extra syscall).
        let Ok(ft) = entry.file_type() else {
            out.skipped.unreadable += 1;
            continue;
        };
        let mut path = entry.path();
        let mut ft = ft;
        if ft.is_symlink() {
            // Follow it: to its real path, whose type decides. A dangling link is skipped.
            match std::fs::canonicalize(&path)
                .and_then(|real| std::fs::metadata(&real).map(|m| (real, m.file_type())))
            {
                Ok((real, real_ft)) => {
                    path = real;
                    ft = real_ft;
                }
                Err(_) => {
                    out.skipped.symlinks += 1;
                    continue;
                }
            }
        }
        if ft.is_dir() {
            subdirs.push(path);
        } else if !ft.is_file() {
            out.skipped.special += 1;
        } else {
            let ext = match extension_class(&path) {
                None => {
                    out.skipped.by_name += 1;
                    continue;
                }
                Some(e) => e,
            };
            // A regular file's size and mtime, without opening it.
            match std::fs::metadata(&path) {
                Ok(m) => out.files.push(Found {
                    path,
                    ext,
                    size: m.len(),
                    mtime_ns: sonoprint_store::mtime_ns(&m),
                }),
                Err(_) => out.skipped.unreadable += 1,
            }
        }
    }
    subdirs
}

/// `Some(Audio)` for an audio extension, `None` for a known non-audio one, else `Some(Unknown)`
/// (no extension, or one we do not know: the content decides).
fn extension_class(path: &Path) -> Option<Ext> {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return Some(Ext::Unknown);
    };
    let ext = ext.to_ascii_lowercase();
    if AUDIO_EXT.contains(&ext.as_str()) {
        Some(Ext::Audio)
    } else if NOT_AUDIO_EXT.contains(&ext.as_str()) {
        None
    } else {
        Some(Ext::Unknown)
    }
}

/// Sniffs and reads the title of new and changed files, on `threads` threads.
fn inspect_all(files: Vec<Found>, threads: usize) -> (Vec<ScannedFile>, Skipped) {
    let next = AtomicUsize::new(0);
    let files = &files;
    let parts: Vec<(Vec<ScannedFile>, Skipped)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.min(files.len()).max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut kept = Vec::new();
                    let mut skipped = Skipped::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        match inspect(f) {
                            Inspected::Audio(title) => kept.push(ScannedFile {
                                path: f.path.clone(),
                                filesize: f.size,
                                mtime_ns: f.mtime_ns,
                                title: Some(title),
                            }),
                            Inspected::NotAudio => skipped.by_content += 1,
                            Inspected::Unreadable => skipped.unreadable += 1,
                        }
                    }
                    (kept, skipped)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut kept = Vec::new();
    let mut skipped = Skipped::default();
    for (mut k, s) in parts {
        kept.append(&mut k);
        skipped.add(&s);
    }
    (kept, skipped)
}

enum Inspected {
    Audio(String),
    NotAudio,
    Unreadable,
}

/// Decides whether a new or changed file belongs in the library, and reads its title.
fn inspect(f: &Found) -> Inspected {
    let mut head = [0u8; 64];
    let n = match std::fs::File::open(&f.path).and_then(|mut file| read_head(&mut file, &mut head))
    {
        Ok(n) => n,
        Err(_) => return Inspected::Unreadable,
    };
    let kind = sniff(&head[..n]);
    let keep = match (f.ext, kind) {
        // Recognisably something else (a text file named .flac): not a track.
        (_, Kind::Other(_)) => false,
        (_, Kind::Audio(_)) => true,
        // An audio name with unrecognised content (empty, truncated, corrupt) stays, so that
        // `run` records why it fails instead of the file vanishing silently.
        (Ext::Audio, Kind::Unknown) => true,
        (Ext::Unknown, Kind::Unknown) => false,
    };
    if !keep {
        return Inspected::NotAudio;
    }
    let title = match kind {
        Kind::Audio(_) => title_tag(&f.path),
        _ => None,
    };
    Inspected::Audio(title.unwrap_or_else(|| file_title(&f.path)))
}

fn read_head(file: &mut std::fs::File, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The file name without its extension: the title when the file has no title tag.
fn file_title(path: &Path) -> String {
    path.file_stem()
        .or_else(|| path.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The title tag, read by symphonia's probe (container headers only, cover art not loaded). A
/// panic in a demuxer on a malformed file only costs the tag.
fn title_tag(path: &Path) -> Option<String> {
    use symphonia::core::common::Limit;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
    use symphonia::core::meta::{MetadataOptions, StandardTag};

    let file = std::fs::File::open(path).ok()?;
    std::panic::catch_unwind(move || {
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let meta_opts = MetadataOptions::default().limit_visual_bytes(Limit::Maximum(0));
        let mut reader = symphonia::default::get_probe()
            .probe(&Hint::new(), mss, FormatOptions::default(), meta_opts)
            .ok()?;
        let mut meta = reader.metadata();
        let rev = meta.skip_to_latest()?;
        let tags = rev
            .media
            .tags
            .iter()
            .chain(rev.per_track.iter().flat_map(|t| t.metadata.tags.iter()));
        for tag in tags {
            if let Some(StandardTag::TrackTitle(t)) = &tag.std {
                let t = t.trim();
                if !t.is_empty() {
                    return Some(t.to_string());
                }
            }
        }
        None
    })
    .ok()
    .flatten()
}
