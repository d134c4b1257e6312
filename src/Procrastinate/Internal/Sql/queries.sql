-- Statements the Npgsql connector sends. Each one starts with "-- name: <key>".
-- They use unqualified names (objects resolve through search_path, COMPAT.md 1.3),
-- cast enum values and lists explicitly (COMPAT.md 3.1) and read columns by name.

-- name: defer_jobs
-- Same rows, triggers and errors as procrastinate_defer_jobs_v1 (COMPAT.md 3.2), without
-- building composite values: parallel arrays, inserted in input order. Ids come from the
-- job sequence in insertion order, so sorting them ascending restores the input order.
-- When the defer is traced ($8), the trace context goes to the .NET side table.
WITH inserted AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    SELECT u.queue_name, u.task_name, u.priority, u.lock, u.queueing_lock, u.args, u.scheduled_at
    FROM unnest($1::character varying[], $2::character varying[], $3::integer[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[])
        WITH ORDINALITY AS u(queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, ord)
    ORDER BY u.ord
    RETURNING id
),
traced AS (
    INSERT INTO procrastinate_dotnet_job_trace (job_id, traceparent, tracestate)
    SELECT id, $8, $9 FROM inserted WHERE $8::text IS NOT NULL
)
SELECT id FROM inserted;

-- name: job_id_before_copy
-- A large batch defer by COPY (NpgsqlConnector.DeferByCopyAsync) takes no ids itself: its rows
-- draw theirs from the column default. This value, left unused, is below all of them.
SELECT nextval('procrastinate_jobs_id_seq');

-- name: job_id_after_copy
-- The last id this session drew: the COPY's last row.
SELECT currval('procrastinate_jobs_id_seq');

-- name: copied_job_ids
-- When other sessions drew ids while the COPY ran: the rows between the two values that the
-- COPY wrote, known by their inserting transaction (the same as the last row's). Read in the
-- COPY's transaction, before anyone else can see or change them.
SELECT id FROM procrastinate_jobs
WHERE id > $1 AND id <= $2 AND xmin = (SELECT xmin FROM procrastinate_jobs WHERE id = $2)
ORDER BY id;

-- name: record_job_traces
INSERT INTO procrastinate_dotnet_job_trace (job_id, traceparent, tracestate)
SELECT unnest($1::bigint[]), $2, $3;

-- name: defer_job
-- One job (the common case): the same insert without arrays.
INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
RETURNING id;

-- name: defer_job_traced
WITH inserted AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
    RETURNING id
),
traced AS (
    INSERT INTO procrastinate_dotnet_job_trace (job_id, traceparent, tracestate)
    SELECT id, $8, $9 FROM inserted
)
SELECT id FROM inserted;

-- name: defer_job_or_get_existing
-- One job; on a queueing-lock conflict, return the waiting job's id instead (inserted = false).
WITH inserted AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
    ON CONFLICT (queueing_lock) WHERE status = 'todo'::procrastinate_job_status AND queueing_lock IS NOT NULL DO NOTHING
    RETURNING id
),
traced AS (
    INSERT INTO procrastinate_dotnet_job_trace (job_id, traceparent, tracestate)
    SELECT id, $8, $9 FROM inserted WHERE $8::text IS NOT NULL
)
SELECT id, true AS inserted FROM inserted
UNION ALL
SELECT id, false AS inserted FROM procrastinate_jobs
WHERE queueing_lock = $5 AND status = 'todo'::procrastinate_job_status AND NOT EXISTS (SELECT 1 FROM inserted);

-- name: find_waiting_job_by_queueing_lock
SELECT id FROM procrastinate_jobs
WHERE queueing_lock = $1 AND status = 'todo'::procrastinate_job_status
LIMIT 1;

-- name: fetch_jobs
-- Claims up to $3 jobs in one statement. The rows are those that $3 consecutive calls of
-- procrastinate_fetch_job_v2 would claim (COMPAT.md 2.6.3 and W14): todo, due on the database
-- clock, lock head rule, priority then id, SKIP LOCKED. Two jobs of one lock are never both
-- candidates, because the later one is not the head while the earlier one waits.
-- Written so that one generic plan serves every call (the connector asks PostgreSQL for it,
-- plan_claim_once): the candidate scan has the constant limit Connector.MaxClaim (1000), so the
-- planner knows it reads few rows and walks the priority index; the claim's own limit is a
-- sub-select, "(SELECT $3)", which the planner does not look into; and the claimed rows are
-- looked up by primary key ("= ANY (ARRAY(...))"), whatever the planner thinks of their number.
-- A plain "LIMIT $3" cost a new plan at every call (about 0.24 ms, as much as running it),
-- because its generic plan, costed for an unknown limit (10 % of the rows), hashed the whole
-- table. The candidates are pulled, and locked, only as far as the outer limit reads them:
-- SKIP LOCKED and LIMIT as before. A worker on one queue sends it with "jobs.queue_name =
-- ($1::character varying[])[1]" in place of the queue test, and a worker on several queues with
-- a merge of one walk per queue in place of the scan (ClaimStatements).
WITH candidate AS (
    SELECT jobs.id
    FROM procrastinate_jobs AS jobs
    WHERE jobs.status = 'todo'::procrastinate_job_status
      AND ($1::character varying[] IS NULL OR jobs.queue_name = ANY($1::character varying[]))
      AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
      AND (
          jobs.lock IS NULL
          -- First, whether a job of its lock is running: one look at the running locks per claim
          -- (a hashed set), so that the jobs waiting behind a running job of their lock are
          -- passed over at the cost of reading their row, not of a probe each (about 10 µs
          -- each; a claim walked past 20,000 of them in 200-300 ms, now in 10-20).
          OR jobs.lock NOT IN (
              SELECT busy.lock FROM procrastinate_jobs AS busy
              WHERE busy.status = 'doing'::procrastinate_job_status AND busy.lock IS NOT NULL)
          AND NOT EXISTS (
              SELECT 1
              FROM procrastinate_jobs AS other
              WHERE other.lock = jobs.lock
                AND other.id <> jobs.id
                AND other.status = ANY (ARRAY['todo'::procrastinate_job_status, 'doing'::procrastinate_job_status])
                AND (
                    other.status = 'doing'::procrastinate_job_status
                    OR other.priority > jobs.priority
                    OR (other.priority = jobs.priority AND other.id < jobs.id)
                )
          )
      )
    ORDER BY jobs.priority DESC, jobs.id ASC
    LIMIT 1000
    FOR UPDATE OF jobs SKIP LOCKED
),
claimed AS (
    UPDATE procrastinate_jobs AS j
    SET status = 'doing'::procrastinate_job_status, worker_id = $2
    WHERE j.id = ANY (ARRAY(SELECT candidate.id FROM candidate LIMIT (SELECT $3::integer)))
    RETURNING j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args, j.status::text AS status,
              j.scheduled_at, j.attempts, j.abort_requested, j.worker_id
)
SELECT claimed.*, trace.traceparent, trace.tracestate
FROM claimed
LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace.job_id = claimed.id;

-- name: fetch_orphaned_jobs
-- The jobs 'doing' under worker $1 that it does not hold ($2): a claim of its own that committed
-- while its connection was lost before the answer came back (Worker.AdoptOrphanedJobsAsync). The
-- same columns as fetch_jobs, in the order a claim runs them; the index of running jobs by worker.
SELECT j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args, j.status::text AS status,
       j.scheduled_at, j.attempts, j.abort_requested, j.worker_id, trace.traceparent, trace.tracestate
FROM procrastinate_jobs AS j
LEFT JOIN procrastinate_dotnet_job_trace AS trace ON trace.job_id = j.id
WHERE j.worker_id = $1 AND j.status = 'doing'::procrastinate_job_status AND j.id <> ALL ($2::bigint[])
ORDER BY j.priority DESC, j.id;

-- name: plan_claim_once
-- Sent before fetch_jobs for all queues, one queue, or several merged (ClaimStatements.PlannedOnce),
-- in the same implicit transaction, so only for that statement (NpgsqlConnector.FetchJobsAsync).
-- One generic plan for every call, and one that does not depend on the statistics of the moment
-- it was made: a plan made while the table was empty (a worker started before the first defer)
-- sorted a scan of the whole table, and was kept as the table grew (123 ms per claim at a
-- million jobs). Without sequential scans and
-- sorts the planner has one sensible plan left: the priority index in order (for given queues,
-- the index by queue, priority and id), the primary key for the claimed rows, the trace table's
-- key for their trace context.
-- $1: whether the claim's commit waits for the WAL flush. Unless the worker's claims are durable
-- (WorkerOptions.DurableClaims), it does not, for this transaction only: the claim is visible to
-- every other session at once, as any commit; only a crash of the server before the flush (at
-- most a few times wal_writer_delay, or the next synchronous commit of any session) would undo
-- it. When durable, the server's setting stays as it is.
SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
       set_config('enable_seqscan', 'off', true),
       set_config('enable_sort', 'off', true),
       set_config('synchronous_commit', CASE WHEN $1 THEN current_setting('synchronous_commit') ELSE 'off' END, true);

-- name: plan_claim_each_time
-- Sent before fetch_jobs with "= ANY" for given queues (a list ClaimStatements does not merge:
-- more than 32 queues, or a repeat), the same way. Its best plan depends on the queues
-- (a small queue among the waiting jobs of others is best read through the queue index), so
-- each claim is planned with its queues and the statistics of the moment, as PostgreSQL does
-- for unprepared statements; it never keeps a generic plan made at another time (say, on an
-- empty table), which PostgreSQL would otherwise choose once it costs no more than the custom
-- plans so far. $1: as in plan_claim_once.
SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
       set_config('synchronous_commit', CASE WHEN $1 THEN current_setting('synchronous_commit') ELSE 'off' END, true);

-- name: plan_finish
-- Sent before finish_jobs, in the same implicit transaction, so only for that statement
-- (NpgsqlConnector.FinishJobsAsync): one generic plan, which looks its rows up by primary key
-- whatever the statistics of the moment it was made. PostgreSQL keeps the generic plan of a
-- prepared statement once it costs no more than the custom plans so far: one made while the
-- job table was small scanned the whole table for each completion, and kept doing so as a
-- backlog grew (15 ms per completion of 300 jobs with 600,000 waiting, in W5; BENCHMARKS.md).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
       set_config('enable_seqscan', 'off', true);

-- name: finish_jobs
-- Ends many runs at once with the effect of procrastinate_finish_job_v1 (COMPAT.md 2.6.4), but
-- guarded: a row changes only while it is still the run this worker claimed (status doing,
-- same attempts, claimed by this worker, or orphaned by a prune). A late write from a worker
-- presumed dead therefore changes nothing. Returns the ids that were written.
-- "status::text = 'doing'" (here and in the statements below that look jobs up by id) keeps
-- the planner off the partial indexes of running jobs: with statistics taken while few jobs
-- ran, it would scan every running job for each input row instead of looking ids up.
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]::procrastinate_job_status[], $3::integer[], $4::boolean[])
        AS t(id, end_status, attempts, delete_job)
),
deleted AS (
    DELETE FROM procrastinate_jobs AS j
    USING input
    WHERE j.id = input.id AND input.delete_job
      AND j.status::text = 'doing' AND j.attempts = input.attempts
      AND (j.worker_id = $5 OR j.worker_id IS NULL)
    RETURNING j.id
),
updated AS (
    UPDATE procrastinate_jobs AS j
    SET status = input.end_status, abort_requested = false, attempts = j.attempts + 1
    FROM input
    WHERE j.id = input.id AND NOT input.delete_job
      AND j.status::text = 'doing' AND j.attempts = input.attempts
      AND (j.worker_id = $5 OR j.worker_id IS NULL)
    RETURNING j.id
)
SELECT id FROM deleted
UNION ALL
SELECT id FROM updated;

-- name: notify_lock_heads
-- After locks were released: wake the workers serving the queue of each lock's next job
-- (COMPAT.md W1). The payload is the standard job_inserted shape, so Python workers wake too.
SELECT count(pg_notify(channel, payload))
FROM (
    SELECT DISTINCT ON (lock) lock, id, queue_name
    FROM procrastinate_jobs
    WHERE lock = ANY($1::text[]) AND status = 'todo'::procrastinate_job_status
    ORDER BY lock, priority DESC, id
) AS head,
LATERAL (VALUES (json_build_object('type', 'job_inserted', 'job_id', head.id)::text)) AS p(payload),
LATERAL (VALUES ('procrastinate_queue_v1#' || head.queue_name), ('procrastinate_any_queue_v1')) AS c(channel);

-- name: notify_job_runnable
-- Wake workers for a job that a retry made runnable (COMPAT.md W1).
SELECT count(pg_notify(c.channel, json_build_object('type', 'job_inserted', 'job_id', j.id)::text))
FROM procrastinate_jobs AS j,
LATERAL (VALUES ('procrastinate_queue_v1#' || j.queue_name), ('procrastinate_any_queue_v1')) AS c(channel)
WHERE j.id = $1 AND j.status = 'todo'::procrastinate_job_status;

-- name: retry_job
-- Retry through the listed function (COMPAT.md 3.4), guarded like finish_jobs.
-- Returns one row when the retry was written, none when the run was no longer ours. The row is
-- locked first, then retried: with the function in the locking SELECT's own list, PostgreSQL
-- ran it before taking the lock, found the row changed by the function, and returned no row,
-- so every written retry was reported as stale.
WITH ours AS (
    SELECT j.id
    FROM procrastinate_jobs AS j
    WHERE j.id = $1 AND j.status = 'doing'::procrastinate_job_status AND j.attempts = $6
      AND (j.worker_id = $7 OR j.worker_id IS NULL)
    FOR UPDATE
)
SELECT procrastinate_retry_job_v2(ours.id, $2, $3, $4, $5) FROM ours;

-- name: register_worker
SELECT worker_id FROM procrastinate_register_worker_v1();

-- name: update_heartbeat
-- procrastinate_update_heartbeat_v1's effect, but reports whether the row still exists (W5).
UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = $1 RETURNING id;

-- name: unregister_worker
SELECT procrastinate_unregister_worker_v1($1);

-- name: prune_stalled_workers
SELECT worker_id FROM procrastinate_prune_stalled_workers_v1($1);

-- name: list_abort_requested
-- COMPAT.md 3.7, restricted to the jobs this worker runs.
SELECT id FROM procrastinate_jobs
WHERE id = ANY($1::bigint[]) AND status::text = 'doing' AND abort_requested;

-- name: cancel_job
SELECT procrastinate_cancel_job_v1($1, $2, $3) AS id;

-- name: get_job_status
SELECT status::text FROM procrastinate_jobs WHERE id = $1;

-- name: get_job
SELECT id, queue_name, task_name, priority, lock, queueing_lock, args, status::text AS status,
       scheduled_at, attempts, abort_requested, worker_id
FROM procrastinate_jobs WHERE id = $1;

-- name: check_connection
SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS installed;

-- name: delete_old_jobs
-- The rows Python's delete_old_jobs deletes (COMPAT.md 3.10, W13): status in the list, queue
-- filter, at least one event, no event with a NULL time, latest event strictly older than
-- $1 hours on the server clock.
DELETE FROM procrastinate_jobs AS j
WHERE j.status = ANY($2::text[]::procrastinate_job_status[])
  AND ($3::character varying IS NULL OR j.queue_name = $3)
  AND (SELECT max(e.at) FROM procrastinate_events AS e WHERE e.job_id = j.id) < now() - make_interval(hours => $1)
  AND NOT EXISTS (SELECT 1 FROM procrastinate_events AS e WHERE e.job_id = j.id AND e.at IS NULL);

-- name: clear_abort_on_failed
-- Before a manual retry (COMPAT.md W6): a job failed through the abort path keeps the flag,
-- which would trip check_not_todo_abort_requested. No trigger fires for this change.
UPDATE procrastinate_jobs SET abort_requested = false
WHERE id = $1 AND status = 'failed'::procrastinate_job_status AND abort_requested;

-- name: manual_retry
SELECT procrastinate_retry_job_v2($1, $2, $3, $4, $5);

-- name: list_events
-- The event rows, and the events the lean layout writes only when the job leaves that state (a
-- waiting 'deferred' event, the 'started' event of a run still going:
-- procrastinate_dotnet_pending_events, migration 0004; none in the compatible layout). Their ids
-- were taken when they happened, so the order by id holds.
SELECT id, job_id, type::text AS type, at FROM procrastinate_events WHERE job_id = $1
UNION ALL
SELECT p.id, p.job_id, p.type, p.at FROM procrastinate_dotnet_pending_events(ARRAY[$1::bigint]) AS p
ORDER BY id;

-- name: list_stalled_jobs
-- COMPAT.md 3.9, heartbeat mode.
SELECT id, queue_name, task_name, priority, lock, queueing_lock, args, status::text AS status,
       scheduled_at, attempts, abort_requested, worker_id
FROM procrastinate_jobs
WHERE status = 'doing'::procrastinate_job_status
  AND (worker_id IS NULL
       OR worker_id IN (SELECT id FROM procrastinate_workers WHERE last_heartbeat < now() - make_interval(secs => $1)))
  AND ($2::character varying IS NULL OR queue_name = $2)
  AND ($3::character varying IS NULL OR task_name = $3)
ORDER BY id;

-- name: lock_stalled_jobs_for_rescue
-- The stalled jobs to rescue now, locked. Besides the heartbeat rule, the latest 'started'
-- event must be older than the threshold: a job whose worker was pruned while alive has
-- worker_id NULL and would otherwise look stalled at once (COMPAT.md W3). On the lean layout the
-- event of the run still going is in the job row (procrastinate_dotnet_pending_events).
SELECT j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args, j.status::text AS status,
       j.scheduled_at, j.attempts, j.abort_requested, j.worker_id
FROM procrastinate_jobs AS j
WHERE j.status = 'doing'::procrastinate_job_status
  AND (j.worker_id IS NULL
       OR j.worker_id IN (SELECT id FROM procrastinate_workers WHERE last_heartbeat < now() - make_interval(secs => $1)))
  AND COALESCE(GREATEST((SELECT max(e.at) FROM procrastinate_events AS e WHERE e.job_id = j.id AND e.type = 'started'::procrastinate_job_event_type),
                         (SELECT max(p.at) FROM procrastinate_dotnet_pending_events(ARRAY[j.id]) AS p WHERE p.type = 'started')), '-infinity')
      < now() - make_interval(secs => $1)
ORDER BY j.id
LIMIT 1000
FOR UPDATE OF j SKIP LOCKED;

-- name: rescue_retry
SELECT procrastinate_retry_job_v2($1, now(), NULL, NULL, NULL);

-- name: rescue_fail
SELECT procrastinate_finish_job_v1($1, 'failed'::procrastinate_job_status, false);

-- name: reclaim_running_jobs
-- After re-registering (COMPAT.md W5): the jobs this process still runs belong to it again.
UPDATE procrastinate_jobs SET worker_id = $2
WHERE id = ANY($1::bigint[]) AND status::text = 'doing' AND worker_id IS NULL;

-- name: next_scheduled_at
-- When the next future job of the served queues becomes due (database clock), so an idle
-- worker wakes for it instead of waiting a whole polling interval.
SELECT min(scheduled_at) - now() FROM procrastinate_jobs
WHERE status = 'todo'::procrastinate_job_status AND scheduled_at > now()
  AND ($1::character varying[] IS NULL OR queue_name = ANY($1::character varying[]));

-- name: record_worker_info
-- The .NET side table (migration 0001); skipped when the .NET additions are not installed.
INSERT INTO procrastinate_dotnet_workers (worker_id, name, host, process_id, queues, concurrency)
SELECT $1, $2, $3, $4, $5, $6
WHERE to_regclass('procrastinate_dotnet_workers') IS NOT NULL;

-- name: defer_periodic_job
-- Arguments in COMPAT.md 3.15's order.
SELECT procrastinate_dotnet_defer_periodic_job($1, $2, $3, $4, $5, $6, $7, $8::jsonb) AS id;

-- name: last_periodic_tick
SELECT max(defer_timestamp) FROM procrastinate_periodic_defers WHERE task_name = $1 AND periodic_id = $2;

-- name: list_jobs
-- COMPAT.md 3.11 (filters, columns, id order), with keyset paging: ids after $8.
SELECT id, queue_name, task_name, priority, lock, queueing_lock, args, status::text AS status,
       scheduled_at, attempts, abort_requested, worker_id
FROM procrastinate_jobs
WHERE ($1::bigint IS NULL OR id = $1)
  AND ($2::character varying IS NULL OR queue_name = $2)
  AND ($3::character varying IS NULL OR task_name = $3)
  AND ($4::text IS NULL OR status = $4::procrastinate_job_status)
  AND ($5::text IS NULL OR lock = $5)
  AND ($6::text IS NULL OR queueing_lock = $6)
  AND ($7::bigint IS NULL OR worker_id = $7)
  AND ($8::bigint IS NULL OR id > $8)
ORDER BY id
LIMIT $9;

-- name: list_jobs_newest_first
-- The same, newest first: ids before $8.
SELECT id, queue_name, task_name, priority, lock, queueing_lock, args, status::text AS status,
       scheduled_at, attempts, abort_requested, worker_id
FROM procrastinate_jobs
WHERE ($1::bigint IS NULL OR id = $1)
  AND ($2::character varying IS NULL OR queue_name = $2)
  AND ($3::character varying IS NULL OR task_name = $3)
  AND ($4::text IS NULL OR status = $4::procrastinate_job_status)
  AND ($5::text IS NULL OR lock = $5)
  AND ($6::text IS NULL OR queueing_lock = $6)
  AND ($7::bigint IS NULL OR worker_id = $7)
  AND ($8::bigint IS NULL OR id < $8)
ORDER BY id DESC
LIMIT $9;

-- name: count_jobs_by
-- list_queues / list_tasks / list_locks (COMPAT.md 3.11): one row per {group}, with counts per status.
SELECT {group} AS name,
       count(*) AS jobs_count,
       count(*) FILTER (WHERE status = 'todo'::procrastinate_job_status) AS todo,
       count(*) FILTER (WHERE status = 'doing'::procrastinate_job_status) AS doing,
       count(*) FILTER (WHERE status = 'succeeded'::procrastinate_job_status) AS succeeded,
       count(*) FILTER (WHERE status = 'failed'::procrastinate_job_status) AS failed,
       count(*) FILTER (WHERE status = 'cancelled'::procrastinate_job_status) AS cancelled,
       count(*) FILTER (WHERE status = 'aborted'::procrastinate_job_status) AS aborted
FROM procrastinate_jobs
WHERE ($1::character varying IS NULL OR queue_name = $1)
  AND ($2::character varying IS NULL OR task_name = $2)
  AND ($3::text IS NULL OR status = $3::procrastinate_job_status)
  AND ($4::text IS NULL OR lock = $4)
  AND {group} IS NOT NULL
GROUP BY {group}
ORDER BY {group};

-- name: delete_job
-- Deletes a job that is not running (events go by cascade, periodic defers are unlinked).
DELETE FROM procrastinate_jobs WHERE id = $1 AND status <> 'doing'::procrastinate_job_status RETURNING id;

-- name: list_workers
SELECT w.id, w.last_heartbeat, d.name, d.host, d.process_id, d.queues, d.concurrency, d.started_at,
       (SELECT count(*) FROM procrastinate_jobs AS j WHERE j.worker_id = w.id AND j.status = 'doing'::procrastinate_job_status) AS running
FROM procrastinate_workers AS w
LEFT JOIN procrastinate_dotnet_workers AS d ON d.worker_id = w.id
ORDER BY w.id;

-- name: list_workers_without_info
SELECT w.id, w.last_heartbeat, NULL::text AS name, NULL::text AS host, NULL::integer AS process_id,
       NULL::character varying[] AS queues, NULL::integer AS concurrency, NULL::timestamptz AS started_at,
       (SELECT count(*) FROM procrastinate_jobs AS j WHERE j.worker_id = w.id AND j.status = 'doing'::procrastinate_job_status) AS running
FROM procrastinate_workers AS w
ORDER BY w.id;

-- name: ping
SELECT 1;

-- name: count_waiting_jobs
SELECT queue_name, count(*) FROM procrastinate_jobs
WHERE status = 'todo'::procrastinate_job_status
  AND ($1::character varying[] IS NULL OR queue_name = ANY($1::character varying[]))
GROUP BY queue_name;

-- name: vacuum_jobs
-- A claimed job leaves an index entry among the waiting jobs' ones, which every later claim
-- walks past until the table is vacuumed; autovacuum comes too seldom for a busy queue (its
-- threshold grows with the finished jobs the table keeps). SKIP_LOCKED: when another vacuum
-- runs, it does the work. INDEX_CLEANUP ON: the entries are what this vacuum is for, even when
-- PostgreSQL would judge them too few to clean.
VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) procrastinate_jobs;

-- name: release_jobs
-- Claimed jobs that never started go back to todo at stop: attempts unchanged, and the
-- status trigger writes deferred_for_retry. Guarded like finish_jobs.
UPDATE procrastinate_jobs AS j
SET status = 'todo'::procrastinate_job_status, worker_id = NULL
FROM unnest($1::bigint[], $2::integer[]) AS input(id, attempts)
WHERE j.id = input.id AND j.status::text = 'doing' AND j.attempts = input.attempts
  AND (j.worker_id = $3 OR j.worker_id IS NULL) AND NOT j.abort_requested;
