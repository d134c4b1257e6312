#!/usr/bin/env bash
# What one claim costs PostgreSQL, piece by piece: pgbench, from one client, runs the worker's
# claim statement (fetch_jobs, read from src/Procrastinate/Internal/Sql/queries.sql) and
# statements made of its parts, each against freshly inserted waiting jobs, and prints the
# milliseconds per statement and the microseconds per claimed row. See BENCHMARKS.md.
#
#   benchmarks/claim-cost.sh                      lean layout, claims of 500, 2 rounds
#   benchmarks/claim-cost.sh --layout compatible --claim 200 --rounds 3
#
# Options: --layout lean|compatible (default lean); --claim N (rows per statement, default 500);
# --rounds N (default 2); --seconds N (per measure, default 4); --jobs N (pre-inserted, default
# 300000, enough that none runs out). One client: the figures are one backend's time, not a
# throughput of the machine. The settings the connector sets for claims on all queues (generic
# plan, no sequential scan, no sort) apply to the session.
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's private cluster
# (scripts/postgres.sh). It creates and drops the database claim_cost there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

layout=lean claim=500 rounds=2 seconds=4 jobs=300000
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --claim) claim=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "claim-cost.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
say() { echo "claim-cost.sh: $*" >&2; }

# shellcheck source=benchmarks/pgbench-lib.sh
. benchmarks/pgbench-lib.sh
pgbench_setup claim_cost "$layout"

# The claim as the worker sends it, all queues, worker 1, :n rows; the rows are counted, not sent.
claim_sql=$(counted_claim "$layout")
no_trace_sql=$(printf '%s' "$claim_sql" | sed -E 's/ LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace\.job_id = claimed\.id//')
[ "$no_trace_sql" != "$claim_sql" ] || { say "queries.sql changed shape: the trace join was not found"; exit 1; }
# Its parts. The candidate scan and its row locks alone (the claim's first CTE, rows not updated):
lock_sql="WITH candidate AS (SELECT jobs.id FROM procrastinate_jobs AS jobs WHERE jobs.status = 'todo'::procrastinate_job_status ORDER BY jobs.priority DESC, jobs.id LIMIT :n FOR UPDATE OF jobs SKIP LOCKED) SELECT count(*) FROM candidate"
# The claim's row update alone, on :n consecutive ids from a random start: no scan, no lock first.
ids="ARRAY(SELECT generate_series(:s::bigint, :s::bigint + :n::bigint - 1))"
update_sql="UPDATE procrastinate_jobs SET status = 'doing'::procrastinate_job_status, worker_id = 1$([ "$layout" = lean ] && echo ", $lean_started_set") WHERE id = ANY ($ids)"
lookup_sql="SELECT count(*) FROM procrastinate_jobs WHERE id = ANY ($ids)"
update_trigger=$([ "$layout" = lean ] && echo procrastinate_lean_jobs_updated || echo procrastinate_trigger_status_events_update_v1)

export PGOPTIONS="-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_sort=off -c jit=off"
# measure LABEL SQL [SETUP SQL run after the jobs are inserted]
measure() {
  # Every measure starts from the same tables: the trigger on, the index there, fresh jobs.
  fill_jobs "$jobs" 1 "ALTER TABLE procrastinate_jobs ENABLE TRIGGER $update_trigger;
CREATE INDEX IF NOT EXISTS idx_procrastinate_jobs_worker_not_null ON procrastinate_jobs (worker_id)
  WHERE worker_id IS NOT NULL AND status = 'doing'::procrastinate_job_status;" "${3:-}"
  printf '\\set n %s\n\\set s random(1, %s)\n%s;\n' "$claim" "$((jobs - claim))" "$2" >"$scratch"
  local out latency
  out=$("$pgbench" -n -M prepared -c 1 -j 1 -T "$seconds" -f "$scratch" "$url" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
  latency=$(printf '%s\n' "$out" | awk '/latency average/ {print $4}')
  # A claim that found no job left is quick and empty: such a measure means nothing.
  local left note=""
  left=$(psql "$url" -At -c "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
  if [ "$left" -eq 0 ]; then
    note=" (every job was claimed before the end: raise --jobs)"
    say "$1: every job was claimed before the end; raise --jobs"
  fi
  echo "| $1$note | $latency | $(awk -v l="$latency" -v n="$claim" 'BEGIN { printf "%.1f", l * 1000 / n }') |"
}

echo "Layout $layout, $claim rows per statement, one client, $seconds s per measure, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| Statement | ms per statement | µs per row |"
echo "|---|---|---|"
for round in $(seq 1 "$rounds"); do
  measure "the claim, as the worker sends it" "$claim_sql"
  measure "the claim without its trace-context join" "$no_trace_sql"
  measure "the claim without its trace-context join, without the update trigger" "$no_trace_sql" \
    "ALTER TABLE procrastinate_jobs DISABLE TRIGGER $update_trigger;"
  measure "candidate scan and row locks only (no update)" "$lock_sql"
  measure "row update only (by id, no trigger)" "$update_sql" "ALTER TABLE procrastinate_jobs DISABLE TRIGGER $update_trigger;"
  measure "row update only, without the running-jobs-by-worker index" "$update_sql" \
    "ALTER TABLE procrastinate_jobs DISABLE TRIGGER $update_trigger; DROP INDEX idx_procrastinate_jobs_worker_not_null;"
  measure "rows looked up by id only" "$lookup_sql"
done
