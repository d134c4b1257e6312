namespace Procrastinate;

/// <summary>The status of a job, as stored in <c>procrastinate_jobs.status</c>.</summary>
public enum JobStatus
{
    /// <summary>Waiting to run; it may be scheduled in the future.</summary>
    Todo,
    /// <summary>Claimed by a worker and running.</summary>
    Doing,
    /// <summary>Final: ended without error.</summary>
    Succeeded,
    /// <summary>Final: ended with an error. It can be retried by hand.</summary>
    Failed,
    /// <summary>Final: cancelled before it started.</summary>
    Cancelled,
    /// <summary>Legacy status from Procrastinate 2.x; never written, but accepted when read.</summary>
    Aborting,
    /// <summary>Final: stopped while running.</summary>
    Aborted,
}

/// <summary>Conversions between <see cref="JobStatus"/> and the database labels.</summary>
public static class JobStatusExtensions
{
    /// <summary>The database label of a status (<c>todo</c>, <c>doing</c>, ...).</summary>
    public static string ToDbString(this JobStatus status) => status switch
    {
        JobStatus.Todo => "todo",
        JobStatus.Doing => "doing",
        JobStatus.Succeeded => "succeeded",
        JobStatus.Failed => "failed",
        JobStatus.Cancelled => "cancelled",
        JobStatus.Aborting => "aborting",
        JobStatus.Aborted => "aborted",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown job status."),
    };

    /// <summary>Parses a database label into a <see cref="JobStatus"/>.</summary>
    /// <exception cref="ArgumentException">The label is not one of the seven known statuses.</exception>
    public static JobStatus ParseDbString(string value) => value switch
    {
        "todo" => JobStatus.Todo,
        "doing" => JobStatus.Doing,
        "succeeded" => JobStatus.Succeeded,
        "failed" => JobStatus.Failed,
        "cancelled" => JobStatus.Cancelled,
        "aborting" => JobStatus.Aborting,
        "aborted" => JobStatus.Aborted,
        _ => throw new ArgumentException($"Unknown job status '{value}'.", nameof(value)),
    };

    /// <summary>True for the statuses a job never leaves on its own.</summary>
    public static bool IsFinal(this JobStatus status) =>
        status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled or JobStatus.Aborted;
}
