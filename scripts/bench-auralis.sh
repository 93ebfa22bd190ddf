#!/usr/bin/env bash
# Runs the same folders through sonoprint's own library and through an Auralis database with
# one track row per file, alternately, and prints both throughputs and what the player's
# reading query sees afterwards.
#
#   scripts/bench-auralis.sh [SONOPRINT] [DIR...]
#   (default: target/release/sonoprint on ~/.cache/sonoprint-corpus/{music,nasty})
set -euo pipefail
BIN=${1:-target/release/sonoprint}
shift || true
CORPUS=${SONOPRINT_CORPUS:-$HOME/.cache/sonoprint-corpus}
DIRS=("$@")
[ ${#DIRS[@]} -gt 0 ] || DIRS=("$CORPUS/music" "$CORPUS/nasty")
ROUNDS=${ROUNDS:-2}
JOBS=${JOBS:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

make_player_db() {
  python3 - "$1" "${DIRS[@]}" <<'EOF'
import os, sqlite3, sys
db, dirs = sys.argv[1], sys.argv[2:]
c = sqlite3.connect(db)
c.executescript("""
PRAGMA journal_mode=WAL;
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, title VARCHAR NOT NULL,
    filepath VARCHAR NOT NULL UNIQUE, duration FLOAT, sample_rate INTEGER, bit_depth INTEGER,
    channels INTEGER, format VARCHAR, filesize INTEGER,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    fingerprint_status TEXT DEFAULT 'pending', fingerprint_computed_at DATETIME,
    fingerprint_error_message TEXT, fingerprint_vector TEXT);
CREATE TABLE track_fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    sub_bass_pct REAL NOT NULL, bass_pct REAL NOT NULL, low_mid_pct REAL NOT NULL,
    mid_pct REAL NOT NULL, upper_mid_pct REAL NOT NULL, presence_pct REAL NOT NULL,
    air_pct REAL NOT NULL, lufs REAL NOT NULL, crest_db REAL NOT NULL,
    bass_mid_ratio REAL NOT NULL, tempo_bpm REAL NOT NULL, rhythm_stability REAL NOT NULL,
    transient_density REAL NOT NULL, silence_ratio REAL NOT NULL,
    spectral_centroid REAL NOT NULL, spectral_rolloff REAL NOT NULL,
    spectral_flatness REAL NOT NULL, harmonic_ratio REAL NOT NULL,
    pitch_stability REAL NOT NULL, chroma_energy REAL NOT NULL,
    dynamic_range_variation REAL NOT NULL, loudness_variation_std REAL NOT NULL,
    peak_consistency REAL NOT NULL, stereo_width REAL NOT NULL,
    phase_correlation REAL NOT NULL, fingerprint_version INTEGER NOT NULL DEFAULT 1,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    is_reference INTEGER NOT NULL DEFAULT 0, reference_weight REAL NOT NULL DEFAULT 0.0);
""")
n = 0
for d in dirs:
    for root, subdirs, files in os.walk(d):
        for name in sorted(subdirs + files):
            p = os.path.join(root, name)
            if name in files or os.path.islink(p):
                c.execute("INSERT OR IGNORE INTO tracks (title, filepath) VALUES (?, ?)", (name, p))
                n += 1
c.commit()
print(f"player database with {n} tracks", file=sys.stderr)
EOF
}

rate() { grep -o '[0-9.]* tracks/s' "$1" | tail -1; }

for round in $(seq "$ROUNDS"); do
  own="$WORK/own$round"; player="$WORK/player$round.db"
  "$BIN" --data-dir "$own" scan "${DIRS[@]}" >/dev/null
  "$BIN" --data-dir "$own" run --jobs "$JOBS" >"$WORK/own$round.out" 2>&1
  make_player_db "$player"
  "$BIN" --data-dir "$WORK/logs" --auralis "$player" run --jobs "$JOBS" >"$WORK/au$round.out" 2>&1
  echo "round $round: own $(rate "$WORK/own$round.out"), auralis $(rate "$WORK/au$round.out")"
  grep '^Run ' "$WORK/own$round.out" | sed 's/^/  own:     /'
  grep '^Run ' "$WORK/au$round.out" | sed 's/^/  auralis: /'
done
echo "the player's reading query on the last database:"
python3 - "$player" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
q = lambda s: c.execute(s).fetchone()[0]
print("  tracks", q("SELECT COUNT(*) FROM tracks"))
print("  fingerprints (lufs != -100 AND fingerprint_version >= 1)",
      q("SELECT COUNT(*) FROM track_fingerprints WHERE lufs != -100 AND fingerprint_version >= 1"))
for status, n in c.execute("SELECT fingerprint_status, COUNT(*) FROM tracks GROUP BY 1 ORDER BY 1"):
    print(f"  fingerprint_status {status}: {n}")
print("  integrity", q("PRAGMA integrity_check"), "| foreign keys",
      "ok" if not c.execute("PRAGMA foreign_key_check").fetchall() else "VIOLATED")
EOF
