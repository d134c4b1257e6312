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

    /// <summary>A job by id, or <c>null</c>.</summary>
    public Job? Get(long jobId) =>
        SyncRunner.Run(_app.Connector.GetJobAsync(jobId, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Get(long)"/>
    public Task<Job?> GetAsync(long jobId, CancellationToken cancellationToken = default) =>
        _app.Connector.GetJobAsync(jobId, DbTarget.Pool, async: true, cancellationToken).AsTask();
}
