-- Procrastinate for .NET addition: what a worker is, beyond its id and heartbeat.
-- A side table (COMPAT.md 1.2 rule 4), dropped with its worker row.
CREATE TABLE procrastinate_dotnet_workers (
    worker_id bigint PRIMARY KEY REFERENCES procrastinate_workers(id) ON DELETE CASCADE,
    name text NOT NULL,
    host text NOT NULL,
    process_id integer NOT NULL,
    queues character varying[] NULL,
    concurrency integer NOT NULL,
    started_at timestamp with time zone NOT NULL DEFAULT now()
);
