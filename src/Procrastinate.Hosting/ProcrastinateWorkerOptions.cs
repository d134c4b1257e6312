namespace Procrastinate.Hosting;

/// <summary>
/// The settings of a worker run by <c>services.AddProcrastinateWorker(...)</c>: the bindable,
/// mutable form of <see cref="WorkerOptions"/>, with the same defaults.
/// </summary>
/// <remarks>
/// These are named options (<c>IOptionsMonitor&lt;ProcrastinateWorkerOptions&gt;.Get(name)</c>):
/// the default worker's name is <see cref="Microsoft.Extensions.Options.Options.DefaultName"/>
/// (the empty string) and it is bound from <see cref="SectionName"/>; a named worker is bound
/// from <c><see cref="NamedSectionPrefix"/>:{name}</c>. Durations are written as <c>hh:mm:ss</c>
/// in configuration. A hosted worker always waits for new jobs and never handles signals itself:
/// the host does.
/// </remarks>
public sealed class ProcrastinateWorkerOptions
{
    /// <summary>The configuration section of the default worker: <c>Procrastinate:Worker</c>.</summary>
    public const string SectionName = "Procrastinate:Worker";

    /// <summary>The parent section of named workers: <c>Procrastinate:Workers</c> (a worker named <c>emails</c> reads <c>Procrastinate:Workers:emails</c>).</summary>
    public const string NamedSectionPrefix = "Procrastinate:Workers";

    private static readonly WorkerOptions Defaults = new();

    /// <summary>
    /// The worker's name, in logs, in <c>procrastinate_dotnet_workers</c> and in the job context.
    /// Default: the registration name, or <c>worker</c> for the default worker.
    /// </summary>
    public string? Name { get; set; }

    /// <summary>The queues to serve; empty means every queue.</summary>
    public IList<string> Queues { get; set; } = [];

    /// <summary>How many jobs run at once. Default 1.</summary>
    public int Concurrency { get; set; } = Defaults.Concurrency;

    /// <summary>
    /// Jobs claimed ahead of the free executors, into a local buffer; 0: none. Default (null):
    /// adapts to the jobs' run time. See <see cref="WorkerOptions.PrefetchJobs"/>.
    /// </summary>
    public int? PrefetchJobs { get; set; } = Defaults.PrefetchJobs;

    /// <summary>
    /// Claims on their way to the database at once, 1 to 4. Default 1. See
    /// <see cref="WorkerOptions.ClaimsInFlight"/>.
    /// </summary>
    public int ClaimsInFlight { get; set; } = Defaults.ClaimsInFlight;

    /// <summary>
    /// Whether a claim's commit waits for PostgreSQL to flush it to disk. Default <c>true</c>. See
    /// <see cref="WorkerOptions.DurableClaims"/>.
    /// </summary>
    public bool DurableClaims { get; set; } = Defaults.DurableClaims;

    /// <summary>Longest wait between two fetches when no notification arrives. Default 5 s.</summary>
    public TimeSpan FetchJobPollingInterval { get; set; } = Defaults.FetchJobPollingInterval;

    /// <summary>How often running jobs are checked for abort requests, besides notifications. Default 5 s.</summary>
    public TimeSpan AbortJobPollingInterval { get; set; } = Defaults.AbortJobPollingInterval;

    /// <summary>
    /// On stop, how long running jobs may take to finish before their cancellation token fires.
    /// Default (null): the host's <c>HostOptions.ShutdownTimeout</c> less a margin of a quarter of
    /// it, at most 5 s (25 s for the default 30 s), so that jobs are cancelled, and their outcome
    /// written, before the host gives up on the worker.
    /// </summary>
    public TimeSpan? ShutdownGracefulTimeout { get; set; }

    /// <summary>Wake up on PostgreSQL notifications instead of relying on polling only. Default <c>true</c>.</summary>
    public bool ListenNotify { get; set; } = Defaults.ListenNotify;

    /// <summary>What to do with finished jobs' rows. Default <see cref="DeleteJobsMode.Never"/>.</summary>
    public DeleteJobsMode DeleteJobs { get; set; } = Defaults.DeleteJobs;

    /// <summary>
    /// After this many jobs claimed since its last vacuum, the worker vacuums the job table, so
    /// that claims stay fast under a sustained load. Default 50,000; 0 leaves it to autovacuum.
    /// See <see cref="WorkerOptions.VacuumAfterClaimedJobs"/>.
    /// </summary>
    public int VacuumAfterClaimedJobs { get; set; } = Defaults.VacuumAfterClaimedJobs;

    /// <summary>How often the worker's heartbeat is written. Default 10 s.</summary>
    public TimeSpan UpdateHeartbeatInterval { get; set; } = Defaults.UpdateHeartbeatInterval;

    /// <summary>A worker whose heartbeat is older than this is considered dead. Default 30 s; the worker health check uses it too.</summary>
    public TimeSpan StalledWorkerTimeout { get; set; } = Defaults.StalledWorkerTimeout;

    /// <summary>What to do with running jobs of dead workers. Default <see cref="StalledJobPolicy.Retry"/>.</summary>
    public StalledJobPolicy StalledJobs { get; set; } = Defaults.StalledJobs;

    /// <summary>How often stalled jobs are looked for. Default 15 s.</summary>
    public TimeSpan StalledJobsCheckInterval { get; set; } = Defaults.StalledJobsCheckInterval;

    /// <summary>Middleware wrapping every job this worker runs, outermost first (set in code, not in configuration).</summary>
    public IList<IJobMiddleware> Middleware { get; } = [];

    /// <summary>Extra values handed to every job through <see cref="JobContext.AdditionalContext"/> (set in code).</summary>
    public IDictionary<string, object?> AdditionalContext { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>The worker name used when <see cref="Name"/> is not set, for the worker registered as <paramref name="registrationName"/>.</summary>
    internal static string DefaultWorkerName(string registrationName) =>
        string.IsNullOrEmpty(registrationName) ? Defaults.Name : registrationName;

    /// <summary>
    /// The margin kept between the graceful timeout and the host's shutdown timeout, for the
    /// cancelled jobs to end and their outcomes to be written.
    /// </summary>
    internal static TimeSpan? DefaultGracefulTimeout(TimeSpan hostShutdownTimeout)
    {
        if (hostShutdownTimeout == Timeout.InfiniteTimeSpan)
            return null;
        if (hostShutdownTimeout <= TimeSpan.Zero)
            return TimeSpan.Zero;
        var margin = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, hostShutdownTimeout.Ticks / 4));
        return hostShutdownTimeout - margin;
    }

    /// <summary>Maps to the core options: <c>Wait</c> on, <c>HandleSignals</c> off.</summary>
    internal WorkerOptions ToWorkerOptions(string registrationName, TimeSpan? defaultGracefulTimeout) => new()
    {
        Name = string.IsNullOrWhiteSpace(Name) ? DefaultWorkerName(registrationName) : Name,
        Queues = Queues is { Count: > 0 } ? [.. Queues] : null,
        Concurrency = Concurrency,
        PrefetchJobs = PrefetchJobs,
        ClaimsInFlight = ClaimsInFlight,
        DurableClaims = DurableClaims,
        Wait = true,
        FetchJobPollingInterval = FetchJobPollingInterval,
        AbortJobPollingInterval = AbortJobPollingInterval,
        ShutdownGracefulTimeout = ShutdownGracefulTimeout ?? defaultGracefulTimeout,
        ListenNotify = ListenNotify,
        DeleteJobs = DeleteJobs,
        VacuumAfterClaimedJobs = VacuumAfterClaimedJobs,
        UpdateHeartbeatInterval = UpdateHeartbeatInterval,
        StalledWorkerTimeout = StalledWorkerTimeout,
        HandleSignals = false,
        StalledJobs = StalledJobs,
        StalledJobsCheckInterval = StalledJobsCheckInterval,
        Middleware = Middleware.Count > 0 ? [.. Middleware] : null,
        AdditionalContext = AdditionalContext.Count > 0 ? new Dictionary<string, object?>(AdditionalContext, StringComparer.Ordinal) : null,
    };
}
