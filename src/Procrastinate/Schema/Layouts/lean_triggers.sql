-- Procrastinate for .NET: the event-writing trigger functions of the lean layout (lean.sql),
-- the job columns and row triggers that keep a job's waiting events, and the mark that keeps
-- jobs scheduled for later out of the claim's indexes (revision 5, at the end). Revision 6: the
-- insert function leaves the notification to a client that says it sends it after its commit.
--
-- Run by SchemaManager before lean.sql when a database is converted to the lean layout, and
-- alone on a database converted by an earlier version, which had slower bodies of the same
-- functions and wrote every event at once (ledger row dotnet_layout_lean_triggers_6 marks the
-- current ones). The insert and update functions write the events the compatible layout's
-- per-row triggers write, for a whole statement at once; the delete functions do the cascades
-- of its foreign keys.
--
-- Plans that hold at any size. PL/pgSQL plans each statement of a function once per session
-- and keeps the plan, estimating a transition table at the size it had on that first call. A
-- session whose first update touched no row or one row (a worker's prune of stalled jobs, a
-- single completion) kept a nested loop for the old-to-new row join, and each later claim of
-- 1,000 jobs then compared every row with every other: a million join-filter evaluations,
-- 240 ms of a 260 ms claim. So the update function plans with nested loops off (its join of
-- the two transition tables becomes a hash or merge join, linear at any size), and the delete
-- functions look rows up with "= ANY (ARRAY(SELECT id FROM old_rows))", an index lookup per
-- id whatever the estimate. Test: LayoutTests, "plans do not depend on the size of the first
-- statement".
--
-- Each has a general statement and a fast one. The general statement yields up to three
-- candidate events per row through a lateral VALUES list and filters the empty ones; on the
-- worker's claims and completions that list cost about as much as the rest of the trigger
-- (benchmarks/sql-ceiling.sh: 28,000-30,000 jobs/s with it, 33,000-34,000 with the fast
-- statement, on 2 cores). The rare events (abort requested, scheduled) can only come from a row
-- whose new version shows them, which one scan of new_rows tells; without such a row, each
-- row's events are its status change and the waiting events it writes (below).
--
-- A job's 'deferred' event and a run's 'started' event are written when the job or run leaves
-- that state (revision 4). Their ids, taken from the events' sequence, and their times wait in
-- columns of the job row: the insert fills dotnet_deferred_event_id and dotnet_deferred_at
-- through the columns' defaults, the worker's claim fills dotnet_started_event_id and
-- dotnet_started_at in the row it writes anyway. The update that changes the status (a run's
-- end, a cancel, a retry, an abort, a rescue; not a claim) writes the waiting events with those
-- ids and times beside its own, so the events of a job keep their order by id, and clears the
-- deferred columns (the worker's completion in its SET list, other statements through the row
-- trigger procrastinate_lean_jobs_deferred_written). An insert and a claim thus write no event
-- row, and a job deleted at its end (DeleteJobs) never writes these events, which its deletion
-- would have deleted. On the worker's claims the 'started' insert was a third of the statement's
-- time (benchmarks/sql-ceiling.sh, lean, claims of 500 deleted at completion: 42,800-53,300
-- jobs/s against 33,100-36,300 with the event written at the claim); on an insert of 100,000
-- jobs the 'deferred' events were about a quarter. Readers see the waiting events through
-- procrastinate_dotnet_pending_events(), which reads those columns here and returns nothing in
-- the compatible layout. Statements that do not set the columns themselves get them from row
-- triggers whose WHEN clauses keep them from firing for the library's own statements:
-- procrastinate_lean_jobs_started for a claim of an earlier version of the library or
-- procrastinate_fetch_job_v2; procrastinate_lean_jobs_deferred_now for an insert of a scheduled
-- job (its 'scheduled' event comes before 'deferred', so both are written at once) or of a job
-- that is not waiting (no event, as the compatible triggers).

-- Where the waiting events are kept (see above). Nullable, added without a default and then
-- given one: rows already there keep NULL (their events are rows), and nothing is rewritten.
ALTER TABLE procrastinate_jobs
    ADD COLUMN IF NOT EXISTS dotnet_deferred_event_id bigint,
    ADD COLUMN IF NOT EXISTS dotnet_deferred_at timestamp with time zone,
    ADD COLUMN IF NOT EXISTS dotnet_started_event_id bigint,
    ADD COLUMN IF NOT EXISTS dotnet_started_at timestamp with time zone;
ALTER TABLE procrastinate_jobs
    ALTER COLUMN dotnet_deferred_event_id SET DEFAULT nextval('procrastinate_events_id_seq'::regclass),
    ALTER COLUMN dotnet_deferred_at SET DEFAULT now();

-- A claim that did not set them: the event id and time, as the worker's claim sets them.
CREATE OR REPLACE FUNCTION procrastinate_lean_job_started()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.dotnet_started_event_id := nextval('procrastinate_events_id_seq'::regclass);
    NEW.dotnet_started_at := now();
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS procrastinate_lean_jobs_started ON procrastinate_jobs;
CREATE TRIGGER procrastinate_lean_jobs_started
    BEFORE UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW
    WHEN (new.status = 'doing'::procrastinate_job_status AND old.status <> 'doing'::procrastinate_job_status
          AND new.dotnet_started_event_id IS NOT DISTINCT FROM old.dotnet_started_event_id)
    EXECUTE FUNCTION procrastinate_lean_job_started();

-- No waiting 'deferred' event: for a row whose event is written now (the insert trigger below)
-- or written already (the update trigger, from the old row).
CREATE OR REPLACE FUNCTION procrastinate_lean_job_deferred_clear()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.dotnet_deferred_event_id := NULL;
    NEW.dotnet_deferred_at := NULL;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS procrastinate_lean_jobs_deferred_now ON procrastinate_jobs;
CREATE TRIGGER procrastinate_lean_jobs_deferred_now
    BEFORE INSERT ON procrastinate_jobs
    FOR EACH ROW
    WHEN (new.dotnet_deferred_event_id IS NOT NULL
          AND (new.scheduled_at IS NOT NULL OR new.status <> 'todo'::procrastinate_job_status))
    EXECUTE FUNCTION procrastinate_lean_job_deferred_clear();

DROP TRIGGER IF EXISTS procrastinate_lean_jobs_deferred_written ON procrastinate_jobs;
CREATE TRIGGER procrastinate_lean_jobs_deferred_written
    BEFORE UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW
    WHEN (old.dotnet_deferred_event_id IS NOT NULL
          AND new.dotnet_deferred_event_id IS NOT DISTINCT FROM old.dotnet_deferred_event_id
          AND new.status <> old.status AND new.status <> 'doing'::procrastinate_job_status)
    EXECUTE FUNCTION procrastinate_lean_job_deferred_clear();

-- The waiting events of the given jobs: 'deferred' while the job has not left its first wait
-- or run, 'started' while its run goes on (the compatible layout's version, migration 0004,
-- returns none). An SQL function of one query: PostgreSQL inlines it.
CREATE OR REPLACE FUNCTION procrastinate_dotnet_pending_events(job_ids bigint[])
    RETURNS TABLE (id bigint, job_id bigint, type text, at timestamp with time zone)
    LANGUAGE sql
    STABLE
AS $$
    SELECT j.dotnet_deferred_event_id, j.id, 'deferred', j.dotnet_deferred_at
    FROM procrastinate_jobs AS j
    WHERE j.id = ANY (job_ids) AND j.dotnet_deferred_event_id IS NOT NULL
    UNION ALL
    SELECT j.dotnet_started_event_id, j.id, 'started', j.dotnet_started_at
    FROM procrastinate_jobs AS j
    WHERE j.id = ANY (job_ids)
      AND j.status = 'doing'::procrastinate_job_status
      AND j.dotnet_started_event_id IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_inserted()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- A waiting job's 'deferred' event waits in its row, unless the row trigger cleared it:
    -- then, as the compatible triggers write them, 'scheduled' (when scheduled) and 'deferred'
    -- (the lateral VALUES yields them in that order).
    IF EXISTS (SELECT FROM new_rows WHERE dotnet_deferred_event_id IS NULL AND status = 'todo'::procrastinate_job_status) THEN
        INSERT INTO procrastinate_events (job_id, type, at)
        SELECT n.id, e.type, e.at
        FROM new_rows AS n
        CROSS JOIN LATERAL (VALUES
            (CASE WHEN n.scheduled_at IS NOT NULL THEN 'scheduled'::procrastinate_job_event_type END, n.scheduled_at),
            ('deferred'::procrastinate_job_event_type, now())
        ) AS e(type, at)
        WHERE n.status = 'todo'::procrastinate_job_status AND n.dotnet_deferred_event_id IS NULL AND e.type IS NOT NULL;
    END IF;

    -- One wake-up per queue and statement (the payload names the queue's first new job), unless
    -- the transaction says that its client sends them after its commit (.NET's DeferNotifier:
    -- a transaction that notifies commits only after the one before it has flushed).
    IF current_setting('procrastinate.dotnet_notify', true) IS DISTINCT FROM 'after_commit' THEN
        PERFORM pg_notify(c.channel, json_build_object('type', 'job_inserted', 'job_id', q.id)::text)
        FROM (SELECT queue_name, min(id) AS id FROM new_rows WHERE status = 'todo' GROUP BY queue_name) AS q
        CROSS JOIN LATERAL (VALUES ('procrastinate_queue_v1#' || q.queue_name), ('procrastinate_any_queue_v1')) AS c(channel);
    END IF;
    RETURN NULL;
END;
$$;

-- The event of a status change, as the compatible layout's status trigger names it (null: none),
-- except todo to doing: its 'started' event is written when the run ends.
-- A single-expression SQL function, which PostgreSQL inlines into the statements that call it.
CREATE OR REPLACE FUNCTION procrastinate_lean_status_event(old_status procrastinate_job_status, new_status procrastinate_job_status)
    RETURNS procrastinate_job_event_type
    LANGUAGE sql
    IMMUTABLE
AS $$
    SELECT CASE
        WHEN old_status = 'todo'::procrastinate_job_status THEN
            CASE new_status
                WHEN 'cancelled'::procrastinate_job_status THEN 'cancelled'::procrastinate_job_event_type
                WHEN 'failed'::procrastinate_job_status THEN 'cancelled'::procrastinate_job_event_type
                WHEN 'succeeded'::procrastinate_job_status THEN 'cancelled'::procrastinate_job_event_type
            END
        WHEN old_status = 'doing'::procrastinate_job_status THEN
            CASE new_status
                WHEN 'succeeded'::procrastinate_job_status THEN 'succeeded'::procrastinate_job_event_type
                WHEN 'failed'::procrastinate_job_status THEN 'failed'::procrastinate_job_event_type
                WHEN 'todo'::procrastinate_job_status THEN 'deferred_for_retry'::procrastinate_job_event_type
                WHEN 'aborted'::procrastinate_job_status THEN 'aborted'::procrastinate_job_event_type
            END
        WHEN old_status = 'failed'::procrastinate_job_status AND new_status = 'todo'::procrastinate_job_status THEN 'retried'::procrastinate_job_event_type
    END
$$;

CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_updated()
    RETURNS trigger
    LANGUAGE plpgsql
    SET enable_nestloop = off
AS $$
BEGIN
    -- An update of the later mark alone (procrastinate_lean_promote_due_jobs,
    -- procrastinate_lean_mark_later_jobs): no event, as in the compatible layout, which has none.
    IF current_setting('procrastinate.dotnet_later_only', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- Claims, and updates of running jobs that ask for no abort (a worker pruned: worker_id
    -- NULL): no event now. A claimed run's 'started' event, and the job's 'deferred' event on
    -- its first run, wait in the row until the run ends.
    IF NOT EXISTS (SELECT FROM new_rows AS n
                   WHERE n.status <> 'doing'::procrastinate_job_status OR n.abort_requested) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM new_rows AS n
               WHERE n.abort_requested
                  OR (n.scheduled_at IS NOT NULL AND n.status = 'todo'::procrastinate_job_status)) THEN
        -- The compatible triggers' events, in their order for each job: the waiting 'deferred'
        -- and 'started' events of a job that leaves its wait or run (their ids were taken
        -- then), abort requested, scheduled, status change (the lateral VALUES yields them in
        -- that order; new ids follow). Enum-typed constants, so nothing is parsed per row.
        INSERT INTO procrastinate_events (id, job_id, type, at)
        SELECT coalesce(e.id, nextval('procrastinate_events_id_seq'::regclass)), n.id, e.type, e.at
        FROM old_rows AS o
        JOIN new_rows AS n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES
            (o.dotnet_deferred_event_id,
             CASE WHEN o.dotnet_deferred_event_id IS NOT NULL AND n.status <> o.status
                       AND n.status <> 'doing'::procrastinate_job_status THEN 'deferred'::procrastinate_job_event_type END,
             o.dotnet_deferred_at),
            (o.dotnet_started_event_id,
             CASE WHEN o.status = 'doing'::procrastinate_job_status AND n.status <> 'doing'::procrastinate_job_status
                       AND o.dotnet_started_event_id IS NOT NULL THEN 'started'::procrastinate_job_event_type END,
             o.dotnet_started_at),
            (NULL::bigint, CASE WHEN n.abort_requested AND NOT o.abort_requested THEN 'abort_requested'::procrastinate_job_event_type END, now()),
            (NULL::bigint, CASE WHEN n.scheduled_at IS NOT NULL AND n.status = 'todo'::procrastinate_job_status THEN 'scheduled'::procrastinate_job_event_type END, n.scheduled_at),
            (NULL::bigint, procrastinate_lean_status_event(o.status, n.status), now())
        ) AS e(id, type, at)
        WHERE e.type IS NOT NULL;
    ELSE
        -- No row asks for an abort or is scheduled: each row's events are the waiting 'deferred'
        -- and 'started' events of a job that leaves its wait or run, with the ids taken then,
        -- and its status change.
        WITH changed AS (
            SELECT n.id, o.status AS old_status, n.status AS new_status,
                   o.dotnet_deferred_event_id AS deferred_id, o.dotnet_deferred_at AS deferred_at,
                   o.dotnet_started_event_id AS started_id, o.dotnet_started_at AS started_at
            FROM old_rows AS o
            JOIN new_rows AS n ON n.id = o.id
        )
        INSERT INTO procrastinate_events (id, job_id, type, at)
        SELECT c.deferred_id, c.id, 'deferred'::procrastinate_job_event_type, c.deferred_at
        FROM changed AS c
        WHERE c.deferred_id IS NOT NULL AND c.new_status <> c.old_status AND c.new_status <> 'doing'::procrastinate_job_status
        UNION ALL
        SELECT c.started_id, c.id, 'started'::procrastinate_job_event_type, c.started_at
        FROM changed AS c
        WHERE c.old_status = 'doing'::procrastinate_job_status AND c.new_status <> 'doing'::procrastinate_job_status
          AND c.started_id IS NOT NULL
        UNION ALL
        SELECT nextval('procrastinate_events_id_seq'::regclass), s.id, s.type, now()
        FROM (SELECT c.id, procrastinate_lean_status_event(c.old_status, c.new_status) AS type FROM changed AS c) AS s
        WHERE s.type IS NOT NULL;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_deleted()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- Statement triggers fire for statements that delete no row too (the completion's delete
    -- part, most of the time): skip the three statements then.
    IF NOT EXISTS (SELECT FROM old_rows) THEN
        RETURN NULL;
    END IF;
    -- The cascades of the compatible layout's foreign keys and delete trigger.
    DELETE FROM procrastinate_events WHERE job_id = ANY (ARRAY(SELECT id FROM old_rows));
    UPDATE procrastinate_periodic_defers SET job_id = NULL WHERE job_id = ANY (ARRAY(SELECT id FROM old_rows));
    DELETE FROM procrastinate_dotnet_job_trace WHERE job_id = ANY (ARRAY(SELECT id FROM old_rows));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION procrastinate_lean_workers_deleted()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM old_rows) THEN
        RETURN NULL;
    END IF;
    -- The compatible layout's ON DELETE SET NULL, for the jobs that are running (the ones
    -- stalled-job rescue and re-registration look at); ended jobs keep the id.
    UPDATE procrastinate_jobs SET worker_id = NULL
    WHERE worker_id = ANY (ARRAY(SELECT id FROM old_rows)) AND status = 'doing'::procrastinate_job_status;
    RETURN NULL;
END;
$$;

-- Jobs scheduled for later (revision 5) -------------------------------------------------------
-- The claim reads the waiting jobs in its order, priority then id, through an index. A job
-- scheduled for later sat in that order too, and every claim that reached it read its row and
-- passed it over: about 0.2 µs a job, so 200,000 jobs scheduled for the next day cost each claim
-- 40-50 ms, and a claim that found nothing read them all (BENCHMARKS.md, "Jobs scheduled for
-- later"). dotnet_later marks a waiting job whose time was ahead when its row was written: the
-- claim's indexes leave it out, and an index of its own holds it by time. The worker's claim
-- first clears the mark of the jobs whose time has come (procrastinate_lean_promote_due_jobs,
-- in the claim's transaction), so the claim sees them at their place in its order.
-- A row trigger keeps the mark; its WHEN clause calls it only when the mark changes, so an insert
-- or update of a job that is not scheduled for later pays one comparison. The mark can only be late
-- in one way: set on a job whose time has come (until a claim clears it); the claim still tests
-- scheduled_at itself.
-- Added with its default (no rewrite); jobs already scheduled for later are marked below.
ALTER TABLE procrastinate_jobs ADD COLUMN IF NOT EXISTS dotnet_later boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION procrastinate_lean_job_later()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.dotnet_later := coalesce(NEW.scheduled_at > now(), false);
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS procrastinate_lean_jobs_later ON procrastinate_jobs;
CREATE TRIGGER procrastinate_lean_jobs_later
    BEFORE INSERT OR UPDATE ON procrastinate_jobs
    FOR EACH ROW
    WHEN (new.dotnet_later IS DISTINCT FROM coalesce(new.scheduled_at > now(), false))
    EXECUTE FUNCTION procrastinate_lean_job_later();

-- Clears the mark of up to max_jobs jobs whose time has come, the earliest first, and returns
-- how many. Rows that another transaction holds are left to the next claim. Its update writes no
-- event (procrastinate_lean_jobs_updated returns at once while the setting is on): nothing a
-- reader sees has changed, and the compatible layout has no such update.
CREATE OR REPLACE FUNCTION procrastinate_lean_promote_due_jobs(max_jobs integer)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    promoted integer;
BEGIN
    IF NOT EXISTS (SELECT FROM procrastinate_jobs
                   WHERE status = 'todo'::procrastinate_job_status AND dotnet_later AND scheduled_at <= now()) THEN
        RETURN 0;
    END IF;
    PERFORM set_config('procrastinate.dotnet_later_only', 'on', true);
    UPDATE procrastinate_jobs SET dotnet_later = false
    WHERE id = ANY (ARRAY(
        SELECT due.id FROM procrastinate_jobs AS due
        WHERE due.status = 'todo'::procrastinate_job_status AND due.dotnet_later AND due.scheduled_at <= now()
        ORDER BY due.scheduled_at
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS promoted = ROW_COUNT;
    PERFORM set_config('procrastinate.dotnet_later_only', 'off', true);
    RETURN promoted;
END;
$$;

-- The claim's indexes without the jobs scheduled for later (they replace the priority index of
-- the compatible layout and the queue index of revisions 1-4), and those jobs by time, which
-- also tells an idle worker when the next one comes due (LeanColumns.NextScheduled): it replaces
-- the index of every scheduled job of revisions 1-4, which a claim's move of a job that came due
-- had to update too.
CREATE INDEX IF NOT EXISTS procrastinate_jobs_claim_idx_lean
    ON procrastinate_jobs (priority DESC, id) WHERE status = 'todo' AND NOT dotnet_later;
CREATE INDEX IF NOT EXISTS procrastinate_jobs_queue_claim_idx_lean
    ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo' AND NOT dotnet_later;
CREATE INDEX IF NOT EXISTS procrastinate_jobs_later_idx_lean
    ON procrastinate_jobs (scheduled_at) WHERE status = 'todo' AND dotnet_later;
DROP INDEX IF EXISTS procrastinate_jobs_priority_idx_v1;
DROP INDEX IF EXISTS procrastinate_dotnet_jobs_queue_claim_idx; -- the compatible layout's (migration 0005)
DROP INDEX IF EXISTS procrastinate_dotnet_jobs_scheduled_idx; -- the compatible layout's (migration 0006)
DROP INDEX IF EXISTS procrastinate_jobs_queue_idx_lean;
DROP INDEX IF EXISTS procrastinate_jobs_scheduled_idx_lean;

-- Marks the jobs already scheduled for later, once the lean layout's triggers are in place: at
-- the end of lean.sql when a database is converted, here when it is brought up to date.
-- Without events, as the claim's update.
CREATE OR REPLACE FUNCTION procrastinate_lean_mark_later_jobs()
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    marked integer;
BEGIN
    PERFORM set_config('procrastinate.dotnet_later_only', 'on', true);
    UPDATE procrastinate_jobs SET dotnet_later = true
    WHERE status = 'todo'::procrastinate_job_status AND scheduled_at > now() AND NOT dotnet_later;
    GET DIAGNOSTICS marked = ROW_COUNT;
    PERFORM set_config('procrastinate.dotnet_later_only', 'off', true);
    RETURN marked;
END;
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_trigger
               WHERE tgrelid = 'procrastinate_jobs'::regclass AND tgname = 'procrastinate_lean_jobs_updated') THEN
        PERFORM procrastinate_lean_mark_later_jobs();
    END IF;
END;
$$;
