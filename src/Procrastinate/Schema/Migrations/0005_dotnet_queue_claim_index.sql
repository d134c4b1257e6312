-- Procrastinate for .NET addition: the waiting jobs of each queue in the claim's order, so that
-- a worker given its queues reads those queues' jobs alone (ClaimStatements.cs): one walk of
-- this index for a worker on one queue, a merge of one walk per queue for a worker on several.
-- Without it such a worker walks Procrastinate's priority index of all queues and passes over
-- every job of the other queues that comes first (200,000 of them: about 50 ms per claim).
-- Procrastinate's own index on queue_name alone gives no order within a queue.
-- The lean layout has its own (procrastinate_jobs_queue_claim_idx_lean, which leaves out the
-- jobs scheduled for later), so this is created only on the compatible layout, and converting
-- drops or re-creates it (Layouts/).
-- Its predicate names status: like every .NET addition, a DBA drops it before a Python migration
-- that changes that column and re-creates it after (README, "Schema and compatibility").
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM procrastinate_dotnet_schema_migrations WHERE name = 'dotnet_layout_lean') THEN
        CREATE INDEX IF NOT EXISTS procrastinate_dotnet_jobs_queue_claim_idx
            ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo'::procrastinate_job_status;
    END IF;
END;
$$;
