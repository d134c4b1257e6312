namespace Procrastinate.Hosting.Internal;

/// <summary>Where a hosted worker is in its life.</summary>
internal enum HostedWorkerState
{
    /// <summary>The host has not started it yet.</summary>
    NotStarted,
    /// <summary>Running (or registering itself).</summary>
    Running,
    /// <summary>It could not run (the database was unreachable, say) and starts again after a delay.</summary>
    Retrying,
    /// <summary>Stopped with the host.</summary>
    Stopped,
    /// <summary>Failed for good; the host was asked to stop.</summary>
    Faulted,
}

/// <summary>A snapshot of a hosted worker's state, replaced as a whole.</summary>
internal sealed record HostedWorkerStatus(HostedWorkerState State, WorkerOptions? Options, Exception? Error);

/// <summary>One worker run by the hosted service, with its current state for the health check.</summary>
internal sealed class HostedWorker(string registrationName)
{
    private HostedWorkerStatus _status = new(HostedWorkerState.NotStarted, null, null);

    /// <summary>The options name ("" for the default worker).</summary>
    public string RegistrationName { get; } = registrationName;

    /// <summary>The worker's name as configured, or its default before the options are read.</summary>
    public string DisplayName => Status.Options?.Name ?? ProcrastinateWorkerOptions.DefaultWorkerName(RegistrationName);

    public HostedWorkerStatus Status => Volatile.Read(ref _status);

    public void Set(HostedWorkerState state, WorkerOptions? options, Exception? error = null) =>
        Volatile.Write(ref _status, new HostedWorkerStatus(state, options, error));
}
