namespace Procrastinate;

/// <summary>The rest of a job's pipeline: the next middleware, and finally the task's body.</summary>
public delegate Task JobDelegate(JobContext context);

/// <summary>
/// Wraps the run of each job. Worker middleware (<see cref="WorkerOptions.Middleware"/>) wraps
/// task middleware (<see cref="JobTask.Use"/>), which wraps the body; within each list the first
/// registered is the outermost.
/// </summary>
/// <remarks>
/// A middleware sees the outcome of what it wraps: <c>await next(context)</c> returns when the
/// body succeeded and throws what the body threw (a <see cref="JobAbortedException"/> or an
/// <see cref="OperationCanceledException"/> for aborts). What a middleware throws counts as the
/// job's outcome: the job fails (and is retried per its strategy); it is never lost.
/// </remarks>
public interface IJobMiddleware
{
    /// <summary>Runs around the rest of the pipeline.</summary>
    Task InvokeAsync(JobContext context, JobDelegate next);
}

/// <summary>What the worker does with a running job whose worker stopped heartbeating.</summary>
public enum StalledJobPolicy
{
    /// <summary>Put it back to <c>todo</c> at once, whatever its retry strategy (at-least-once; the default).</summary>
    Retry,
    /// <summary>Ask the task's retry strategy (with a <see cref="StalledJobException"/>); fail it when the strategy says no.</summary>
    RetryPerStrategy,
    /// <summary>End it as <c>failed</c>.</summary>
    Fail,
    /// <summary>Do nothing (Procrastinate for Python's behaviour): list them with <see cref="JobManager.ListStalledJobs"/>.</summary>
    Ignore,
}

/// <summary>The error a retry strategy sees for a job rescued after its worker died.</summary>
public sealed class StalledJobException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public StalledJobException(Job job)
        : base($"Job {job?.Id} was running on a worker that stopped heartbeating.")
    {
        Job = job!;
    }

    /// <summary>The stalled job.</summary>
    public Job Job { get; }
}
