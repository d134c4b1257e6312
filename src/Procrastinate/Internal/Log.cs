using Microsoft.Extensions.Logging;

namespace Procrastinate.Internal;

/// <summary>
/// Every log record of the library. Event ids are stable and public (documented in the README);
/// each record carries an <c>Action</c> with Procrastinate's action name, and the job's fields.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "[{Action}] Job {JobId} of task {TaskName} on queue {Queue}: {Result}")]
    public static partial void JobDeferred(ILogger logger, string action, long jobId, string taskName, string queue, string result);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "[{Action}] Deferred {Count} jobs in one batch")]
    public static partial void JobsDeferred(ILogger logger, string action, int count);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "[{Action}] Starting worker {WorkerName} (id {WorkerId}) on {Queues} with concurrency {Concurrency}")]
    public static partial void WorkerStarted(ILogger logger, string action, string workerName, long workerId, string queues, int concurrency);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "[{Action}] Stopped worker {WorkerName} (id {WorkerId})")]
    public static partial void WorkerStopped(ILogger logger, string action, string workerName, long workerId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "[{Action}] Stop requested for worker {WorkerName}; waiting for {Running} running jobs")]
    public static partial void WorkerStopping(ILogger logger, string action, string workerName, int running);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "[{Action}] Graceful timeout reached: aborting {Running} running jobs")]
    public static partial void ShutdownAbort(ILogger logger, string action, int running);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "[{Action}] Pruned {Count} stalled workers")]
    public static partial void PrunedWorkers(ILogger logger, string action, int count);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "[{Action}] Worker row {WorkerId} was pruned while the worker was alive; registered again as {NewWorkerId}")]
    public static partial void WorkerReregistered(ILogger logger, string action, long workerId, long newWorkerId);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Warning, Message = "[{Action}] {Loop} failed; retrying in {Delay}")]
    public static partial void SideLoopError(ILogger logger, string action, string loop, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 2014, Level = LogLevel.Warning, Message = "[{Action}] A claim that failed had taken {Count} jobs (its connection was lost after the commit); running them: {JobIds}")]
    public static partial void OrphanedJobsAdopted(ILogger logger, string action, int count, string jobIds);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning, Message = "[{Action}] Listener connection lost; polling until it is back")]
    public static partial void ListenerLost(ILogger logger, string action);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Debug, Message = "[{Action}] Listening on {Channels}")]
    public static partial void Listening(ILogger logger, string action, string channels);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Warning, Message = "[{Action}] Ignored a notification on {Channel} that is not a JSON object with a type")]
    public static partial void BadNotification(ILogger logger, string action, string channel);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Debug, Message = "[{Action}] Vacuumed the job table in {DurationMs:F0} ms, after {Claimed} claimed jobs")]
    public static partial void JobsVacuumed(ILogger logger, string action, double durationMs, long claimed);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Debug, Message = "[{Action}] Vacuum of the job table skipped: another vacuum holds it")]
    public static partial void JobsVacuumSkipped(ILogger logger, string action);

    [LoggerMessage(EventId = 2013, Level = LogLevel.Warning, Message = "[{Action}] PostgreSQL refused to vacuum the job table ({Reason}); this worker stops trying. Vacuuming keeps claims fast under a sustained load: let the table's owner run the worker, or set VacuumAfterClaimedJobs to 0 to leave it to autovacuum")]
    public static partial void JobsVacuumRefused(ILogger logger, string action, string reason);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "[{Action}] Starting job {JobId} {TaskName} on {Queue} (attempt {Attempt}){Arguments}")]
    public static partial void JobStarted(ILogger logger, string action, long jobId, string taskName, string queue, int attempt, string arguments);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "[{Action}] Job {JobId} {TaskName} succeeded in {DurationMs:F1} ms")]
    public static partial void JobSucceeded(ILogger logger, string action, long jobId, string taskName, double durationMs);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "[{Action}] Job {JobId} {TaskName} failed after {DurationMs:F1} ms")]
    public static partial void JobFailed(ILogger logger, string action, long jobId, string taskName, double durationMs, Exception exception);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "[{Action}] Job {JobId} {TaskName} failed after {DurationMs:F1} ms; retry scheduled at {RetryAt:O}")]
    public static partial void JobRetry(ILogger logger, string action, long jobId, string taskName, double durationMs, DateTimeOffset retryAt, Exception exception);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "[{Action}] Job {JobId} {TaskName} was aborted ({Reason})")]
    public static partial void JobAborted(ILogger logger, string action, long jobId, string taskName, AbortReason reason);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Error, Message = "[{Action}] Job {JobId}: task {TaskName} is not registered in this worker; the job fails")]
    public static partial void TaskNotFound(ILogger logger, string action, long jobId, string taskName);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "[{Action}] Abort requested for job {JobId}")]
    public static partial void AbortRequested(ILogger logger, string action, long jobId);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Warning, Message = "[{Action}] Job {JobId}: its row changed since this worker claimed it (rescued or retried elsewhere); this run's outcome is not written")]
    public static partial void StaleOutcome(ILogger logger, string action, long jobId);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Information, Message = "[{Action}] Job {JobId}: its row was no longer this run's when its outcome was written again after a failed attempt; most likely that attempt had written it before its connection was lost")]
    public static partial void OutcomeWrittenBefore(ILogger logger, string action, long jobId);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Error, Message = "[{Action}] Could not write the outcome of {Count} jobs; retrying in {Delay}")]
    public static partial void CompletionWriteFailed(ILogger logger, string action, int count, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Error, Message = "[{Action}] Gave up writing the outcome of {Count} jobs at shutdown; they stay 'doing' until rescued as stalled")]
    public static partial void CompletionAbandoned(ILogger logger, string action, int count);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Error, Message = "[{Action}] Retry of job {JobId} hit a queueing lock; the job ends as failed")]
    public static partial void RetryQueueingLockConflict(ILogger logger, string action, long jobId, Exception exception);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "[{Action}] Job {JobId} {TaskName} was stalled (worker {WorkerId} stopped heartbeating): {Result}")]
    public static partial void StalledJobRescued(ILogger logger, string action, long jobId, string taskName, long? workerId, string result);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "[{Action}] Deferred periodic job {JobId} for {Schedule} at tick {Tick:O}")]
    public static partial void PeriodicDeferred(ILogger logger, string action, long jobId, string schedule, DateTimeOffset tick);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Debug, Message = "[{Action}] Tick {Tick:O} of {Schedule} was already deferred (by another worker)")]
    public static partial void PeriodicAlreadyDeferred(ILogger logger, string action, string schedule, DateTimeOffset tick);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Debug, Message = "[{Action}] Tick {Tick:O} of {Schedule} skipped: its queueing lock is taken")]
    public static partial void PeriodicQueueingLockTaken(ILogger logger, string action, string schedule, DateTimeOffset tick);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "[{Action}] Skipped {Count} tick(s) of {Schedule} older than the maximum delay {MaxDelay}")]
    public static partial void PeriodicSkipped(ILogger logger, string action, int count, string schedule, TimeSpan maxDelay);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "[{Action}] {Message}")]
    public static partial void Schema(ILogger logger, string action, string message);
}
