#!/usr/bin/env bash
# The ceiling of the worker's own SQL on this machine: pgbench, a C client that spends next to
# no CPU per job, runs the library's claim (fetch_jobs) and completion (finish_jobs) statements,
# taken from src/Procrastinate/Internal/Sql/queries.sql, against pre-inserted jobs, and prints
# the jobs drained per second. No worker sending these statements can drain faster on the same
# machine; the difference with W3 is what the .NET worker costs. See BENCHMARKS.md.
#
#   benchmarks/sql-ceiling.sh                              lean layout, 2 and 4 clients, claims of 100
#   benchmarks/sql-ceiling.sh --layout compatible --claim 200 --clients "2 4" --delete
#
# Options: --layout lean|compatible (default lean); --clients "N ..." (concurrent claimers,
# default "2 4"); --claim N (jobs per claim, default 100); --seconds N (default 4); --jobs N
# (pre-inserted, default 400000: enough that none runs out); --delete (finished jobs are deleted,
# as with DeleteJobs=Successful, instead of kept as succeeded). The settings the connector sets
# for claims on all queues (generic plan, no sequential scan, no sort) apply to the session.
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's private cluster
# (scripts/postgres.sh). It creates and drops the database sql_ceiling there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

layout=lean clients="2 4" claim=100 seconds=4 jobs=400000 delete=false
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --claim) claim=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --delete) delete=true; shift ;;
    *) echo "sql-ceiling.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
say() { echo "sql-ceiling.sh: $*" >&2; }

# shellcheck source=benchmarks/pgbench-lib.sh
. benchmarks/pgbench-lib.sh
pgbench_setup sql_ceiling "$layout"

# The claim, all queues ($1 NULL), as worker :wid, up to :n jobs; its ids come back as one string.
claim_sql=$(claim_statement "$layout" | sed -E \
  -e 's/\$1::character varying\[\]/NULL::character varying[]/g' -e 's/\$2/:wid::bigint/g' -e 's/\$3::integer/:n::integer/g' \
  -e "s/SELECT claimed\.\*, trace\.traceparent, trace\.tracestate FROM claimed LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace\.job_id = claimed\.id/SELECT coalesce(string_agg(claimed.id::text, ','), '') AS ids FROM claimed/")
# The completion of those ids as succeeded, attempts 0, deleted or not.
finish_sql=$(finish_statement "$layout" | sed -E \
  -e "s/SELECT \* FROM unnest\(\\\$1::bigint\[\], \\\$2::text\[\]::procrastinate_job_status\[\], \\\$3::integer\[\], \\\$4::boolean\[\]\) AS t\(id, end_status, attempts, delete_job\)/SELECT id, 'succeeded'::procrastinate_job_status AS end_status, 0 AS attempts, :del::boolean AS delete_job FROM unnest(string_to_array(:ids, ',')::bigint[]) AS id/" \
  -e 's/\$5/:wid::bigint/g')
case "$claim_sql$finish_sql" in
  *'$'[0-9]*|*'SELECT claimed.*'*|*'unnest($1'*) say "queries.sql changed shape: this script's substitutions no longer apply"; exit 1 ;;
esac
# What the worker sends before its claim, if anything (the lean layout's jobs that came due).
prelude=$(claim_prelude "$layout")
printf '\\set wid :client_id + 1\n\\set n %s\n\\set del %s\n%s%s \\gset\n%s;\n' "$claim" "$delete" "${prelude:+$prelude
}" "$claim_sql" "$finish_sql" >"$scratch"

export PGOPTIONS="-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_sort=off -c jit=off"
echo "| Layout | Clients | Jobs per claim | Finished jobs | Jobs/s |"
echo "|---|---|---|---|---|"
for c in $clients; do
  fill_jobs "$jobs" "$c"
  "$pgbench" -n -M prepared -c "$c" -j "$c" -T "$seconds" -f "$scratch" "$url" >/dev/null
  left=$(psql "$url" -At -c "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
  [ "$left" -gt 0 ] || say "every job was drained before the end: raise --jobs"
  echo "| $layout | $c | $claim | $([ "$delete" = true ] && echo deleted || echo kept) | $(( (jobs - left) / seconds )) |"
done
