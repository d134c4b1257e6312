namespace Procrastinate;

/// <summary>Arguments of <c>remove_old_jobs</c>, with Procrastinate's keys (COMPAT.md 4.9).</summary>
/// <param name="MaxHours">Delete jobs whose latest event is older than this many hours.</param>
/// <param name="Queue">Only this queue; <c>null</c> for all.</param>
/// <param name="RemoveFailed">Also delete failed jobs.</param>
/// <param name="RemoveCancelled">Also delete cancelled jobs.</param>
/// <param name="RemoveAborted">Also delete aborted jobs.</param>
public sealed record RemoveOldJobsArgs(int MaxHours, string? Queue = null, bool RemoveFailed = false, bool RemoveCancelled = false, bool RemoveAborted = false);

/// <summary>The tasks every app registers, under Procrastinate's names so Python and .NET workers can run each other's.</summary>
public sealed class BuiltinTasks
{
    /// <summary>The built-in queue.</summary>
    public const string Queue = "builtin";

    /// <summary>The name of <see cref="RemoveOldJobs"/>.</summary>
    public const string RemoveOldJobsName = "builtin:procrastinate.builtin_tasks.remove_old_jobs";

    /// <summary>The pre-namespace alias of <see cref="RemoveOldJobs"/>.</summary>
    public const string RemoveOldJobsAlias = "procrastinate.builtin_tasks.remove_old_jobs";

    internal BuiltinTasks(App app)
    {
        RemoveOldJobs = app.Task<RemoveOldJobsArgs>(RemoveOldJobsName,
            async (args, context, cancellationToken) =>
            {
                var deleted = await context.App.Jobs.DeleteOldJobsAsync(args.MaxHours, args.Queue,
                    args.RemoveFailed, args.RemoveCancelled, args.RemoveAborted, cancellationToken).ConfigureAwait(false);
                _ = deleted;
            },
            queue: Queue, aliases: [RemoveOldJobsAlias]);
    }

    /// <summary>
    /// Deletes finished jobs older than <see cref="RemoveOldJobsArgs.MaxHours"/> (always the succeeded
    /// ones, and the failed, cancelled or aborted ones when asked). Defer it yourself, for example
    /// from a periodic task.
    /// </summary>
    public JobTask<RemoveOldJobsArgs> RemoveOldJobs { get; }
}
