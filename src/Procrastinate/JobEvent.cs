namespace Procrastinate;

/// <summary>The kinds of rows in <c>procrastinate_events</c> (COMPAT.md 2.2).</summary>
public enum JobEventType
{
    /// <summary>Inserted as todo.</summary>
    Deferred,
    /// <summary>todo → doing.</summary>
    Started,
    /// <summary>doing → todo (a retry).</summary>
    DeferredForRetry,
    /// <summary>doing → failed.</summary>
    Failed,
    /// <summary>doing → succeeded.</summary>
    Succeeded,
    /// <summary>todo → cancelled (or a legacy finish of a todo job).</summary>
    Cancelled,
    /// <summary>An abort was requested.</summary>
    AbortRequested,
    /// <summary>doing → aborted.</summary>
    Aborted,
    /// <summary>A todo row with a schedule was inserted or updated; the event's time is the schedule.</summary>
    Scheduled,
    /// <summary>failed → todo (a manual retry).</summary>
    Retried,
}

/// <summary>One entry of a job's history.</summary>
/// <param name="Id">The event id (events of one job sort by it).</param>
/// <param name="JobId">The job.</param>
/// <param name="Type">What happened.</param>
/// <param name="At">When (for <see cref="JobEventType.Scheduled"/>: the scheduled time).</param>
public sealed record JobEvent(long Id, long JobId, JobEventType? Type, DateTimeOffset? At);

/// <summary>Conversions of <see cref="JobEventType"/> to and from the database labels.</summary>
public static class JobEventTypeExtensions
{
    private static readonly string[] Labels =
        ["deferred", "started", "deferred_for_retry", "failed", "succeeded", "cancelled", "abort_requested", "aborted", "scheduled", "retried"];

    /// <summary>The database label.</summary>
    public static string ToDbString(this JobEventType type) => Labels[(int)type];

    /// <summary>Parses a database label.</summary>
    /// <exception cref="ArgumentException">Unknown label.</exception>
    public static JobEventType ParseDbString(string value)
    {
        var index = Array.IndexOf(Labels, value);
        return index >= 0 ? (JobEventType)index : throw new ArgumentException($"Unknown job event type '{value}'.", nameof(value));
    }
}
