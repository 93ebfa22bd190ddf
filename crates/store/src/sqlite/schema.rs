//! The schema and its migrations. A migration, once released, never changes: a new schema
//! version appends a new entry to `MIGRATIONS`.

/// `MIGRATIONS[i]` takes a database from `user_version` i to i + 1.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes; a database above it was written by a newer sonoprint.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. `tracks` and `track_fingerprints` keep the Auralis names and types (so its tools
/// can read our database); sonoprint's own columns are appended after theirs and nullable.
/// Times in sonoprint's own tables are unix milliseconds; the Auralis-style `*_at` columns are
/// SQLite `CURRENT_TIMESTAMP` text, as Auralis wrote them.
const V1: &str = r#"
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT,
    filepath TEXT NOT NULL UNIQUE,
    duration REAL,
    sample_rate INTEGER,
    channels INTEGER,
    format TEXT,
    filesize INTEGER,
    mtime_ns INTEGER,
    state TEXT NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'missing')),
    -- The last scan (scans.id) that saw the file: files under a scanned root that the scan did
    -- not see are the vanished ones.
    seen_scan INTEGER,
    added_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE track_fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    sub_bass_pct REAL NOT NULL,
    bass_pct REAL NOT NULL,
    low_mid_pct REAL NOT NULL,
    mid_pct REAL NOT NULL,
    upper_mid_pct REAL NOT NULL,
    presence_pct REAL NOT NULL,
    air_pct REAL NOT NULL,
    lufs REAL NOT NULL,
    crest_db REAL NOT NULL,
    bass_mid_ratio REAL NOT NULL,
    tempo_bpm REAL NOT NULL,
    rhythm_stability REAL NOT NULL,
    transient_density REAL NOT NULL,
    silence_ratio REAL NOT NULL,
    spectral_centroid REAL NOT NULL,
    spectral_rolloff REAL NOT NULL,
    spectral_flatness REAL NOT NULL,
    harmonic_ratio REAL NOT NULL,
    pitch_stability REAL NOT NULL,
    chroma_energy REAL NOT NULL,
    dynamic_range_variation REAL NOT NULL,
    loudness_variation_std REAL NOT NULL,
    peak_consistency REAL NOT NULL,
    stereo_width REAL NOT NULL,
    phase_correlation REAL NOT NULL,
    fingerprint_version INTEGER NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    -- sonoprint: the file the row was computed from (a row is current only while the track's
    -- size and mtime still match) and how it was computed.
    filesize INTEGER,
    mtime_ns INTEGER,
    mode TEXT,
    decoder TEXT,
    analyzed_sec REAL,
    computed_ms INTEGER
);

CREATE TABLE failures (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    class TEXT NOT NULL,
    message TEXT NOT NULL,
    decoders TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1,
    -- The file as it was when it failed: a changed file is tried again.
    filesize INTEGER,
    mtime_ns INTEGER,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL
);
CREATE INDEX failures_class ON failures(class);

CREATE TABLE claims (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    runner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX claims_runner ON claims(runner);

CREATE TABLE roots (
    path TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL,
    last_scan_at INTEGER
);

CREATE TABLE scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    runner TEXT NOT NULL,
    mode TEXT NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    wall_sec REAL,
    cpu_sec REAL,
    status TEXT NOT NULL
);
"#;

/// Version 2: the similarity graph, with the player's table and columns (so the player's tools
/// read it), and what it was built from.
const V2: &str = r#"
CREATE TABLE similarity_graph (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    similar_track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    distance REAL NOT NULL,
    similarity_score REAL NOT NULL,
    rank INTEGER NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (track_id, similar_track_id)
);
CREATE INDEX idx_similarity_graph_track_id ON similarity_graph(track_id, rank);
CREATE INDEX idx_similarity_graph_similar_track_id ON similarity_graph(similar_track_id);

CREATE TABLE similarity_model (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    model TEXT NOT NULL,
    model_id TEXT NOT NULL,
    k INTEGER NOT NULL,
    fitted_on INTEGER NOT NULL,
    built_at INTEGER NOT NULL
);

CREATE TABLE similarity_nodes (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    digest INTEGER NOT NULL
);
"#;
