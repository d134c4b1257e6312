namespace Procrastinate.Dashboard;

/// <summary>The actions the dashboard can perform, each allowed by <see cref="DashboardOptions.ActionsPolicy"/>.</summary>
public enum DashboardAction
{
    /// <summary>Runs a failed (or stuck running) job again (<see cref="JobManager.RetryAsync(long, DateTimeOffset?, int?, string?, string?, CancellationToken)"/>).</summary>
    Retry,
    /// <summary>Cancels a waiting job (<see cref="JobManager.CancelAsync(long, bool, bool, CancellationToken)"/>).</summary>
    Cancel,
    /// <summary>Asks a running job to stop (<see cref="JobManager.AbortAsync(long, CancellationToken)"/>).</summary>
    Abort,
    /// <summary>Deletes a job that is not running, with its events (<see cref="JobManager.DeleteAsync(long, CancellationToken)"/>).</summary>
    Delete,
    /// <summary>Puts stalled jobs back to todo (<see cref="JobManager.RescueStalledJobsAsync"/>).</summary>
    Rescue,
}

/// <summary>
/// The resource an action is authorized against: an authorization handler of the actions policy
/// can look at it, to allow retries but not deletions, say, or actions on some queues only.
/// </summary>
/// <param name="Action">What is asked.</param>
/// <param name="Job">The job it applies to, as last read; null for <see cref="DashboardAction.Rescue"/>.</param>
public sealed record DashboardActionResource(DashboardAction Action, Job? Job);
