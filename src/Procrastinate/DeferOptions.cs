namespace Procrastinate;

/// <summary>
/// Per-defer options. Each property left <c>null</c> falls back to the task's default
/// (and then to Procrastinate's: queue <c>default</c>, priority 0, no lock).
/// </summary>
public sealed record DeferOptions
{
    /// <summary>The earliest instant the job may start. Cannot be combined with <see cref="ScheduleIn"/>.</summary>
    public DateTimeOffset? ScheduleAt { get; init; }

    /// <summary>A delay after now (the client's clock) before the job may start.</summary>
    public TimeSpan? ScheduleIn { get; init; }

    /// <summary>Overrides the task's default priority.</summary>
    public int? Priority { get; init; }

    /// <summary>Overrides the task's queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Overrides the task's lock.</summary>
    public string? Lock { get; init; }

    /// <summary>Overrides the task's queueing lock.</summary>
    public string? QueueingLock { get; init; }

    /// <summary>
    /// When a job with the same queueing lock is already waiting, return that job's id
    /// instead of throwing <see cref="AlreadyEnqueuedException"/>.
    /// </summary>
    public bool IgnoreAlreadyEnqueued { get; init; }
}
