using Npgsql;
using Procrastinate.Internal;

namespace Procrastinate;

/// <summary>
/// Where jobs are stored. <see cref="NpgsqlConnector"/> talks to PostgreSQL; the
/// <c>Procrastinate.Testing</c> package offers an in-memory one for unit tests.
/// </summary>
/// <remarks>
/// The storage operations are internal: every connector ships with this library, and each
/// passes the same behaviour test suite.
/// </remarks>
public abstract class Connector : IAsyncDisposable, IDisposable
{
    private protected Connector() { }

    /// <summary>Whether this connector can run statements inside a caller's <see cref="NpgsqlConnection"/>.</summary>
    internal virtual bool SupportsExternalConnections => false;

    internal abstract ValueTask OpenAsync(bool async, CancellationToken cancellationToken);

    /// <summary>Releases pooled connections; the connector can be used (and opened) again afterwards.</summary>
    internal virtual ValueTask CloseAsync(bool async) => ValueTask.CompletedTask;

    internal abstract ValueTask<long[]> DeferJobsAsync(IReadOnlyList<JobToDefer> jobs, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken);

    /// <summary>Defers one job; on a queueing-lock conflict returns the waiting job's id (Inserted = false), or null id if it vanished.</summary>
    internal abstract ValueTask<(long? Id, bool Inserted)> DeferJobOrGetExistingAsync(JobToDefer job, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<long?> FindWaitingJobAsync(string queueingLock, bool async, CancellationToken cancellationToken);

    /// <summary>Defers one periodic tick; null when this tick (or a newer one) was already deferred.</summary>
    /// <exception cref="AlreadyEnqueuedException">The queueing lock is taken.</exception>
    internal abstract ValueTask<long?> DeferPeriodicJobAsync(JobToDefer job, string periodicId, long timestamp, CancellationToken cancellationToken);

    /// <summary>The newest tick (Unix seconds) deferred for a schedule, by any worker in any language; null when none.</summary>
    internal abstract ValueTask<long?> GetLastPeriodicTickAsync(string taskName, string periodicId, CancellationToken cancellationToken);

    internal abstract ValueTask<long> RegisterWorkerAsync(WorkerRegistration registration, CancellationToken cancellationToken);

    /// <summary>Returns false when the worker row no longer exists (it was pruned).</summary>
    internal abstract ValueTask<bool> UpdateHeartbeatAsync(long workerId, CancellationToken cancellationToken);

    internal abstract ValueTask UnregisterWorkerAsync(long workerId, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<long>> PruneStalledWorkersAsync(TimeSpan olderThan, CancellationToken cancellationToken);

    /// <summary>The most jobs one claim returns (the SQL of fetch_jobs has it as a constant).</summary>
    internal const int MaxClaim = 1000;

    /// <summary>Claims up to <paramref name="maxJobs"/> (at most <see cref="MaxClaim"/>) jobs, in fetch order.</summary>
    internal abstract ValueTask<IReadOnlyList<Job>> FetchJobsAsync(string[]? queues, long workerId, int maxJobs, CancellationToken cancellationToken, bool durable = true);

    /// <summary>Writes final statuses (guarded by status, attempts and worker); returns the ids written.</summary>
    internal abstract ValueTask<IReadOnlyCollection<long>> FinishJobsAsync(IReadOnlyList<JobOutcome> outcomes, long workerId, CancellationToken cancellationToken);

    /// <summary>Puts claimed jobs that never started back to todo (attempts unchanged), guarded like a finish.</summary>
    internal abstract ValueTask ReleaseJobsAsync(IReadOnlyList<Job> jobs, long workerId, CancellationToken cancellationToken);

    /// <summary>Puts a run back to todo (or failed, per COMPAT.md 2.6.6); false when the run was no longer ours.</summary>
    /// <exception cref="AlreadyEnqueuedException">Another waiting job holds the job's queueing lock.</exception>
    internal abstract ValueTask<bool> RetryJobAsync(JobOutcome outcome, long workerId, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<long>> ListAbortRequestedAsync(long[] jobIds, CancellationToken cancellationToken);

    internal abstract ValueTask<bool> CancelJobAsync(long jobId, bool abort, bool delete, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<JobStatus?> GetJobStatusAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<Job?> GetJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<int> DeleteOldJobsAsync(int maxHours, string? queue, IReadOnlyList<JobStatus> statuses, DbTarget target, bool async, CancellationToken cancellationToken);

    /// <summary>Manual retry of a failed (or running) job through procrastinate_retry_job_v2, clearing a leftover abort flag first (W6).</summary>
    /// <exception cref="InvalidOperationException">The job does not exist or cannot be retried.</exception>
    /// <exception cref="AlreadyEnqueuedException">Another waiting job holds the job's queueing lock.</exception>
    internal abstract ValueTask RetryJobManuallyAsync(long jobId, DateTimeOffset retryAt, int? priority, string? queue, string? @lock, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<JobEvent>> ListEventsAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<Job>> ListStalledJobsAsync(TimeSpan threshold, string? queue, string? taskName, bool async, CancellationToken cancellationToken);

    /// <summary>
    /// Rescues stalled jobs (heartbeat older than <paramref name="threshold"/> and started longer ago than that),
    /// one runner at a time across workers. <paramref name="decide"/> says, per job, whether to retry it (true) or fail it.
    /// Returns what was done.
    /// </summary>
    internal abstract ValueTask<IReadOnlyList<(Job Job, bool Retried)>> RescueStalledJobsAsync(TimeSpan threshold, Func<Job, bool> decide, CancellationToken cancellationToken);

    /// <summary>Gives the still-running jobs whose worker row was pruned back to <paramref name="workerId"/> (W5).</summary>
    internal abstract ValueTask ReclaimRunningJobsAsync(long[] jobIds, long workerId, CancellationToken cancellationToken);

    /// <summary>
    /// The jobs 'doing' under <paramref name="workerId"/> other than <paramref name="held"/>, as a
    /// claim returns them: what a claim of this worker claimed when its connection was lost after
    /// the commit, before the answer came back.
    /// </summary>
    internal abstract ValueTask<IReadOnlyList<Job>> FetchOrphanedJobsAsync(long workerId, long[] held, CancellationToken cancellationToken);

    /// <summary>How long until the next future job of these queues is due (database clock), or null when none.</summary>
    internal abstract ValueTask<TimeSpan?> NextScheduledDelayAsync(string[]? queues, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<Job>> ListJobsAsync(JobFilter filter, JobPage page, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<JobCounts>> CountJobsAsync(JobGrouping grouping, JobFilter filter, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<bool> DeleteJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken);

    internal abstract ValueTask<IReadOnlyList<WorkerRow>> ListWorkersAsync(bool async, CancellationToken cancellationToken);

    /// <summary>Waiting (todo) jobs per queue, for the given queues (all when null).</summary>
    internal abstract ValueTask<IReadOnlyDictionary<string, long>> CountWaitingJobsAsync(string[]? queues, CancellationToken cancellationToken);

    /// <summary>
    /// Vacuums the job table, so that claims stop walking past the index entries of jobs claimed
    /// since the last vacuum. Connectors without such a table answer <see cref="VacuumOutcome.Unsupported"/>.
    /// </summary>
    internal virtual ValueTask<VacuumOutcome> VacuumJobsAsync(CancellationToken cancellationToken) =>
        ValueTask.FromResult(VacuumOutcome.Unsupported);

    /// <summary>Throws when the database cannot be reached.</summary>
    internal abstract ValueTask PingAsync(bool async, CancellationToken cancellationToken);

    /// <summary>
    /// Listens on the channels until cancelled, reconnecting after failures. Calls
    /// <paramref name="onNotification"/> for each notification and <paramref name="onListening"/>
    /// with true once LISTEN is in place and false when the connection is lost.
    /// </summary>
    internal abstract Task ListenAsync(IReadOnlyList<string> channels, Action<string, string> onNotification,
        Action<bool> onListening, CancellationToken cancellationToken);

    /// <summary>
    /// Whether <see cref="ListenAsync"/> calls its notification callback on a thread of its own
    /// (the listener's), which the callback may keep for a moment: a worker then starts its claim
    /// on it instead of waking another thread. False where a notification may arrive on the
    /// thread of whoever deferred the job.
    /// </summary>
    internal virtual bool NotifiesOnListenerThread => false;

    /// <summary>Releases what the connector owns.</summary>
    public virtual ValueTask DisposeAsync()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Releases what the connector owns.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the connector owns.</summary>
    protected virtual void Dispose(bool disposing) { }
}
