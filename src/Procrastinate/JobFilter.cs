namespace Procrastinate;

/// <summary>Filters for job listings; each property left null does not filter (COMPAT.md 3.11).</summary>
public sealed record JobFilter
{
    /// <summary>Only this job.</summary>
    public long? Id { get; init; }

    /// <summary>Only this queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Only this task name.</summary>
    public string? Task { get; init; }

    /// <summary>Only this status.</summary>
    public JobStatus? Status { get; init; }

    /// <summary>Only this lock.</summary>
    public string? Lock { get; init; }

    /// <summary>Only this queueing lock.</summary>
    public string? QueueingLock { get; init; }

    /// <summary>Only jobs last claimed by this worker.</summary>
    public long? WorkerId { get; init; }
}

/// <summary>One page of a job listing.</summary>
/// <param name="Limit">At most this many jobs (1 to 10,000).</param>
/// <param name="After">The cursor: ids after it (oldest first) or before it (newest first); null for the first page.</param>
/// <param name="NewestFirst">Order by id descending instead of ascending.</param>
public sealed record JobPage(int Limit = 100, long? After = null, bool NewestFirst = false);

/// <summary>Job counts of one queue, task or lock, per status (Procrastinate's <c>list_queues</c>, <c>list_tasks</c>, <c>list_locks</c>).</summary>
public sealed record JobCounts(string Name, long JobsCount, long Todo, long Doing, long Succeeded, long Failed, long Cancelled, long Aborted);

/// <summary>A job with its history.</summary>
public sealed record JobDetails(Job Job, IReadOnlyList<JobEvent> Events);

/// <summary>A row of <c>procrastinate_workers</c>, with what a .NET worker says about itself (null for others).</summary>
public sealed record WorkerRow(long Id, DateTimeOffset LastHeartbeat, string? Name, string? Host, int? ProcessId,
    IReadOnlyList<string>? Queues, int? Concurrency, DateTimeOffset? StartedAt, long RunningJobs);

/// <summary>What a listing groups by.</summary>
internal enum JobGrouping
{
    Queue,
    Task,
    Lock,
}
