# Shared by the pgbench scripts of benchmarks/ (sql-ceiling.sh, claim-cost.sh, claim-walk.sh): sourced, not run.
# The sourcing script has cd'd to the checkout and defined say().

# pgbench_setup DATABASE LAYOUT: finds pgbench ($pgbench) and the server ($server:
# PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's cluster, scripts/postgres.sh),
# creates DATABASE there ($url) with LAYOUT installed, and drops it on exit, with the file
# $scratch (a pgbench script), which it creates.
pgbench_setup() {
  pgbench=$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)
  [ -n "$pgbench" ] || { say "pgbench not found under /usr/lib/postgresql (package postgresql-contrib or postgresql)"; exit 1; }
  server=${PROCRASTINATE_BENCH_DATABASE_URL:-$(scripts/postgres.sh)}
  bench_database=$1
  # postgresql://user@host:port/db → the same server, database $1.
  url=$(printf '%s' "$server" | sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\\1/$bench_database#")
  psql "$server" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $bench_database" -c "CREATE DATABASE $bench_database"
  scratch=$(mktemp)
  trap 'rm -f "$scratch"; psql "$server" -q -c "DROP DATABASE IF EXISTS $bench_database (FORCE)" >/dev/null 2>&1 || true' EXIT
  say "installing the $2 layout"
  PROCRASTINATE_DATABASE_URL=$url dotnet run --project src/Procrastinate.Cli -c Release -v quiet -- \
    schema --apply --layout "$2" >&2
}

# statement NAME: one statement of queries.sql, comments dropped, on one line.
statement() {
  awk -v name="$1" '/^-- name: /{f = ($3 == name); next} f && !/^[[:space:]]*--/' src/Procrastinate/Internal/Sql/queries.sql |
    tr '\n' ' ' | sed -E 's/[[:space:]]+/ /g; s/;[[:space:]]*$//'
}

# fill_jobs JOBS WORKERS [BEFORE] [AFTER]: empties the job tables, registers workers 1 to WORKERS
# (the compatible layout's foreign key wants a claim's worker), inserts JOBS waiting jobs,
# vacuums and checkpoints; the SQL BEFORE runs first, AFTER last.
fill_jobs() {
  psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
${3:-}
TRUNCATE procrastinate_events, procrastinate_jobs RESTART IDENTITY CASCADE;
INSERT INTO procrastinate_workers (id) OVERRIDING SYSTEM VALUE SELECT w FROM generate_series(1, $2) AS w ON CONFLICT DO NOTHING;
INSERT INTO procrastinate_jobs (queue_name, task_name, args)
  SELECT 'default', 'bench_noop', '{"n": 1, "t": 0}'::jsonb FROM generate_series(1, $1);
VACUUM ANALYZE procrastinate_jobs;
VACUUM ANALYZE procrastinate_events;
CHECKPOINT;
${4:-}
SQL
}

# The columns the worker's claim and completion also set on the lean layout: the id and time of
# each run's 'started' event, written when the run ends, and the job's 'deferred' event, marked
# as written (LeanColumns.cs, Layouts/lean_triggers.sql).
lean_started_set="dotnet_started_event_id = nextval('procrastinate_events_id_seq'::regclass), dotnet_started_at = now()"
lean_finish_set="dotnet_deferred_event_id = NULL, dotnet_deferred_at = NULL"

# claim_statement LAYOUT, finish_statement LAYOUT: fetch_jobs and finish_jobs as the worker sends
# them on LAYOUT, on one line.
claim_statement() {
  if [ "$1" = lean ]; then
    statement fetch_jobs | sed -E -e "s/worker_id = \\\$2/worker_id = \$2, $lean_started_set/" \
      -e "s/WHERE jobs\.status = 'todo'::procrastinate_job_status/& AND NOT jobs.dotnet_later/"
  else
    statement fetch_jobs
  fi
}
# claim_prelude LAYOUT: the line of a pgbench script the worker sends before its claim on LAYOUT
# (the lean layout's jobs whose scheduled time has come join the claim's indexes, up to
# LeanColumns.PromoteAtOnce of them), if any.
claim_prelude() {
  if [ "$1" = lean ]; then
    printf '%s\n' "SELECT procrastinate_lean_promote_due_jobs(1000) WHERE EXISTS (SELECT FROM procrastinate_jobs WHERE status = 'todo'::procrastinate_job_status AND dotnet_later AND scheduled_at <= now());"
  fi
}
finish_statement() {
  if [ "$1" = lean ]; then
    statement finish_jobs | sed -E "s/attempts = j\.attempts \+ 1/attempts = j.attempts + 1, $lean_finish_set/"
  else
    statement finish_jobs
  fi
}

# counted_claim LAYOUT [QUEUES]: the claim as the worker sends it on LAYOUT, after its prelude, for
# a pgbench script: all queues (or QUEUES, an SQL array such as ARRAY['default']), worker 1, :n rows, and
# the rows counted rather than sent. Fails, saying so, when queries.sql no longer has the shape
# these substitutions expect.
counted_claim() {
  local trace_join='SELECT claimed\.\*, trace\.traceparent, trace\.tracestate FROM claimed LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace\.job_id = claimed\.id'
  local sql
  sql=$(claim_statement "$1" | sed -E \
    -e "s/\\\$1::character varying\\[\\]/${2:-NULL}::character varying[]/g" -e 's/\$2/1::bigint/g' -e 's/\$3::integer/:n::integer/g' \
    -e "s/$trace_join/SELECT count(*) FROM claimed LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace.job_id = claimed.id/")
  case "$sql" in
    *'$'[0-9]*|*'SELECT claimed.*'*) say "queries.sql changed shape: the claim's substitutions no longer apply"; return 1 ;;
  esac
  claim_prelude "$1"
  printf '%s' "$sql"
}
