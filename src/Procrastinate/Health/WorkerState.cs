namespace Procrastinate;

/// <summary>A worker running in this process, as it sees itself (<see cref="App.Workers"/>).</summary>
public sealed class WorkerState
{
    private long _id;
    private long _lastHeartbeatTicks;
    private int _listening;
    private int _running;
    private long _completed;

    internal WorkerState(WorkerOptions options, DateTimeOffset startedAt)
    {
        Options = options;
        StartedAt = startedAt;
        _lastHeartbeatTicks = startedAt.UtcTicks;
    }

    /// <summary>The worker's options.</summary>
    public WorkerOptions Options { get; }

    /// <summary>The worker's name.</summary>
    public string Name => Options.Name;

    /// <summary>Its id in <c>procrastinate_workers</c> (changes if it had to register again).</summary>
    public long Id => Interlocked.Read(ref _id);

    /// <summary>When it started.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>When it last wrote its heartbeat (or registered).</summary>
    public DateTimeOffset LastHeartbeat => new(Interlocked.Read(ref _lastHeartbeatTicks), TimeSpan.Zero);

    /// <summary>Whether its LISTEN connection is up.</summary>
    public bool IsListening => Volatile.Read(ref _listening) == 1;

    /// <summary>How many jobs it runs now.</summary>
    public int RunningJobs => Volatile.Read(ref _running);

    /// <summary>How many jobs it has finished (whatever their outcome) since it started.</summary>
    public long CompletedJobs => Interlocked.Read(ref _completed);

    internal void JobCompleted() => Interlocked.Increment(ref _completed);

    internal void SetId(long id) => Interlocked.Exchange(ref _id, id);

    internal void Heartbeat(DateTimeOffset at) => Interlocked.Exchange(ref _lastHeartbeatTicks, at.UtcTicks);

    internal void SetListening(bool listening) => Volatile.Write(ref _listening, listening ? 1 : 0);

    internal void SetRunning(int count) => Volatile.Write(ref _running, count);
}
