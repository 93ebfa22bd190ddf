#!/usr/bin/env bash
# `sonoprint run` on real audio into sonoprint's SQLite file and into PostgreSQL, alternately
# (ROUNDS rounds, a fresh library each time), and prints both throughputs and their ratio: the
# shared store must cost the run nothing that matters.
#
#   scripts/bench-pg-vs-sqlite.sh [SONOPRINT] [DIR...]
#   (default: target/release/sonoprint on ~/.cache/sonoprint-corpus/music; ROUNDS=2, JOBS=2)
#
# The PostgreSQL server is SONOPRINT_TEST_POSTGRES when set, else a throwaway one
# (scripts/with-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SONOPRINT_TEST_POSTGRES:-}" ]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
BIN=${1:-target/release/sonoprint}
shift || true
CORPUS=${SONOPRINT_CORPUS:-$HOME/.cache/sonoprint-corpus}
DIRS=("$@")
[ ${#DIRS[@]} -gt 0 ] || DIRS=("$CORPUS/music")
ROUNDS=${ROUNDS:-2}
JOBS=${JOBS:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rate() { grep -o '[0-9.]* tracks/s' | tail -n1 | awk '{print $1}'; }
sq_total=0
pg_total=0
for r in $(seq 1 "$ROUNDS"); do
  d="$WORK/sqlite-$r"
  "$BIN" --data-dir "$d" scan "${DIRS[@]}" >/dev/null
  s=$("$BIN" --data-dir "$d" run --jobs "$JOBS" 2>/dev/null | rate)
  name="sonoprint_bench_pg_$$_$r"
  psql -X -q "$SONOPRINT_TEST_POSTGRES" -c "CREATE DATABASE $name"
  url="${SONOPRINT_TEST_POSTGRES%/*}/$name"
  "$BIN" --data-dir "$WORK/pgdata" --db "$url" scan "${DIRS[@]}" >/dev/null
  p=$("$BIN" --data-dir "$WORK/pgdata" --db "$url" run --jobs "$JOBS" 2>/dev/null | rate)
  psql -X -q "$SONOPRINT_TEST_POSTGRES" -c "DROP DATABASE $name"
  echo "round $r: SQLite $s tracks/s, PostgreSQL $p tracks/s"
  sq_total=$(awk -v a="$sq_total" -v b="$s" 'BEGIN { print a + b }')
  pg_total=$(awk -v a="$pg_total" -v b="$p" 'BEGIN { print a + b }')
done
awk -v s="$sq_total" -v p="$pg_total" -v n="$ROUNDS" 'BEGIN {
  printf "mean: SQLite %.3f tracks/s, PostgreSQL %.3f tracks/s, ratio PostgreSQL/SQLite %.3f\n",
    s / n, p / n, p / s }'
