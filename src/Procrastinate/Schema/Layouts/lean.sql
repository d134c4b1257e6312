-- Procrastinate for .NET: the lean layout (a .NET-only variant of the Procrastinate 3.x schema).
--
-- Same tables, functions and events as the compatible layout, so every statement the library
-- sends works unchanged but the worker's claim and completion, which also fill and clear the
-- four columns the lean layout adds to procrastinate_jobs (where a job's 'deferred' event and a
-- run's 'started' event wait until the job leaves that state, lean_triggers.sql, which adds
-- them); what changes is how the rows are kept:
--   * the per-row plpgsql triggers become statement-level triggers over transition tables:
--     the event rows of a whole statement are written by one INSERT ... SELECT, and a defer
--     statement sends one notification per queue instead of two per job (the abort-request
--     notification keeps its row trigger: its WHEN clause makes it free for other updates);
--   * foreign keys that PostgreSQL checks row by row are dropped: jobs -> workers (each claim
--     took a FOR KEY SHARE lock on the worker row), events -> jobs, periodic defers -> jobs,
--     trace -> jobs; the statement triggers do their cascades;
--   * the job indexes hold only the rows they are for (partial on the statuses and on
--     non-null keys), and the events table has no primary-key index.
-- Differences a user can see: a Python Procrastinate process cannot share this database
-- (it expects the per-job notifications and constraints); a job that ended keeps the id of the
-- worker that ran it after that worker is gone (the compatible layout sets it to NULL).
-- Applied by SchemaManager in one transaction; undone by compatible.sql.

-- Triggers and foreign keys of the compatible layout --------------------------------------

DROP TRIGGER IF EXISTS procrastinate_jobs_notify_queue_job_inserted_v1 ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_trigger_status_events_update_v1 ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_trigger_status_events_insert_v1 ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_trigger_scheduled_events_v1 ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_trigger_abort_requested_events_v1 ON procrastinate_jobs;
DROP TRIGGER IF EXISTS procrastinate_trigger_delete_jobs_v1 ON procrastinate_jobs;

-- Whatever their names (Python's migrations and this installer may name them differently).
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conname, c.conrelid::regclass AS tbl
        FROM pg_constraint AS c
        WHERE c.contype = 'f'
          AND ((c.conrelid = 'procrastinate_jobs'::regclass AND c.confrelid = 'procrastinate_workers'::regclass)
            OR (c.conrelid IN ('procrastinate_events'::regclass, 'procrastinate_periodic_defers'::regclass,
                               'procrastinate_dotnet_job_trace'::regclass)
                AND c.confrelid = 'procrastinate_jobs'::regclass))
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
END;
$$;

-- Indexes ----------------------------------------------------------------------------------

DROP INDEX IF EXISTS procrastinate_jobs_queue_name_idx_v1;
DROP INDEX IF EXISTS procrastinate_jobs_id_lock_idx_v1;
DROP INDEX IF EXISTS procrastinate_jobs_queueing_lock_idx_v1;
DROP INDEX IF EXISTS procrastinate_jobs_lock_idx_v1;

-- The same uniqueness rules, without an entry per job that has no lock.
CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_lean
    ON procrastinate_jobs (queueing_lock) WHERE status = 'todo' AND queueing_lock IS NOT NULL;
CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_lean
    ON procrastinate_jobs (lock) WHERE status = 'doing' AND lock IS NOT NULL;
-- The lock-head rule of the claim. (The claim's own indexes, without the jobs scheduled for
-- later, are in lean_triggers.sql.)
CREATE INDEX procrastinate_jobs_lock_rule_idx_lean
    ON procrastinate_jobs (lock, priority DESC, id)
    WHERE lock IS NOT NULL AND status IN ('todo', 'doing');

-- When the next scheduled job is due (an idle worker's timer): the index of the jobs marked as
-- scheduled for later (lean_triggers.sql) serves it.

-- An append-only log read by job id: no primary-key index to maintain per event.
ALTER TABLE procrastinate_events DROP CONSTRAINT IF EXISTS procrastinate_events_pkey;

-- Statement-level triggers --------------------------------------------------------------------
-- Their functions are in lean_triggers.sql, which SchemaManager runs just before this file (and
-- alone, to bring the functions of a database converted by an earlier version up to date).

CREATE TRIGGER procrastinate_lean_jobs_inserted
    AFTER INSERT ON procrastinate_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION procrastinate_lean_jobs_inserted();

CREATE TRIGGER procrastinate_lean_jobs_updated
    AFTER UPDATE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION procrastinate_lean_jobs_updated();

CREATE TRIGGER procrastinate_lean_jobs_deleted
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION procrastinate_lean_jobs_deleted();

CREATE TRIGGER procrastinate_lean_workers_deleted
    AFTER DELETE ON procrastinate_workers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION procrastinate_lean_workers_deleted();

-- Jobs scheduled for later (lean_triggers.sql), now that the triggers above are in place.
SELECT procrastinate_lean_mark_later_jobs();
