-- Procrastinate for .NET: back from the lean layout (lean.sql) to the Procrastinate-compatible
-- one: the per-row triggers, foreign keys and indexes of the 3.x schema, as schema.sql and the
-- .NET migrations create them. Applied by SchemaManager in one transaction.

-- The events the lean layout keeps in job rows until the job leaves that state (a waiting
-- 'deferred' event, the 'started' event of a run still going) become rows, with the ids taken
-- for them; then the columns that held them go.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute
               WHERE attrelid = 'procrastinate_jobs'::regclass AND attname = 'dotnet_deferred_event_id' AND NOT attisdropped) THEN
        INSERT INTO procrastinate_events (id, job_id, type, at)
        SELECT j.dotnet_deferred_event_id, j.id, 'deferred'::procrastinate_job_event_type, j.dotnet_deferred_at
        FROM procrastinate_jobs AS j
        WHERE j.dotnet_deferred_event_id IS NOT NULL;
        INSERT INTO procrastinate_events (id, job_id, type, at)
        SELECT j.dotnet_started_event_id, j.id, 'started'::procrastinate_job_event_type, j.dotnet_started_at
        FROM procrastinate_jobs AS j
        WHERE j.status = 'doing'::procrastinate_job_status AND j.dotnet_started_event_id IS NOT NULL;
    END IF;
END;
$$;
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_started ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_deferred_now ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_deferred_written ON procrastinate_jobs;
DROP FUNCTION IF EXISTS procrastinate_lean_job_started();
DROP FUNCTION IF EXISTS procrastinate_lean_job_deferred_clear();
-- The mark of jobs scheduled for later (revision 5), and what keeps and reads it.
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_later ON procrastinate_jobs;
DROP FUNCTION IF EXISTS procrastinate_lean_job_later();
DROP FUNCTION IF EXISTS procrastinate_lean_promote_due_jobs(integer);
DROP FUNCTION IF EXISTS procrastinate_lean_mark_later_jobs();
DROP INDEX IF EXISTS procrastinate_jobs_claim_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_queue_claim_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_later_idx_lean;
ALTER TABLE procrastinate_jobs DROP COLUMN IF EXISTS dotnet_later;
-- The readers' function as migration 0004 creates it: every event is a row again.
CREATE OR REPLACE FUNCTION procrastinate_dotnet_pending_events(job_ids bigint[])
    RETURNS TABLE (id bigint, job_id bigint, type text, at timestamp with time zone)
    LANGUAGE sql
    STABLE
AS $$
    SELECT NULL::bigint, NULL::bigint, NULL::text, NULL::timestamp with time zone WHERE false
$$;
ALTER TABLE procrastinate_jobs
    DROP COLUMN IF EXISTS dotnet_deferred_event_id,
    DROP COLUMN IF EXISTS dotnet_deferred_at,
    DROP COLUMN IF EXISTS dotnet_started_event_id,
    DROP COLUMN IF EXISTS dotnet_started_at;

DROP TRIGGER IF EXISTS procrastinate_lean_jobs_inserted ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_updated ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_lean_jobs_deleted ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_lean_workers_deleted ON procrastinate_workers;
DROP FUNCTION IF EXISTS procrastinate_lean_jobs_inserted();
DROP FUNCTION IF EXISTS procrastinate_lean_jobs_updated();
DROP FUNCTION IF EXISTS procrastinate_lean_jobs_deleted();
DROP FUNCTION IF EXISTS procrastinate_lean_workers_deleted();
DROP FUNCTION IF EXISTS procrastinate_lean_status_event(procrastinate_job_status, procrastinate_job_status);

DROP INDEX IF EXISTS procrastinate_jobs_queueing_lock_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_lock_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_queue_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_lock_rule_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_scheduled_idx_lean;

CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_v1
    ON procrastinate_jobs (queueing_lock) WHERE status = 'todo';
CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_v1
    ON procrastinate_jobs (lock) WHERE status = 'doing';
CREATE INDEX procrastinate_jobs_queue_name_idx_v1 ON procrastinate_jobs (queue_name);
-- Revisions 1-4 of the lean layout kept it.
CREATE INDEX IF NOT EXISTS procrastinate_jobs_priority_idx_v1
    ON procrastinate_jobs (priority DESC, id ASC) WHERE status = 'todo'::procrastinate_job_status;
CREATE INDEX procrastinate_jobs_id_lock_idx_v1
    ON procrastinate_jobs (id, lock) WHERE status = ANY (ARRAY['todo'::procrastinate_job_status, 'doing'::procrastinate_job_status]);
-- The .NET additions of migrations 0005 and 0006, which the lean layout replaces with its own.
CREATE INDEX IF NOT EXISTS procrastinate_dotnet_jobs_queue_claim_idx
    ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo'::procrastinate_job_status;
CREATE INDEX IF NOT EXISTS procrastinate_dotnet_jobs_scheduled_idx
    ON procrastinate_jobs (scheduled_at) WHERE status = 'todo'::procrastinate_job_status AND scheduled_at IS NOT NULL;

-- The lean layout lets ended jobs keep the id of a worker that is gone, and cascades by
-- triggers: make the rows satisfy the foreign keys again before adding them.
UPDATE procrastinate_jobs AS j SET worker_id = NULL
WHERE j.worker_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM procrastinate_workers AS w WHERE w.id = j.worker_id);
DELETE FROM procrastinate_events AS e WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.id = e.job_id);
UPDATE procrastinate_periodic_defers AS p SET job_id = NULL
WHERE p.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.id = p.job_id);
DELETE FROM procrastinate_dotnet_job_trace AS t WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.id = t.job_id);

ALTER TABLE procrastinate_events ADD PRIMARY KEY (id);
ALTER TABLE procrastinate_jobs
    ADD FOREIGN KEY (worker_id) REFERENCES procrastinate_workers(id) ON DELETE SET NULL;
ALTER TABLE procrastinate_events
    ADD FOREIGN KEY (job_id) REFERENCES procrastinate_jobs ON DELETE CASCADE;
ALTER TABLE procrastinate_periodic_defers
    ADD FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id);
ALTER TABLE procrastinate_dotnet_job_trace
    ADD FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id) ON DELETE CASCADE;

CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1
    AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1();

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
