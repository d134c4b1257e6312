-- Procrastinate for .NET addition: the events of jobs that are not yet rows of
-- procrastinate_events. The lean layout writes a job's 'deferred' event and a run's 'started'
-- event when the job leaves that state, and replaces this function with one that reads them from
-- the job rows (Layouts/lean_triggers.sql); in the compatible layout every event is a row, and
-- it returns none. Readers of events (job history, stalled-job rescue, the dashboard) add its
-- rows to the table's. No column or type of a Procrastinate table appears in its signature, so
-- it does not stand in the way of a Python migration.
CREATE OR REPLACE FUNCTION procrastinate_dotnet_pending_events(job_ids bigint[])
    RETURNS TABLE (id bigint, job_id bigint, type text, at timestamp with time zone)
    LANGUAGE sql
    STABLE
AS $$
    SELECT NULL::bigint, NULL::bigint, NULL::text, NULL::timestamp with time zone WHERE false
$$;
