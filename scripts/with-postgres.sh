#!/usr/bin/env bash
# Runs CMD... with SONOPRINT_TEST_POSTGRES naming a real PostgreSQL server.
#
#   scripts/with-postgres.sh cargo test --workspace
#
# When SONOPRINT_TEST_POSTGRES is already set, CMD runs against that server as it is. Otherwise
# PostgreSQL is installed from the Debian packages when missing (apt-get), a throwaway cluster is
# made in a temporary folder (owned by the `postgres` user when run as root: the server refuses
# to run as root), started on a free port of 127.0.0.1 (and a unix socket in that folder), and
# stopped and deleted when CMD ends, whatever way it ends. The exit status is CMD's.
#
# The cluster lives for one command and trusts its clients without a password, but only those
# pg_hba.conf lets in: loopback, and 10.231.0.0/16, the addresses the three-machine test
# (crates/cli/tests/machines.rs) gives the network namespaces it creates (it listens on every
# address so that those veth addresses, made later, reach it).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

if [ -n "${SONOPRINT_TEST_POSTGRES:-}" ]; then
  exec "$@"
fi

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
    fi
  done | sort -V | tail -n1
}

PGBIN=$(find_bin)
if [ -z "$PGBIN" ]; then
  echo "with-postgres: installing PostgreSQL from the Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(find_bin)
  if [ -z "$PGBIN" ]; then
    echo "with-postgres: PostgreSQL was installed but no initdb found under /usr/lib/postgresql" >&2
    exit 1
  fi
fi

# The server refuses to run as root: as root, the cluster belongs to the `postgres` user (which
# the Debian package creates).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 - <<'EOF' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

WORK=$(mktemp -d /tmp/sonoprint-pg.XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/data"
SOCK="$WORK/sock"
mkdir -p "$DATA" "$SOCK"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$WORK"
fi

started=
cleanup() {
  local rc=$?
  if [ -n "$started" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -A trust --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 || {
  cat "$WORK/initdb.log" >&2
  exit 1
}

echo "host all all 10.231.0.0/16 trust" >>"$DATA/pg_hba.conf"
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  if as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 \
    -o "-p $PORT -k $SOCK -c listen_addresses='*' -c max_connections=200 -c fsync=on" \
    start >/dev/null 2>&1; then
    started=1
    break
  fi
  echo "with-postgres: could not start on port $PORT (attempt $attempt)" >&2
  tail -n 5 "$WORK/server.log" >&2 || true
done
if [ -z "$started" ]; then
  echo "with-postgres: PostgreSQL did not start" >&2
  exit 1
fi

export SONOPRINT_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PORT/postgres"
export SONOPRINT_TEST_POSTGRES_PORT="$PORT"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') at $SONOPRINT_TEST_POSTGRES" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
