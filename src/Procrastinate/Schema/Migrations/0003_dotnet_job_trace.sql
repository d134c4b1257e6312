-- Procrastinate for .NET addition: the W3C trace context of the span that deferred a job,
-- so the worker's span can link to it (a side table: nothing is added to procrastinate_jobs,
-- and Python tasks never see it in their arguments).
CREATE TABLE procrastinate_dotnet_job_trace (
    job_id bigint PRIMARY KEY REFERENCES procrastinate_jobs(id) ON DELETE CASCADE,
    traceparent text NOT NULL,
    tracestate text NULL
);
