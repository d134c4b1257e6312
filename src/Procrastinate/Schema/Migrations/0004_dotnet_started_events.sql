-- Procrastinate for .NET addition: the 'started' events of runs still going that are not yet
-- rows of procrastinate_events. The lean layout writes a run's 'started' event when the run
-- ends and replaces this function with one that reads the running jobs (Layouts/lean_triggers.sql);
-- in the compatible layout every event is a row, and it returns none. Readers of events
-- (job history, stalled-job rescue, the dashboard) add its rows to the table's. No column of a
-- Procrastinate table appears in its signature, so it does not stand in the way of a Python
-- migration.
CREATE OR REPLACE FUNCTION procrastinate_dotnet_started_events(job_ids bigint[])
    RETURNS TABLE (id bigint, job_id bigint, at timestamp with time zone)
    LANGUAGE sql
    STABLE
AS $$
    SELECT NULL::bigint, NULL::bigint, NULL::timestamp with time zone WHERE false
$$;
