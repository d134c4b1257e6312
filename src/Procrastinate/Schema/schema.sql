-- Procrastinate 3.x database schema (the objects of COMPAT.md section 2), written
-- for Procrastinate for .NET. Every name, column, default, constraint, index,
-- function signature and trigger matches what Procrastinate 3.9 for Python
-- creates, so Python and .NET processes can share one database.
--
-- Names are never schema-qualified: objects resolve through the caller's
-- search_path, exactly as Python's do (COMPAT.md 1.3).
--
-- This script is only ever run on a database where to_regclass('procrastinate_jobs')
-- is NULL, inside one transaction (see SchemaManager).

-- Enumerated types ------------------------------------------------------------

CREATE TYPE procrastinate_job_status AS ENUM (
    'todo',
    'doing',
    'succeeded',
    'failed',
    'cancelled',
    'aborting',
    'aborted'
);

CREATE TYPE procrastinate_job_event_type AS ENUM (
    'deferred',
    'started',
    'deferred_for_retry',
    'failed',
    'succeeded',
    'cancelled',
    'abort_requested',
    'aborted',
    'scheduled',
    'retried'
);

-- Batch-defer element type; field order is part of the contract.
CREATE TYPE procrastinate_job_to_defer_v1 AS (
    queue_name character varying,
    task_name character varying,
    priority integer,
    lock text,
    queueing_lock text,
    args jsonb,
    scheduled_at timestamp with time zone
);

-- Tables ------------------------------------------------------------------------

CREATE TABLE procrastinate_workers (
    id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    last_heartbeat timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TABLE procrastinate_jobs (
    id bigserial PRIMARY KEY,
    queue_name character varying(128) NOT NULL,
    task_name character varying(128) NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    lock text,
    queueing_lock text,
    args jsonb DEFAULT '{}' NOT NULL,
    status procrastinate_job_status DEFAULT 'todo'::procrastinate_job_status NOT NULL,
    scheduled_at timestamp with time zone NULL,
    attempts integer DEFAULT 0 NOT NULL,
    abort_requested boolean DEFAULT false NOT NULL,
    worker_id bigint REFERENCES procrastinate_workers(id) ON DELETE SET NULL,
    CONSTRAINT check_not_todo_abort_requested CHECK (NOT (status = 'todo' AND abort_requested = true))
);

CREATE TABLE procrastinate_periodic_defers (
    id bigserial PRIMARY KEY,
    task_name character varying(128) NOT NULL,
    defer_timestamp bigint,
    job_id bigint REFERENCES procrastinate_jobs(id) NULL,
    periodic_id character varying(128) NOT NULL DEFAULT '',
    CONSTRAINT procrastinate_periodic_defers_unique UNIQUE (task_name, periodic_id, defer_timestamp)
);

CREATE TABLE procrastinate_events (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES procrastinate_jobs ON DELETE CASCADE,
    type procrastinate_job_event_type,
    at timestamp with time zone DEFAULT now() NULL
);

-- Indexes -----------------------------------------------------------------------

CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_v1
    ON procrastinate_jobs (queueing_lock) WHERE status = 'todo';
CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_v1
    ON procrastinate_jobs (lock) WHERE status = 'doing';
CREATE INDEX idx_procrastinate_jobs_worker_not_null
    ON procrastinate_jobs (worker_id) WHERE worker_id IS NOT NULL AND status = 'doing'::procrastinate_job_status;
CREATE INDEX procrastinate_jobs_queue_name_idx_v1 ON procrastinate_jobs (queue_name);
CREATE INDEX procrastinate_jobs_id_lock_idx_v1
    ON procrastinate_jobs (id, lock) WHERE status = ANY (ARRAY['todo'::procrastinate_job_status, 'doing'::procrastinate_job_status]);
CREATE INDEX procrastinate_jobs_priority_idx_v1
    ON procrastinate_jobs (priority DESC, id ASC) WHERE status = 'todo'::procrastinate_job_status;
CREATE INDEX procrastinate_events_job_id_fkey_v1 ON procrastinate_events (job_id);
CREATE INDEX procrastinate_periodic_defers_job_id_fkey_v1 ON procrastinate_periodic_defers (job_id);
CREATE INDEX idx_procrastinate_workers_last_heartbeat ON procrastinate_workers (last_heartbeat);

-- Functions called by clients -----------------------------------------------------

CREATE FUNCTION procrastinate_defer_jobs_v1(
    jobs procrastinate_job_to_defer_v1[]
)
    RETURNS bigint[]
    LANGUAGE plpgsql
AS $$
DECLARE
    new_ids bigint[];
BEGIN
    -- Rows are inserted in array order; the ids come back in that order.
    WITH inserted AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
        SELECT j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args, j.scheduled_at
        FROM unnest(jobs) AS j
        RETURNING id
    )
    SELECT array_agg(id) FROM inserted INTO new_ids;
    RETURN new_ids;
END;
$$;

CREATE FUNCTION procrastinate_defer_periodic_job_v2(
    _queue_name character varying,
    _lock character varying,
    _queueing_lock character varying,
    _task_name character varying,
    _priority integer,
    _periodic_id character varying,
    _defer_timestamp bigint,
    _args jsonb
)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    periodic_row_id bigint;
    new_job_id bigint;
BEGIN
    INSERT INTO procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp)
        VALUES (_task_name, _periodic_id, _defer_timestamp)
        ON CONFLICT DO NOTHING
        RETURNING id INTO periodic_row_id;

    IF periodic_row_id IS NULL THEN
        -- Another caller already deferred this tick.
        RETURN NULL;
    END IF;

    new_job_id := (procrastinate_defer_jobs_v1(ARRAY[
        ROW(_queue_name, _task_name, _priority, _lock, _queueing_lock, _args, NULL::timestamptz)
    ]::procrastinate_job_to_defer_v1[]))[1];

    UPDATE procrastinate_periodic_defers SET job_id = new_job_id WHERE id = periodic_row_id;

    -- Keep only the newest tick per (task_name, periodic_id); lock in id order.
    WITH older AS (
        SELECT id FROM procrastinate_periodic_defers
        WHERE task_name = _task_name
          AND periodic_id = _periodic_id
          AND defer_timestamp < _defer_timestamp
        ORDER BY id
        FOR UPDATE
    )
    DELETE FROM procrastinate_periodic_defers AS d USING older WHERE d.id = older.id;

    RETURN new_job_id;
END;
$$;

CREATE FUNCTION procrastinate_fetch_job_v2(
    target_queue_names character varying[],
    p_worker_id bigint
)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql
AS $$
DECLARE
    claimed procrastinate_jobs;
BEGIN
    WITH candidate AS (
        SELECT jobs.id
        FROM procrastinate_jobs AS jobs
        WHERE jobs.status = 'todo'
          AND (target_queue_names IS NULL OR jobs.queue_name = ANY(target_queue_names))
          AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
          AND (
              jobs.lock IS NULL
              OR NOT EXISTS (
                  SELECT 1
                  FROM procrastinate_jobs AS other
                  WHERE other.lock = jobs.lock
                    AND other.id <> jobs.id
                    AND (
                        other.status = 'doing'
                        OR (other.status = 'todo'
                            AND (other.priority > jobs.priority
                                 OR (other.priority = jobs.priority AND other.id < jobs.id)))
                    )
              )
          )
        ORDER BY jobs.priority DESC, jobs.id ASC
        LIMIT 1
        FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs
        SET status = 'doing', worker_id = p_worker_id
        FROM candidate
        WHERE procrastinate_jobs.id = candidate.id
        RETURNING procrastinate_jobs.* INTO claimed;

    RETURN claimed;
END;
$$;

CREATE FUNCTION procrastinate_finish_job_v1(
    job_id bigint,
    end_status procrastinate_job_status,
    delete_job boolean
)
    RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    affected_id bigint;
BEGIN
    IF end_status NOT IN ('succeeded', 'failed', 'aborted') THEN
        RAISE 'End status should be either "succeeded", "failed" or "aborted" (job id: %)', job_id;
    END IF;

    IF delete_job THEN
        DELETE FROM procrastinate_jobs
            WHERE id = job_id AND status IN ('todo', 'doing')
            RETURNING id INTO affected_id;
    ELSE
        UPDATE procrastinate_jobs
            SET status = end_status,
                abort_requested = false,
                attempts = CASE status WHEN 'doing' THEN attempts + 1 ELSE attempts END
            WHERE id = job_id AND status IN ('todo', 'doing')
            RETURNING id INTO affected_id;
    END IF;

    IF affected_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" or "todo" status (job id: %)', job_id;
    END IF;
END;
$$;

CREATE FUNCTION procrastinate_cancel_job_v1(
    job_id bigint,
    abort boolean,
    delete_job boolean
)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    affected_id bigint;
BEGIN
    IF delete_job THEN
        DELETE FROM procrastinate_jobs
            WHERE id = job_id AND status = 'todo'
            RETURNING id INTO affected_id;
    END IF;

    IF affected_id IS NULL THEN
        IF abort THEN
            UPDATE procrastinate_jobs
                SET abort_requested = true,
                    status = CASE status WHEN 'todo' THEN 'cancelled'::procrastinate_job_status ELSE status END
                WHERE id = job_id AND status IN ('todo', 'doing')
                RETURNING id INTO affected_id;
        ELSE
            UPDATE procrastinate_jobs
                SET status = 'cancelled'::procrastinate_job_status
                WHERE id = job_id AND status = 'todo'
                RETURNING id INTO affected_id;
        END IF;
    END IF;

    RETURN affected_id;
END;
$$;

CREATE FUNCTION procrastinate_retry_job_v1(
    job_id bigint,
    retry_at timestamp with time zone,
    new_priority integer,
    new_queue_name character varying,
    new_lock character varying
)
    RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    affected_id bigint;
    was_abort_requested boolean;
BEGIN
    SELECT abort_requested FROM procrastinate_jobs
        WHERE id = job_id AND status = 'doing'
        FOR UPDATE
        INTO was_abort_requested;

    IF was_abort_requested THEN
        UPDATE procrastinate_jobs
            SET status = 'failed'::procrastinate_job_status
            WHERE id = job_id AND status = 'doing'
            RETURNING id INTO affected_id;
    ELSE
        UPDATE procrastinate_jobs
            SET status = 'todo'::procrastinate_job_status,
                attempts = attempts + 1,
                scheduled_at = retry_at,
                priority = COALESCE(new_priority, priority),
                queue_name = COALESCE(new_queue_name, queue_name),
                lock = COALESCE(new_lock, lock)
            WHERE id = job_id AND status = 'doing'
            RETURNING id INTO affected_id;
    END IF;

    IF affected_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" status (job id: %)', job_id;
    END IF;
END;
$$;

CREATE FUNCTION procrastinate_retry_job_v2(
    job_id bigint,
    retry_at timestamp with time zone,
    new_priority integer,
    new_queue_name character varying,
    new_lock character varying
)
    RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    affected_id bigint;
    current_status procrastinate_job_status;
    was_abort_requested boolean;
BEGIN
    SELECT status, abort_requested FROM procrastinate_jobs
        WHERE id = job_id AND status IN ('doing', 'failed')
        FOR UPDATE
        INTO current_status, was_abort_requested;

    IF current_status = 'doing' AND was_abort_requested THEN
        UPDATE procrastinate_jobs
            SET status = 'failed'::procrastinate_job_status
            WHERE id = job_id AND status = 'doing'
            RETURNING id INTO affected_id;
    ELSE
        UPDATE procrastinate_jobs
            SET status = 'todo'::procrastinate_job_status,
                attempts = attempts + 1,
                scheduled_at = retry_at,
                priority = COALESCE(new_priority, priority),
                queue_name = COALESCE(new_queue_name, queue_name),
                lock = COALESCE(new_lock, lock)
            WHERE id = job_id AND status IN ('doing', 'failed')
            RETURNING id INTO affected_id;
    END IF;

    IF affected_id IS NULL THEN
        RAISE 'Job was not found or has an invalid status to retry (job id: %)', job_id;
    END IF;
END;
$$;

CREATE FUNCTION procrastinate_register_worker_v1()
    RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    INSERT INTO procrastinate_workers DEFAULT VALUES
    RETURNING procrastinate_workers.id;
END;
$$;

CREATE FUNCTION procrastinate_unregister_worker_v1(worker_id bigint)
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM procrastinate_workers WHERE id = worker_id;
END;
$$;

CREATE FUNCTION procrastinate_update_heartbeat_v1(worker_id bigint)
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = worker_id;
END;
$$;

CREATE FUNCTION procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision)
    RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    DELETE FROM procrastinate_workers
        WHERE last_heartbeat < now() - (seconds_since_heartbeat || ' SECOND')::interval
        RETURNING procrastinate_workers.id;
END;
$$;

-- Trigger functions ------------------------------------------------------------------

CREATE FUNCTION procrastinate_notify_queue_job_inserted_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text INTO payload;
    PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
    PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_notify_queue_abort_job_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('type', 'abort_job_requested', 'job_id', NEW.id)::text INTO payload;
    PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
    PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_trigger_function_status_events_insert_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO procrastinate_events (job_id, type) VALUES (NEW.id, 'deferred'::procrastinate_job_event_type);
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_trigger_function_status_events_update_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    event procrastinate_job_event_type;
BEGIN
    event := CASE
        WHEN OLD.status = 'todo' AND NEW.status = 'doing' THEN 'started'
        WHEN OLD.status = 'doing' AND NEW.status = 'todo' THEN 'deferred_for_retry'
        WHEN OLD.status = 'doing' AND NEW.status = 'failed' THEN 'failed'
        WHEN OLD.status = 'doing' AND NEW.status = 'succeeded' THEN 'succeeded'
        WHEN OLD.status = 'todo' AND NEW.status IN ('cancelled', 'failed', 'succeeded') THEN 'cancelled'
        WHEN OLD.status = 'doing' AND NEW.status = 'aborted' THEN 'aborted'
        WHEN OLD.status = 'failed' AND NEW.status = 'todo' THEN 'retried'
        ELSE NULL
    END;

    IF event IS NOT NULL THEN
        INSERT INTO procrastinate_events (job_id, type, at) VALUES (NEW.id, event, now());
    END IF;
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_trigger_function_scheduled_events_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO procrastinate_events (job_id, type, at)
        VALUES (NEW.id, 'scheduled'::procrastinate_job_event_type, NEW.scheduled_at);
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_trigger_abort_requested_events_procedure_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO procrastinate_events (job_id, type, at)
        VALUES (NEW.id, 'abort_requested'::procrastinate_job_event_type, now());
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_unlink_periodic_defers_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE procrastinate_periodic_defers SET job_id = NULL WHERE job_id = OLD.id;
    RETURN OLD;
END;
$$;

-- Triggers ------------------------------------------------------------------------------

CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1
    AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1();

CREATE TRIGGER procrastinate_jobs_notify_queue_job_aborted_v1
    AFTER UPDATE OF abort_requested ON procrastinate_jobs
    FOR EACH ROW WHEN (((old.abort_requested = false) AND (new.abort_requested = true) AND (new.status = 'doing'::procrastinate_job_status)))
    EXECUTE PROCEDURE procrastinate_notify_queue_abort_job_v1();

CREATE TRIGGER procrastinate_trigger_status_events_update_v1
    AFTER UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW
    EXECUTE PROCEDURE procrastinate_trigger_function_status_events_update_v1();

CREATE TRIGGER procrastinate_trigger_status_events_insert_v1
    AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_trigger_function_status_events_insert_v1();

CREATE TRIGGER procrastinate_trigger_scheduled_events_v1
    AFTER INSERT OR UPDATE ON procrastinate_jobs
    FOR EACH ROW WHEN (((new.scheduled_at IS NOT NULL) AND (new.status = 'todo'::procrastinate_job_status)))
    EXECUTE PROCEDURE procrastinate_trigger_function_scheduled_events_v1();

CREATE TRIGGER procrastinate_trigger_abort_requested_events_v1
    AFTER UPDATE OF abort_requested ON procrastinate_jobs
    FOR EACH ROW WHEN ((new.abort_requested = true))
    EXECUTE PROCEDURE procrastinate_trigger_abort_requested_events_procedure_v1();

CREATE TRIGGER procrastinate_trigger_delete_jobs_v1
    BEFORE DELETE ON procrastinate_jobs
    FOR EACH ROW
    EXECUTE PROCEDURE procrastinate_unlink_periodic_defers_v1();
