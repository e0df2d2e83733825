#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the database tests: unix socket only (no TCP port), trust
# authentication on a socket only its owner can open, fsync off. Data and socket live in one
# temporary directory that `stop` deletes.
#
#   scripts/pg_test_cluster.sh start [DIR]   # prints the SQLAlchemy URL on stdout
#   scripts/pg_test_cluster.sh stop DIR
#   scripts/pg_test_cluster.sh pause DIR     # the server stops, its data kept (an outage)
#   scripts/pg_test_cluster.sh resume DIR    # and starts again on the same socket
#
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user (Debian's
# `postgresql` package creates it); as anyone else it runs as that user. The binaries come
# from PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH.
set -euo pipefail

die() { echo "pg_test_cluster: $*" >&2; exit 1; }

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
  local initdb
  initdb=$(command -v initdb || true)
  [ -n "$initdb" ] || die "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's 'postgresql' package (make system-deps) or set PG_BIN"
  dirname "$initdb"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the cluster as"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir="${1:-}"
  local bin
  bin=$(find_bin)
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "/tmp/openiort-pg.XXXXXX")
  fi
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  # The socket path must fit in sun_path (107 bytes).
  [ ${#dir} -le 80 ] || die "directory path too long for a unix socket: $dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_owner mkdir -p "$dir/socket"
  server_start "$bin" "$dir"
  echo "postgresql+psycopg://postgres@/postgres?host=$dir/socket"
}

server_start() {
  local bin="$1" dir="$2"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c unix_socket_permissions=0700 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50" \
    start >/dev/null || { cat "$dir/server.log" >&2; die "the server did not start"; }
}

pause() {
  local dir="${1:-}"
  [ -d "$dir/data" ] || die "$dir holds no cluster"
  as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

resume() {
  local dir="${1:-}"
  [ -d "$dir/data" ] || die "$dir holds no cluster"
  server_start "$(find_bin)" "$dir"
}

stop() {
  local dir="${1:-}"
  [ -n "$dir" ] || die "usage: $0 stop DIR"
  [ -d "$dir/data" ] || die "$dir holds no cluster"
  local bin
  bin=$(find_bin)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  pause) pause "${2:-}" ;;
  resume) resume "${2:-}" ;;
  *) die "usage: $0 start [DIR] | stop DIR | pause DIR | resume DIR" ;;
esac
