#!/usr/bin/env bash
# What a backlog behind one lock costs every claim: pgbench, from one client, runs the worker's
# claim statement (fetch_jobs, read from src/Procrastinate/Internal/Sql/queries.sql) against free
# waiting jobs that come after jobs of one lock, and prints the milliseconds per claim. Jobs of a
# lock run one at a time, so the others wait, and a claim walks past them on its way to the free
# jobs in priority order. See BENCHMARKS.md.
#
#   benchmarks/lock-backlog.sh                       lean layout, backlogs of 0, 2,000 and 20,000
#   benchmarks/lock-backlog.sh --layout compatible --backlogs 0,50000 --claim 500
#
# Options: --layout lean|compatible (default lean); --backlogs LIST (jobs of the lock, default
# 0,2000,20000); --claim N (rows per claim, default 100); --rounds N (default 2); --seconds N (per
# measure, default 4); --jobs N (free jobs, default 200000, enough that none runs out).
# For each backlog two cases: the lock's first job is running (the usual case: a worker took it,
# the others wait for it), and its first job waits for its scheduled time, so that nothing of the
# lock runs and no other job of it may start before it.
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's private cluster
# (scripts/postgres.sh). It creates and drops the database lock_backlog there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

layout=lean backlogs=0,2000,20000 claim=100 rounds=2 seconds=4 jobs=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --backlogs) backlogs=$2; shift 2 ;;
    --claim) claim=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "lock-backlog.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
say() { echo "lock-backlog.sh: $*" >&2; }

# shellcheck source=benchmarks/pgbench-lib.sh
. benchmarks/pgbench-lib.sh
pgbench_setup lock_backlog "$layout"

# The claim as the worker sends it, all queues, worker 1, :n rows; the rows are counted, not sent.
trace_join='SELECT claimed\.\*, trace\.traceparent, trace\.tracestate FROM claimed LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace\.job_id = claimed\.id'
claim_sql=$(claim_statement "$layout" | sed -E \
  -e 's/\$1::character varying\[\]/NULL::character varying[]/g' -e 's/\$2/1::bigint/g' -e 's/\$3::integer/:n::integer/g' \
  -e "s/$trace_join/SELECT count(*) FROM claimed LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace.job_id = claimed.id/")
case "$claim_sql" in
  *'$'[0-9]*|*'SELECT claimed.*'*) say "queries.sql changed shape: this script's substitutions no longer apply"; exit 1 ;;
esac

export PGOPTIONS="-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_sort=off -c jit=off"
# measure BACKLOG HEAD: HEAD is "running" or "scheduled".
measure() {
  local head_sql
  if [ "$2" = running ]; then
    head_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id)
  VALUES ('default', 'bench_noop', 'L', '{}', 'doing', 1);"
  else
    head_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
  VALUES ('default', 'bench_noop', 'L', '{}', now() + interval '1 day');"
  fi
  # The lock's jobs first (lower ids, so before the free jobs in the claim's order), then the free jobs.
  fill_jobs 0 1 "" "$head_sql
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)
  SELECT 'default', 'bench_noop', 'L', '{}' FROM generate_series(1, $1);
INSERT INTO procrastinate_jobs (queue_name, task_name, args)
  SELECT 'default', 'bench_noop', '{\"n\": 1, \"t\": 0}'::jsonb FROM generate_series(1, $jobs);
VACUUM ANALYZE procrastinate_jobs;"
  printf '\\set n %s\n%s;\n' "$claim" "$claim_sql" >"$scratch"
  local out latency left note=""
  out=$("$pgbench" -n -M prepared -c 1 -j 1 -T "$seconds" -f "$scratch" "$url" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
  latency=$(printf '%s\n' "$out" | awk '/latency average/ {print $4}')
  left=$(psql "$url" -At -c "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND lock IS NULL")
  if [ "$left" -eq 0 ]; then
    note=" (every free job was claimed before the end: raise --jobs)"
    say "every free job was claimed before the end; raise --jobs"
  fi
  echo "| $1 | $2$note | $latency |"
}

echo "Layout $layout, $claim rows per claim, $jobs free jobs, one client, $seconds s per measure, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| Jobs waiting behind the lock | The lock's first job | ms per claim |"
echo "|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for backlog in ${backlogs//,/ }; do
    measure "$backlog" running
    measure "$backlog" scheduled
  done
done
