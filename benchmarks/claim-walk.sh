#!/usr/bin/env bash
# What the waiting jobs a claim may not take cost it when they come first in its walk: pgbench,
# from one client, runs the worker's claim statement (fetch_jobs, read from
# src/Procrastinate/Internal/Sql/queries.sql) against free waiting jobs that come after N jobs
# it may not take, and prints the milliseconds per claim. A claim walks the waiting jobs in
# Procrastinate's order (priority, then id) and passes over those it may not take. See BENCHMARKS.md.
#
#   benchmarks/claim-walk.sh                         lean layout, N of 0, 2,000 and 20,000
#   benchmarks/claim-walk.sh --layout compatible --backlogs 0,200000 --claim 500
#
# Options: --layout lean|compatible (default lean); --backlogs LIST (the N jobs, default
# 0,2000,20000); --claim N (rows per claim, default 100); --rounds N (default 2); --seconds N (per
# measure, default 4); --jobs N (free jobs, default 200000, enough that none runs out); --only
# TEXT (only the kinds whose name below contains TEXT, e.g. "scheduled" or "due").
# Three kinds of N jobs: jobs of one lock whose first job is running (the usual case: a worker
# took it, the others wait for it); jobs of one lock whose first job waits for its scheduled
# time, so that nothing of the lock runs and no other job of it may start before it; jobs
# without a lock scheduled for the next day; jobs without a lock whose scheduled time came 0.5 s
# before the claims start (on the lean layout they are still marked as later, and the claims
# move them back, up to 1,000 each; the claims take them first); and jobs of another queue, for
# the claim of a worker on the free jobs' queue alone, as sent before d6cc528 (the queue in
# "= ANY"), from d6cc528 to migration 0005 (an equality, planned each time) and since (an
# equality, one generic plan), and for the claim of a worker on that queue and an empty one,
# with the queues in "= ANY" (as sent before the merged claim) and merged (since). On the compatible
# layout the queue index the claims of a worker on given queues read is migration 0005's: the
# "= ANY" forms there read it too when the planner finds it cheaper.
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's private cluster
# (scripts/postgres.sh). It creates and drops the database claim_walk there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

layout=lean backlogs=0,2000,20000 claim=100 rounds=2 seconds=4 jobs=200000 only=
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --backlogs) backlogs=$2; shift 2 ;;
    --claim) claim=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "claim-walk.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
say() { echo "claim-walk.sh: $*" >&2; }

# shellcheck source=benchmarks/pgbench-lib.sh
. benchmarks/pgbench-lib.sh
pgbench_setup claim_walk "$layout"

# The claim as the worker sends it, all queues, worker 1, :n rows; the rows are counted, not sent.
claim_sql=$(counted_claim "$layout")
# The claim of a worker on the queue 'default': before d6cc528 with the queue in "= ANY", since
# then, for one queue, as an equality (ClaimStatements.cs).
any_queue_sql=$(counted_claim "$layout" "ARRAY['default']")
any_test="(ARRAY['default']::character varying[] IS NULL OR jobs.queue_name = ANY(ARRAY['default']::character varying[]))"
one_queue_sql=${any_queue_sql/"$any_test"/"jobs.queue_name = (ARRAY['default']::character varying[])[1]"}
[ "$one_queue_sql" != "$any_queue_sql" ] || { say "queries.sql changed shape: the claim's queue test was not found"; exit 1; }
# The claim of a worker on the queues 'default' and 'sms': with the queues in "= ANY" (before
# c45f0f4 on the lean layout, and before migration 0005 on the compatible one), and as
# ClaimStatements.cs builds it since: one walk of the queue index per queue, merged in the
# claim's order.
two_queues="ARRAY['default','sms']::character varying[]"
two_any_sql=$(counted_claim "$layout" "ARRAY['default','sms']")
not_later=""; [ "$layout" = lean ] && not_later=" AND NOT walk.dotnet_later"
walk() { printf "(SELECT walk.id, walk.priority FROM procrastinate_jobs AS walk WHERE walk.status = 'todo'::procrastinate_job_status%s AND walk.queue_name = (%s)[%s] ORDER BY walk.priority DESC, walk.id)" "$not_later" "$two_queues" "$1"; }
two_merged_sql=${two_any_sql/"FROM procrastinate_jobs AS jobs"/"FROM ($(walk 1) UNION ALL $(walk 2)) AS merged JOIN procrastinate_jobs AS jobs ON jobs.id = merged.id"}
two_merged_sql=${two_merged_sql/"($two_queues IS NULL OR jobs.queue_name = ANY($two_queues))"/"jobs.queue_name = ANY($two_queues)"}
two_merged_sql=${two_merged_sql/"ORDER BY jobs.priority DESC, jobs.id ASC"/"ORDER BY merged.priority DESC, merged.id"}
case "$two_merged_sql" in *"AS merged JOIN"*"= ANY($two_queues)"*"ORDER BY merged.priority"*) ;;
  *) say "queries.sql changed shape: the merged claim's substitutions no longer apply"; exit 1 ;; esac

# The settings the connector gives a claim: on all queues one generic plan, no sequential scan,
# no sort; on given queues a plan made for them each time.
all_queues_options="-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_sort=off -c jit=off"
given_queues_options="-c plan_cache_mode=force_custom_plan -c jit=off"
# measure N KIND: KIND is one of those below; skipped unless it contains --only's text.
measure() {
  case "$2" in *"$only"*) ;; *) return 0 ;; esac
  local ahead_sql sql=$claim_sql options=$all_queues_options
  case "$2" in
    "behind a running job of their lock") ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id)
  VALUES ('default', 'bench_noop', 'L', '{}', 'doing', 1);
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)
  SELECT 'default', 'bench_noop', 'L', '{}' FROM generate_series(1, $1);" ;;
    "behind a scheduled first job of their lock") ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
  VALUES ('default', 'bench_noop', 'L', '{}', now() + interval '1 day');
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)
  SELECT 'default', 'bench_noop', 'L', '{}' FROM generate_series(1, $1);" ;;
    "scheduled for the next day, no lock") ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at)
  SELECT 'default', 'bench_noop', '{}', now() + interval '1 day' FROM generate_series(1, $1);" ;;
    "came due a moment ago, no lock") ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at)
  SELECT 'default', 'bench_noop', '{}', now() + interval '2 seconds' FROM generate_series(1, $1);
SELECT pg_sleep(2.5);" ;;
    "of another queue; claim on one queue, = ANY"*|"of another queue; claim on one queue, ="*)
      ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, args)
  SELECT 'emails', 'bench_noop', '{}' FROM generate_series(1, $1);"
      options=$given_queues_options
      case "$2" in
        *ANY*) sql=$any_queue_sql ;;
        *"planned once"*) sql=$one_queue_sql options=$all_queues_options ;;
        *) sql=$one_queue_sql ;;
      esac ;;
    "of another queue; claim on two queues, "*)
      ahead_sql="INSERT INTO procrastinate_jobs (queue_name, task_name, args)
  SELECT 'emails', 'bench_noop', '{}' FROM generate_series(1, $1);"
      case "$2" in
        *ANY*) sql=$two_any_sql options=$given_queues_options ;;
        *) sql=$two_merged_sql ;;
      esac ;;
  esac
  # The N jobs first (lower ids, so before the free jobs in the claim's order), then the free jobs.
  fill_jobs 0 1 "" "$ahead_sql
INSERT INTO procrastinate_jobs (queue_name, task_name, args)
  SELECT 'default', 'bench_noop', '{\"n\": 1, \"t\": 0}'::jsonb FROM generate_series(1, $jobs);
VACUUM ANALYZE procrastinate_jobs;"
  printf '\\set n %s\n%s;\n' "$claim" "$sql" >"$scratch"
  local out latency left note=""
  out=$(PGOPTIONS=$options "$pgbench" -n -M prepared -c 1 -j 1 -T "$seconds" -f "$scratch" "$url" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
  latency=$(printf '%s\n' "$out" | awk '/latency average/ {print $4}')
  left=$(psql "$url" -At -c "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND queue_name = 'default' AND lock IS NULL AND scheduled_at IS NULL")
  if [ "$left" -eq 0 ]; then
    note=" (every free job was claimed before the end: raise --jobs)"
    say "every free job was claimed before the end; raise --jobs"
  fi
  echo "| $1 | $2$note | $latency |"
}

echo "Layout $layout, $claim rows per claim, $jobs free jobs, one client, $seconds s per measure, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| N jobs first in the walk | which | ms per claim |"
echo "|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for backlog in ${backlogs//,/ }; do
    measure "$backlog" "behind a running job of their lock"
    measure "$backlog" "behind a scheduled first job of their lock"
    measure "$backlog" "scheduled for the next day, no lock"
    measure "$backlog" "came due a moment ago, no lock"
    measure "$backlog" "of another queue; claim on one queue, = ANY (before d6cc528)"
    measure "$backlog" "of another queue; claim on one queue, =, planned each time (d6cc528 to 0005)"
    measure "$backlog" "of another queue; claim on one queue, =, planned once (since 0005)"
    measure "$backlog" "of another queue; claim on two queues, = ANY"
    measure "$backlog" "of another queue; claim on two queues, merged"
  done
done
