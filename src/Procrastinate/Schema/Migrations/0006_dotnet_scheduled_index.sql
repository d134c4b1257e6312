-- Procrastinate for .NET addition: the waiting jobs that have a scheduled time, by that time, so
-- that an idle worker learns when the next one comes due (queries.sql, next_scheduled_at) from
-- the first entry after now. Without it PostgreSQL read every waiting job for that: 35-40 ms
-- with 200,000 jobs scheduled for later, after each claim that found nothing. Jobs without a
-- scheduled time, most of them, have no entry, so a plain defer writes none.
-- The lean layout has its own (procrastinate_jobs_later_idx_lean, of the jobs whose time is
-- ahead), so this is created only on the compatible layout, and converting drops or re-creates
-- it (Layouts/). Its predicate names status: like every .NET addition, a DBA drops it before a
-- Python migration that changes that column and re-creates it after (README, "Schema and
-- compatibility").
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM procrastinate_dotnet_schema_migrations WHERE name = 'dotnet_layout_lean') THEN
        CREATE INDEX IF NOT EXISTS procrastinate_dotnet_jobs_scheduled_idx
            ON procrastinate_jobs (scheduled_at) WHERE status = 'todo'::procrastinate_job_status AND scheduled_at IS NOT NULL;
    END IF;
END;
$$;
