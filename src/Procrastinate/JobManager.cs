using Npgsql;
using Procrastinate.Internal;

namespace Procrastinate;

/// <summary>Operations on existing jobs. Each has a sync and an async form, and a form inside the caller's transaction.</summary>
public sealed class JobManager
{
    private readonly App _app;

    internal JobManager(App app) => _app = app;

    /// <summary>
    /// Cancels a waiting job (it becomes <c>cancelled</c>, or is deleted with <paramref name="delete"/>).
    /// With <paramref name="abort"/>, also asks a running job to stop. Returns false when nothing matched.
    /// </summary>
    public bool Cancel(long jobId, bool abort = false, bool delete = false) =>
        SyncRunner.Run(_app.Connector.CancelJobAsync(jobId, abort, delete, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Cancel(long, bool, bool)"/>
    public Task<bool> CancelAsync(long jobId, bool abort = false, bool delete = false, CancellationToken cancellationToken = default) =>
        _app.Connector.CancelJobAsync(jobId, abort, delete, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Cancels (or aborts) a job inside the caller's transaction.</summary>
    public Task<bool> CancelAsync(long jobId, NpgsqlTransaction transaction, bool abort = false, bool delete = false, CancellationToken cancellationToken = default)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return _app.Connector.CancelJobAsync(jobId, abort, delete, target, async: true, cancellationToken).AsTask();
    }

    /// <summary>Cancels (or aborts) a job inside the caller's transaction.</summary>
    public bool Cancel(long jobId, NpgsqlTransaction transaction, bool abort = false, bool delete = false)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return SyncRunner.Run(_app.Connector.CancelJobAsync(jobId, abort, delete, target, async: false, CancellationToken.None));
    }

    /// <summary>Asks a running job to stop (a waiting job is cancelled instead). Returns false when nothing matched.</summary>
    public bool Abort(long jobId) => Cancel(jobId, abort: true);

    /// <inheritdoc cref="Abort(long)"/>
    public Task<bool> AbortAsync(long jobId, CancellationToken cancellationToken = default) =>
        CancelAsync(jobId, abort: true, cancellationToken: cancellationToken);

    /// <summary>The status of a job, or <c>null</c> when no such job exists.</summary>
    public JobStatus? GetStatus(long jobId) =>
        SyncRunner.Run(_app.Connector.GetJobStatusAsync(jobId, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="GetStatus(long)"/>
    public Task<JobStatus?> GetStatusAsync(long jobId, CancellationToken cancellationToken = default) =>
        _app.Connector.GetJobStatusAsync(jobId, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>The status of a job as seen inside the caller's transaction.</summary>
    public Task<JobStatus?> GetStatusAsync(long jobId, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return _app.Connector.GetJobStatusAsync(jobId, target, async: true, cancellationToken).AsTask();
    }

    /// <summary>The status of a job as seen inside the caller's transaction.</summary>
    public JobStatus? GetStatus(long jobId, NpgsqlTransaction transaction)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return SyncRunner.Run(_app.Connector.GetJobStatusAsync(jobId, target, async: false, CancellationToken.None));
    }

    /// <summary>A job by id, or <c>null</c>.</summary>
    public Job? Get(long jobId) =>
        SyncRunner.Run(_app.Connector.GetJobAsync(jobId, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Get(long)"/>
    public Task<Job?> GetAsync(long jobId, CancellationToken cancellationToken = default) =>
        _app.Connector.GetJobAsync(jobId, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>
    /// Runs a failed (or stuck running) job again: it goes back to <c>todo</c> with one more attempt,
    /// due at <paramref name="retryAt"/> (now when null). New priority, queue or lock are optional.
    /// </summary>
    /// <exception cref="InvalidOperationException">No such job, or its status cannot be retried.</exception>
    public void Retry(long jobId, DateTimeOffset? retryAt = null, int? priority = null, string? queue = null, string? @lock = null) =>
        SyncRunner.Run(RetryCore(jobId, retryAt, priority, queue, @lock, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Retry(long, DateTimeOffset?, int?, string?, string?)"/>
    public Task RetryAsync(long jobId, DateTimeOffset? retryAt = null, int? priority = null, string? queue = null, string? @lock = null,
        CancellationToken cancellationToken = default) =>
        RetryCore(jobId, retryAt, priority, queue, @lock, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Retries a job inside the caller's transaction.</summary>
    /// <inheritdoc cref="Retry(long, DateTimeOffset?, int?, string?, string?)"/>
    public Task RetryAsync(long jobId, NpgsqlTransaction transaction, DateTimeOffset? retryAt = null, int? priority = null,
        string? queue = null, string? @lock = null, CancellationToken cancellationToken = default)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return RetryCore(jobId, retryAt, priority, queue, @lock, target, async: true, cancellationToken).AsTask();
    }

    /// <summary>Retries a job inside the caller's transaction.</summary>
    /// <inheritdoc cref="Retry(long, DateTimeOffset?, int?, string?, string?)"/>
    public void Retry(long jobId, NpgsqlTransaction transaction, DateTimeOffset? retryAt = null, int? priority = null, string? queue = null, string? @lock = null)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        SyncRunner.Run(RetryCore(jobId, retryAt, priority, queue, @lock, target, async: false, CancellationToken.None));
    }

    private ValueTask RetryCore(long jobId, DateTimeOffset? retryAt, int? priority, string? queue, string? @lock, DbTarget target, bool async, CancellationToken ct)
    {
        if (queue is not null) Names.ValidateQueue(queue);
        Names.ValidateLock(@lock, "lock", nameof(@lock));
        var at = retryAt ?? _app.Options.TimeProvider.GetUtcNow();
        return _app.Connector.RetryJobManuallyAsync(jobId, at, priority, queue, @lock, target, async, ct);
    }

    /// <summary>The history of a job, oldest first (empty when the job does not exist).</summary>
    public IReadOnlyList<JobEvent> ListEvents(long jobId) =>
        SyncRunner.Run(_app.Connector.ListEventsAsync(jobId, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="ListEvents"/>
    public Task<IReadOnlyList<JobEvent>> ListEventsAsync(long jobId, CancellationToken cancellationToken = default) =>
        _app.Connector.ListEventsAsync(jobId, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>
    /// Running jobs whose worker has not heartbeaten for <paramref name="threshold"/> (default 30 s)
    /// or is gone (COMPAT.md 3.9).
    /// </summary>
    public IReadOnlyList<Job> ListStalledJobs(TimeSpan? threshold = null, string? queue = null, string? taskName = null) =>
        SyncRunner.Run(_app.Connector.ListStalledJobsAsync(threshold ?? DefaultStalledThreshold, queue, taskName, async: false, CancellationToken.None));

    /// <inheritdoc cref="ListStalledJobs"/>
    public Task<IReadOnlyList<Job>> ListStalledJobsAsync(TimeSpan? threshold = null, string? queue = null, string? taskName = null,
        CancellationToken cancellationToken = default) =>
        _app.Connector.ListStalledJobsAsync(threshold ?? DefaultStalledThreshold, queue, taskName, async: true, cancellationToken).AsTask();

    /// <summary>The default age after which a worker's heartbeat is stale: 30 s, as in Procrastinate.</summary>
    public static TimeSpan DefaultStalledThreshold { get; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Deletes finished jobs whose latest event is older than <paramref name="maxHours"/> hours: always
    /// succeeded ones, plus failed, cancelled or aborted ones when asked. Returns the number deleted.
    /// </summary>
    public int DeleteOldJobs(int maxHours, string? queue = null, bool includeFailed = false, bool includeCancelled = false, bool includeAborted = false) =>
        SyncRunner.Run(_app.Connector.DeleteOldJobsAsync(maxHours, queue, Statuses(includeFailed, includeCancelled, includeAborted), DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="DeleteOldJobs"/>
    public Task<int> DeleteOldJobsAsync(int maxHours, string? queue = null, bool includeFailed = false, bool includeCancelled = false, bool includeAborted = false,
        CancellationToken cancellationToken = default) =>
        _app.Connector.DeleteOldJobsAsync(maxHours, queue, Statuses(includeFailed, includeCancelled, includeAborted), DbTarget.Pool, async: true, cancellationToken).AsTask();

    private static List<JobStatus> Statuses(bool failed, bool cancelled, bool aborted)
    {
        var statuses = new List<JobStatus> { JobStatus.Succeeded };
        if (failed) statuses.Add(JobStatus.Failed);
        if (cancelled) statuses.Add(JobStatus.Cancelled);
        if (aborted) statuses.Add(JobStatus.Aborted);
        return statuses;
    }

    /// <summary>Jobs matching <paramref name="filter"/>, oldest first (or newest first), one page at a time.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The page limit is not between 1 and 10,000.</exception>
    public IReadOnlyList<Job> List(JobFilter? filter = null, JobPage? page = null) =>
        SyncRunner.Run(_app.Connector.ListJobsAsync(filter ?? new(), CheckPage(page), DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="List(JobFilter?, JobPage?)"/>
    public Task<IReadOnlyList<Job>> ListAsync(JobFilter? filter = null, JobPage? page = null, CancellationToken cancellationToken = default) =>
        _app.Connector.ListJobsAsync(filter ?? new(), CheckPage(page), DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Lists jobs as seen inside the caller's transaction.</summary>
    public Task<IReadOnlyList<Job>> ListAsync(NpgsqlTransaction transaction, JobFilter? filter = null, JobPage? page = null, CancellationToken cancellationToken = default)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return _app.Connector.ListJobsAsync(filter ?? new(), CheckPage(page), target, async: true, cancellationToken).AsTask();
    }

    private static JobPage CheckPage(JobPage? page)
    {
        page ??= new JobPage();
        ArgumentOutOfRangeException.ThrowIfLessThan(page.Limit, 1, nameof(page));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(page.Limit, 10_000, nameof(page));
        return page;
    }

    /// <summary>Per queue: the number of jobs and their counts per status (filters: queue, task, status, lock).</summary>
    public IReadOnlyList<JobCounts> ListQueues(JobFilter? filter = null) => Count(JobGrouping.Queue, filter);

    /// <inheritdoc cref="ListQueues"/>
    public Task<IReadOnlyList<JobCounts>> ListQueuesAsync(JobFilter? filter = null, CancellationToken cancellationToken = default) =>
        CountAsync(JobGrouping.Queue, filter, cancellationToken);

    /// <summary>Per task name: the number of jobs and their counts per status.</summary>
    public IReadOnlyList<JobCounts> ListTasks(JobFilter? filter = null) => Count(JobGrouping.Task, filter);

    /// <inheritdoc cref="ListTasks"/>
    public Task<IReadOnlyList<JobCounts>> ListTasksAsync(JobFilter? filter = null, CancellationToken cancellationToken = default) =>
        CountAsync(JobGrouping.Task, filter, cancellationToken);

    /// <summary>Per lock (jobs without a lock left out): the number of jobs and their counts per status.</summary>
    public IReadOnlyList<JobCounts> ListLocks(JobFilter? filter = null) => Count(JobGrouping.Lock, filter);

    /// <inheritdoc cref="ListLocks"/>
    public Task<IReadOnlyList<JobCounts>> ListLocksAsync(JobFilter? filter = null, CancellationToken cancellationToken = default) =>
        CountAsync(JobGrouping.Lock, filter, cancellationToken);

    private IReadOnlyList<JobCounts> Count(JobGrouping grouping, JobFilter? filter) =>
        SyncRunner.Run(_app.Connector.CountJobsAsync(grouping, filter ?? new(), async: false, CancellationToken.None));

    private Task<IReadOnlyList<JobCounts>> CountAsync(JobGrouping grouping, JobFilter? filter, CancellationToken ct) =>
        _app.Connector.CountJobsAsync(grouping, filter ?? new(), async: true, ct).AsTask();

    /// <summary>A job and its event history, or null when no such job exists.</summary>
    public JobDetails? GetDetails(long jobId) =>
        Get(jobId) is { } job ? new JobDetails(job, ListEvents(jobId)) : null;

    /// <inheritdoc cref="GetDetails"/>
    public async Task<JobDetails?> GetDetailsAsync(long jobId, CancellationToken cancellationToken = default) =>
        await GetAsync(jobId, cancellationToken).ConfigureAwait(false) is { } job
            ? new JobDetails(job, await ListEventsAsync(jobId, cancellationToken).ConfigureAwait(false))
            : null;

    /// <summary>Deletes a job that is not running, with its events. Returns false when there is no such job or it is running.</summary>
    public bool Delete(long jobId) =>
        SyncRunner.Run(_app.Connector.DeleteJobAsync(jobId, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Delete(long)"/>
    public Task<bool> DeleteAsync(long jobId, CancellationToken cancellationToken = default) =>
        _app.Connector.DeleteJobAsync(jobId, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Deletes a job inside the caller's transaction.</summary>
    public Task<bool> DeleteAsync(long jobId, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        var target = DbTarget.From(transaction);
        _app.RequireExternalSupport(target);
        return _app.Connector.DeleteJobAsync(jobId, target, async: true, cancellationToken).AsTask();
    }

    /// <summary>
    /// Rescues stalled jobs now (heartbeat older than <paramref name="threshold"/>, default 30 s): puts them
    /// back to <c>todo</c>, or fails them with <paramref name="fail"/>. Returns the jobs handled.
    /// </summary>
    public async Task<IReadOnlyList<Job>> RescueStalledJobsAsync(TimeSpan? threshold = null, bool fail = false, CancellationToken cancellationToken = default)
    {
        var done = await _app.Connector.RescueStalledJobsAsync(threshold ?? DefaultStalledThreshold, _ => !fail, cancellationToken).ConfigureAwait(false);
        return [.. done.Select(d => d.Job)];
    }

    /// <summary>The rows of <c>procrastinate_workers</c>, with the metadata .NET workers record.</summary>
    public IReadOnlyList<WorkerRow> ListWorkers() =>
        SyncRunner.Run(_app.Connector.ListWorkersAsync(async: false, CancellationToken.None));

    /// <inheritdoc cref="ListWorkers"/>
    public Task<IReadOnlyList<WorkerRow>> ListWorkersAsync(CancellationToken cancellationToken = default) =>
        _app.Connector.ListWorkersAsync(async: true, cancellationToken).AsTask();
}
