#!/usr/bin/env bash
# A throwaway PostgreSQL for Garrison's store tests and CI.
#
#   scripts/postgres-for-tests.sh          start it (idempotent) and print ONE line: its SQLAlchemy URL
#   scripts/postgres-for-tests.sh stop     stop it and delete its data
#
#   export GARRISON_TEST_PG_URL="$(scripts/postgres-for-tests.sh)"
#
# Installs Debian's `postgresql` with apt-get when no initdb is found. The cluster lives in
# $GARRISON_PG_DIR (default /tmp/garrison-pg-<port>), listens on 127.0.0.1:$GARRISON_PG_PORT (default 54329) and
# has a database garrison_test owned by user garrison (password garrison). When run as root, the server runs as
# the `postgres` OS user. Everything but the URL goes to stderr.
set -euo pipefail

PORT="${GARRISON_PG_PORT:-54329}"
DIR="${GARRISON_PG_DIR:-/tmp/garrison-pg-${PORT}}"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
DB=garrison_test
USER_NAME=garrison
PASSWORD=garrison
URL="postgresql+psycopg://${USER_NAME}:${PASSWORD}@127.0.0.1:${PORT}/${DB}"

say() { echo "postgres-for-tests: $*" >&2; }
die() { say "error: $*"; exit 1; }

find_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
  fi
}

install_postgres() {
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "initdb not found and not root: install PostgreSQL first"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "initdb not found and no apt-get: install PostgreSQL first"
  say "installing postgresql with apt-get"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

BIN="$(find_bindir)"
if [[ -z "$BIN" ]]; then
  install_postgres
  BIN="$(find_bindir)"
  [[ -n "$BIN" ]] || die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
fi

# Run a PostgreSQL program as the cluster's owner: `postgres` when we are root (the server refuses root).
as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

if [[ "$(id -u)" -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  say "creating the postgres OS user"
  useradd --system --home-dir "$DIR" --shell /usr/sbin/nologin postgres
fi

is_running() { [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

if [[ "${1:-start}" == "stop" ]]; then
  if is_running; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  fi
  rm -rf "$DIR"
  say "stopped; removed $DIR"
  exit 0
elif [[ "${1:-start}" != "start" ]]; then
  die "usage: $0 [start|stop]"
fi

if ! is_running; then
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    rm -rf "$DIR"  # a half-made cluster from an interrupted run
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$DIR"; fi
    say "creating a cluster in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-locale -E UTF8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<EOF
# garrison: a throwaway server for tests; durability is not wanted
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  say "starting on 127.0.0.1:$PORT"
  if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2; then
    tail -n 20 "$LOG" >&2 || true
    die "the server did not start (see $LOG)"
  fi
fi

psql_admin() { as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'")" != "1" ]]; then
  psql_admin -c "CREATE ROLE $USER_NAME LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $USER_NAME" >&2
fi

echo "$URL"
