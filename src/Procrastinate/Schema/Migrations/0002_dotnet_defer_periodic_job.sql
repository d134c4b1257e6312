-- Procrastinate for .NET addition: periodic defer that never defers a tick older than (or
-- equal to) one already deferred for the same (task_name, periodic_id), closing the
-- duplicate window of procrastinate_defer_periodic_job_v2 (COMPAT.md W9). It only ever
-- defers less than v2, through v2 itself, so Python sees ordinary periodic defers.
CREATE FUNCTION procrastinate_dotnet_defer_periodic_job(
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
BEGIN
    -- Serialize the deferrers of one schedule, so the check below sees every committed tick.
    PERFORM pg_advisory_xact_lock(hashtextextended(_task_name || chr(31) || _periodic_id, 7150));
    IF EXISTS (
        SELECT 1 FROM procrastinate_periodic_defers
        WHERE task_name = _task_name AND periodic_id = _periodic_id AND defer_timestamp >= _defer_timestamp
    ) THEN
        RETURN NULL;
    END IF;
    RETURN procrastinate_defer_periodic_job_v2(
        _queue_name, _lock, _queueing_lock, _task_name, _priority, _periodic_id, _defer_timestamp, _args);
END;
$$;
