using Npgsql;

namespace Procrastinate.Internal;

/// <summary>One job to insert, with every default already resolved.</summary>
internal readonly record struct JobToDefer(
    string Queue,
    string TaskName,
    int Priority,
    string? Lock,
    string? QueueingLock,
    string ArgsJson,
    DateTimeOffset? ScheduledAt);

/// <summary>A caller's connection and transaction, or neither (the connector's own pool).</summary>
internal readonly record struct DbTarget(NpgsqlConnection? Connection, NpgsqlTransaction? Transaction)
{
    public static DbTarget Pool => default;

    public bool IsExternal => Connection is not null;

    public static DbTarget From(NpgsqlTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        return new(transaction.Connection ?? throw new ArgumentException("The transaction is already completed.", nameof(transaction)), transaction);
    }

    public static DbTarget From(NpgsqlConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return new(connection, null);
    }
}

/// <summary>How a run ended, and what to write for it.</summary>
internal sealed record JobOutcome(
    Job Job,
    JobStatus Status,
    bool DeleteJob,
    ResolvedRetry? Retry,
    Exception? Exception,
    TimeSpan Duration);

/// <summary>A retry decision turned into the arguments of procrastinate_retry_job_v2.</summary>
internal sealed record ResolvedRetry(DateTimeOffset RetryAt, int? Priority, string? Queue, string? Lock);

/// <summary>What a worker says about itself when it registers.</summary>
internal sealed record WorkerRegistration(string Name, string Host, int ProcessId, string[]? Queues, int Concurrency);

/// <summary>The W3C trace context stored with deferred jobs (COMPAT.md 1.2: in a .NET side table).</summary>
internal readonly record struct TraceContext(string TraceParent, string? TraceState)
{
    public static TraceContext? From(System.Diagnostics.Activity? activity) =>
        activity is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C, Id: { } id } ? new TraceContext(id, activity.TraceStateString) : null;
}

/// <summary>What a vacuum of the job table came to (<see cref="Connector.VacuumJobsAsync"/>).</summary>
/// <param name="Kind">Done, skipped (another vacuum held the table), refused, or not supported.</param>
/// <param name="Message">Why PostgreSQL refused it (its warning), when it did.</param>
internal readonly record struct VacuumOutcome(VacuumOutcomeKind Kind, string? Message = null)
{
    public static VacuumOutcome Unsupported => new(VacuumOutcomeKind.Unsupported);
}

internal enum VacuumOutcomeKind
{
    Done,
    /// <summary>Another vacuum (autovacuum, another worker) held the table: nothing to do.</summary>
    Skipped,
    /// <summary>PostgreSQL would not vacuum the table for this role (not its owner).</summary>
    Refused,
    Unsupported,
}
