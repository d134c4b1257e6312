#!/usr/bin/env bash
# Starts (or reuses) a private PostgreSQL cluster for this checkout and prints its URL.
#
#   scripts/postgres.sh          start if needed, print postgresql://... on stdout
#   scripts/postgres.sh stop     stop the cluster
#   scripts/postgres.sh crash    stop it as a crash would (immediate shutdown: no checkpoint, and
#                                WAL not yet written is lost; the next start recovers)
#
# Installs Debian's postgresql package when no server binaries are found. PostgreSQL
# refuses to run as root, so as root the cluster runs as the 'postgres' user.
# Settings: PROCRASTINATE_PG_DIR (default .pg/ in the checkout, or /var/tmp/procrastinate-pg-* as root)
# and PROCRASTINATE_PG_PORT (default derived from the checkout path, 54000-54999).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# One cluster per checkout: its directory and port derive from the checkout's path.
key=$(printf '%s' "$root" | cksum | cut -d' ' -f1)
if [ -n "${PROCRASTINATE_PG_DIR:-}" ]; then
  dir=$PROCRASTINATE_PG_DIR
elif [ "$(id -u)" -eq 0 ]; then
  # As root the server runs as 'postgres', which may not be able to enter the checkout (/root is 0700).
  dir=/var/tmp/procrastinate-pg-$key
else
  dir=$root/.pg
fi
port=${PROCRASTINATE_PG_PORT:-$((54000 + key % 1000))}
say() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "no PostgreSQL server binaries under /usr/lib/postgresql; install the 'postgresql' package"
    exit 1
  fi
  say "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || say "apt-get update failed; trying the install anyway"
  apt-get install -y -qq postgresql postgresql-contrib >&2
  bindir=$(find_bindir)
fi

run_as=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  run_as=(runuser -u postgres --)
fi

if [ "${1:-start}" = "stop" ] || [ "${1:-start}" = "crash" ]; then
  mode=fast
  [ "$1" = "crash" ] && mode=immediate
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w stop >&2 || true
  fi
  exit 0
fi

mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
  say "creating a cluster in $dir/data"
  "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
# Procrastinate test cluster (scripts/postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
shared_preload_libraries = 'pg_stat_statements'
log_min_messages = warning
log_min_error_statement = error
CONF
fi

if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  say "starting PostgreSQL on 127.0.0.1:$port"
  if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
    say "PostgreSQL did not start; last lines of $dir/server.log:"
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
  fi
fi

echo "postgresql://postgres@127.0.0.1:$port/postgres"
