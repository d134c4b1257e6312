-- Statements the Npgsql connector sends. Each one starts with "-- name: <key>".
-- They use unqualified names (objects resolve through search_path, COMPAT.md 1.3),
-- cast enum values and lists explicitly (COMPAT.md 3.1) and read columns by name.

-- name: defer_jobs
-- Same rows, triggers and errors as procrastinate_defer_jobs_v1 (COMPAT.md 3.2), without
-- building composite values: parallel arrays, inserted in input order. Ids come from the
-- job sequence in insertion order, so sorting them ascending restores the input order.
INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
SELECT u.queue_name, u.task_name, u.priority, u.lock, u.queueing_lock, u.args, u.scheduled_at
FROM unnest($1::character varying[], $2::character varying[], $3::integer[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[])
    WITH ORDINALITY AS u(queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, ord)
ORDER BY u.ord
RETURNING id;

-- name: defer_job_or_get_existing
-- One job; on a queueing-lock conflict, return the waiting job's id instead (inserted = false).
WITH inserted AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
    ON CONFLICT (queueing_lock) WHERE status = 'todo'::procrastinate_job_status DO NOTHING
    RETURNING id
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
WITH candidate AS (
    SELECT jobs.id
    FROM procrastinate_jobs AS jobs
    WHERE jobs.status = 'todo'::procrastinate_job_status
      AND ($1::character varying[] IS NULL OR jobs.queue_name = ANY($1::character varying[]))
      AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
      AND (
          jobs.lock IS NULL
          OR NOT EXISTS (
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
    LIMIT $3
    FOR UPDATE OF jobs SKIP LOCKED
)
UPDATE procrastinate_jobs AS j
SET status = 'doing'::procrastinate_job_status, worker_id = $2
FROM candidate
WHERE j.id = candidate.id
RETURNING j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args, j.status::text AS status,
          j.scheduled_at, j.attempts, j.abort_requested, j.worker_id;

-- name: finish_jobs
-- Ends many runs at once with the effect of procrastinate_finish_job_v1 (COMPAT.md 2.6.4), but
-- guarded: a row changes only while it is still the run this worker claimed (status doing,
-- same attempts, claimed by this worker, or orphaned by a prune). A late write from a worker
-- presumed dead therefore changes nothing. Returns the ids that were written.
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]::procrastinate_job_status[], $3::integer[], $4::boolean[])
        AS t(id, end_status, attempts, delete_job)
),
deleted AS (
    DELETE FROM procrastinate_jobs AS j
    USING input
    WHERE j.id = input.id AND input.delete_job
      AND j.status = 'doing'::procrastinate_job_status AND j.attempts = input.attempts
      AND (j.worker_id = $5 OR j.worker_id IS NULL)
    RETURNING j.id
),
updated AS (
    UPDATE procrastinate_jobs AS j
    SET status = input.end_status, abort_requested = false, attempts = j.attempts + 1
    FROM input
    WHERE j.id = input.id AND NOT input.delete_job
      AND j.status = 'doing'::procrastinate_job_status AND j.attempts = input.attempts
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
-- Returns one row when the retry was written, none when the run was no longer ours.
SELECT procrastinate_retry_job_v2(j.id, $2, $3, $4, $5)
FROM procrastinate_jobs AS j
WHERE j.id = $1 AND j.status = 'doing'::procrastinate_job_status AND j.attempts = $6
  AND (j.worker_id = $7 OR j.worker_id IS NULL)
FOR UPDATE;

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
WHERE status = 'doing'::procrastinate_job_status AND abort_requested AND id = ANY($1::bigint[]);

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
