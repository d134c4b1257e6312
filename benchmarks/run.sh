#!/usr/bin/env bash
# Runs the benchmark workloads (W1-W5) against a real PostgreSQL and prints a Markdown table;
# writes the results as JSON (and a .md beside it). See benchmarks/README.md.
#
#   benchmarks/run.sh                         all workloads, 3 runs, medians (about 12 minutes, plus waits
#                                             for a quiet machine)
#   benchmarks/run.sh --quick --runs 1        smoke test (about 2 minutes)
#   benchmarks/run.sh --workloads W1,W3 --best-option Concurrency=200 --json /tmp/try.json
#   benchmarks/run.sh --help                  every option
#   benchmarks/run.sh --separate-cluster      see below
#
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set (a URL or connection string of a superuser
# on a server with pg_stat_statements preloaded); otherwise the private cluster of this checkout,
# started (and PostgreSQL installed when missing) by scripts/postgres.sh: the one the tests use.
# With --separate-cluster, scripts/postgres.sh starts a second cluster, same configuration, for
# the benchmarks only (in .pg/bench, or /var/tmp/procrastinate-pg-<key>-bench as root; port
# 56000-56999), so that test databases of the same checkout do not share its buffers, WAL,
# checkpoints and notification queue; stop it with --stop-separate-cluster.
# Each workload run gets its own database, bench_<workload>_<run>, dropped afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

args=()
separate=
for a in "$@"; do
  case "$a" in
    --help|-h) help=1; args+=("$a") ;;
    --separate-cluster) separate=start ;;
    --stop-separate-cluster) separate=stop ;;
    *) args+=("$a") ;;
  esac
done

if [ -n "$separate" ]; then
  key=$(printf '%s' "$root" | cksum | cut -d' ' -f1)
  if [ "$(id -u)" -eq 0 ]; then export PROCRASTINATE_PG_DIR=/var/tmp/procrastinate-pg-$key-bench; else export PROCRASTINATE_PG_DIR=$root/.pg/bench; fi
  export PROCRASTINATE_PG_PORT=$((56000 + key % 1000))
  if [ "$separate" = stop ]; then exec scripts/postgres.sh stop; fi
fi

if [ -z "${help:-}" ]; then
  if [ -n "${PROCRASTINATE_BENCH_DATABASE_URL:-}" ]; then
    url=$PROCRASTINATE_BENCH_DATABASE_URL
  elif [ -n "$separate" ]; then
    echo "run.sh: using a separate PostgreSQL cluster for the benchmarks ($PROCRASTINATE_PG_DIR, port $PROCRASTINATE_PG_PORT)" >&2
    url=$(scripts/postgres.sh)
  else
    echo "run.sh: no PROCRASTINATE_BENCH_DATABASE_URL; using the private PostgreSQL of this checkout" >&2
    url=$(scripts/postgres.sh)
  fi
fi

project=benchmarks/Procrastinate.Benchmarks
echo "run.sh: building $project (Release)" >&2
if ! build_log=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$build_log" >&2
  echo "run.sh: the build failed" >&2
  exit 1
fi

# Run a private copy of the build: a rebuild of the solution meanwhile (./test.sh builds this
# project too) must not swap the library under a running benchmark.
bin=$(mktemp -d "${TMPDIR:-/tmp}/procrastinate-bench.XXXXXX")
trap 'rm -rf "$bin"' EXIT
cp -r "$project/bin/Release/net10.0/." "$bin/"
exe=$bin/Procrastinate.Benchmarks
if [ -n "${help:-}" ]; then
  "$exe" --help
  exit 0
fi

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
changed=$(git -C "$root" status --porcelain -- src/Procrastinate 2>/dev/null | wc -l)
if [ "$changed" -gt 0 ]; then commit="$commit + uncommitted changes in $changed file(s) of src/Procrastinate"; fi

# The orchestrator kills its worker processes on every exit path (and a worker exits by itself
# when its parent dies); a SIGTERM or SIGINT sent to this script is passed on to it.
"$exe" run --url "$url" --command "benchmarks/run.sh $* (commit $commit)" --json benchmarks/results/latest.json ${args[@]+"${args[@]}"} &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
status=0
while true; do
  wait "$pid" && status=0 || status=$?
  # wait returns early (status > 128) when a trapped signal arrives; go on waiting while the orchestrator cleans up.
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
done
exit "$status"
