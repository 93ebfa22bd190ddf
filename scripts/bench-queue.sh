#!/usr/bin/env bash
# The work queue's own throughput: a generated catalogue of 1,000,000 tracks in a fresh
# PostgreSQL database, 8 runners (threads, one connection each) claiming batches and recording
# a fixed fingerprint per track (an analysis that does nothing), with a release build. Prints
# tracks/s and the round trips to the server per track, and checks every track got exactly one
# fingerprint.
#
#   scripts/bench-queue.sh [TRACKS] [RUNNERS] [BATCH]       (defaults 1000000 8 500)
#   SYNC=off scripts/bench-queue.sh                          (synchronous_commit off, to compare)
#
# The server is SONOPRINT_TEST_POSTGRES when set, else a throwaway one (scripts/with-postgres.sh,
# fsync and synchronous_commit on).
set -euo pipefail
cd "$(dirname "$0")/.."
TRACKS=${1:-1000000}
RUNNERS=${2:-8}
BATCH=${3:-500}
SYNC=${SYNC:-on}
cargo build --release --locked -p sonoprint --bin sonoprint
export TRACKS RUNNERS BATCH SYNC
exec scripts/with-postgres.sh bash -c '
  set -euo pipefail
  name="sonoprint_bench_queue_$$"
  psql -X -q "$SONOPRINT_TEST_POSTGRES" -c "CREATE DATABASE $name" \
    -c "ALTER DATABASE $name SET synchronous_commit = $SYNC"
  db="${SONOPRINT_TEST_POSTGRES%/*}/$name"
  echo "synchronous_commit=$SYNC, $(nproc) cores"
  target/release/sonoprint bench-queue "$db" --tracks "$TRACKS" --runners "$RUNNERS" --batch "$BATCH"
  psql -X -q "$SONOPRINT_TEST_POSTGRES" -c "DROP DATABASE $name"
'
