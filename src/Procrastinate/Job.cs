using System.Text.Json;

namespace Procrastinate;

/// <summary>A row of <c>procrastinate_jobs</c>: one deferred call of a task.</summary>
public sealed record Job
{
    /// <summary>The job id (also the FIFO tie-breaker).</summary>
    public required long Id { get; init; }

    /// <summary>The queue the job waits in.</summary>
    public required string Queue { get; init; }

    /// <summary>The stored task name (the namespaced name or an alias).</summary>
    public required string TaskName { get; init; }

    /// <summary>Higher runs first; may be negative.</summary>
    public int Priority { get; init; }

    /// <summary>Jobs sharing a lock run one at a time.</summary>
    public string? Lock { get; init; }

    /// <summary>At most one waiting job per queueing lock.</summary>
    public string? QueueingLock { get; init; }

    /// <summary>The task's arguments: a JSON object, as stored.</summary>
    public required string ArgsJson { get; init; }

    /// <summary>The status when the row was read.</summary>
    public JobStatus Status { get; init; }

    /// <summary>When the job may start at the earliest; <c>null</c> means as soon as possible.</summary>
    public DateTimeOffset? ScheduledAt { get; init; }

    /// <summary>Number of earlier completed runs (0 on the first run).</summary>
    public int Attempts { get; init; }

    /// <summary>Whether an abort was requested for this running job.</summary>
    public bool AbortRequested { get; init; }

    /// <summary>The worker that claimed the job, if any.</summary>
    public long? WorkerId { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the span that deferred the job, when it was traced.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The W3C <c>tracestate</c> that went with <see cref="TraceParent"/>.</summary>
    public string? TraceState { get; init; }

    /// <summary>The arguments parsed as a JSON element.</summary>
    public JsonElement Args
    {
        get
        {
            using var doc = JsonDocument.Parse(ArgsJson);
            return doc.RootElement.Clone();
        }
    }

    /// <summary>Procrastinate's short description: <c>#id task on queue - [status]</c>.</summary>
    public override string ToString() => $"#{Id} {TaskName} on {Queue} - [{Status.ToDbString()}]";
}
