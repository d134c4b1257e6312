namespace Procrastinate;

/// <summary>Why a running job was asked to stop.</summary>
public enum AbortReason
{
    /// <summary>No abort was requested.</summary>
    None,
    /// <summary>A user requested the abort (cancel with abort, CLI, admin).</summary>
    UserRequest,
    /// <summary>The worker is shutting down and the graceful timeout has passed.</summary>
    Shutdown,
}

/// <summary>Describes the worker that runs a job.</summary>
/// <param name="Name">The worker's configured name.</param>
/// <param name="Id">The worker id from <c>procrastinate_workers</c>.</param>
/// <param name="Queues">The queues it serves; <c>null</c> means all.</param>
public sealed record WorkerInfo(string Name, long Id, IReadOnlyList<string>? Queues);

/// <summary>What a running job can know about itself and its worker.</summary>
public sealed class JobContext
{
    // Created on first use of CancellationToken: most bodies never read it.
    private CancellationTokenSource? _abortSource;
    private int _abortReason;
    private volatile bool _disposed;

    internal JobContext(App app, Job job, WorkerInfo worker, DateTimeOffset startedAt,
        IReadOnlyDictionary<string, object?> additionalContext)
    {
        App = app;
        Job = job;
        Worker = worker;
        StartedAt = startedAt;
        AdditionalContext = additionalContext;
    }

    /// <summary>The app the job runs in.</summary>
    public App App { get; }

    /// <summary>The job being run (id, task, queue, priority, locks, attempts, schedule, arguments).</summary>
    public Job Job { get; }

    /// <summary>The worker running the job.</summary>
    public WorkerInfo Worker { get; }

    /// <summary>When this run started (worker clock).</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>Extra values given to the worker (<see cref="WorkerOptions.AdditionalContext"/>).</summary>
    public IReadOnlyDictionary<string, object?> AdditionalContext { get; }

    /// <summary>Fires when the job should stop: a user abort or a shutdown past its graceful timeout.</summary>
    public CancellationToken CancellationToken => (Volatile.Read(ref _abortSource) ?? CreateAbortSource()).Token;

    /// <summary>Whether the job was asked to stop, and why.</summary>
    public AbortReason AbortReason => (AbortReason)Volatile.Read(ref _abortReason);

    /// <summary>True once an abort (user or shutdown) was requested.</summary>
    public bool ShouldAbort => AbortReason != AbortReason.None;

    /// <summary>Throws <see cref="JobAbortedException"/> when an abort was requested; handy in sync task bodies.</summary>
    public void ThrowIfAbortRequested()
    {
        if (ShouldAbort)
            throw new JobAbortedException($"Job {Job.Id} was aborted ({AbortReason}).");
    }

    internal bool RequestAbort(AbortReason reason)
    {
        if (Interlocked.CompareExchange(ref _abortReason, (int)reason, (int)AbortReason.None) != (int)AbortReason.None)
            return false;
        // No source yet: the one created later starts cancelled (CreateAbortSource reads the reason after publishing it).
        if (Volatile.Read(ref _abortSource) is { } source)
            Cancel(source);
        return true;
    }

    private CancellationTokenSource CreateAbortSource()
    {
        var fresh = new CancellationTokenSource();
        if (_disposed)
            fresh.Dispose(); // read after the run: the token throws ObjectDisposedException, as a disposed source's does
        var source = Interlocked.CompareExchange(ref _abortSource, fresh, null) ?? fresh;
        if (source != fresh)
            fresh.Dispose();
        else if (ShouldAbort)
            Cancel(source);
        return source;
    }

    private void Cancel(CancellationTokenSource source)
    {
        lock (source)
        {
            if (!_disposed)
                source.Cancel();
        }
    }

    internal void DisposeAbortSource()
    {
        // A source created by a racing first read of the token may escape disposal: without a
        // timer or a wait handle, it holds nothing but memory.
        _disposed = true;
        if (Volatile.Read(ref _abortSource) is { } source)
        {
            lock (source)
                source.Dispose();
        }
    }
}
