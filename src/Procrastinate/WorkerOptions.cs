namespace Procrastinate;

/// <summary>How a worker runs. Defaults follow Procrastinate for Python (COMPAT.md 4.7).</summary>
public sealed record WorkerOptions
{
    /// <summary>The worker's name, used in logs and in the job context. Default <c>worker</c>.</summary>
    public string Name { get; init; } = "worker";

    /// <summary>
    /// The queues to serve; <c>null</c> or empty means every queue. A name given twice counts
    /// once. The worker's claims read the waiting jobs of these queues alone, through an index by
    /// queue (up to 32 queues; with more, a claim may pass over other queues' jobs that come first
    /// in the order of priority and id).
    /// </summary>
    public IReadOnlyList<string>? Queues { get; init; }

    /// <summary>How many jobs run at once. Default 1.</summary>
    public int Concurrency { get; init; } = 1;

    /// <summary>
    /// How many jobs the worker may claim ahead of its free executors, into a local buffer, so
    /// claims come in batches. <c>null</c> (the default) adapts: at least as many as
    /// <see cref="Concurrency"/>, and for short jobs as many as the executors run in about
    /// 100 ms (judged from the mean run time of recent jobs), up to 300, while the buffered
    /// arguments stay under about 16 MB. 0 claims only for free executors. One claim takes at
    /// most 1,000 jobs. Unstarted claims go back to the queue when the worker stops.
    /// </summary>
    public int? PrefetchJobs { get; init; }

    /// <summary>
    /// How many claims may be on their way to the database at once. Default 1. With 2, the worker
    /// sends its next claim while the previous one is still running, each taking at most half of
    /// <c>Concurrency</c> plus the prefetch (when that is 100 jobs or more; below, one claim at a
    /// time). The jobs of an earlier claim start first; between two claims on their way at once,
    /// priority order holds as it does between two workers. It pays where the database's claim,
    /// not the jobs, bounds a worker: on 2 cores, short jobs on the compatible layout drained 8 to
    /// 43 % faster with 2; on the lean layout it made no difference and PostgreSQL spent more per
    /// job (BENCHMARKS.md). From 1 to 4.
    /// </summary>
    public int ClaimsInFlight { get; init; } = 1;

    /// <summary>
    /// Whether a claim's commit waits for PostgreSQL to flush it to disk. Default <c>true</c>, as
    /// Python's Procrastinate does. <c>false</c>: the claim's transaction, and it alone, runs with
    /// <c>synchronous_commit</c> off, so its jobs start one disk flush sooner (W4's median
    /// defer-to-start latency fell by about a tenth, its 99th percentile by about a fifth;
    /// BENCHMARKS.md). What that risks: if the PostgreSQL server itself crashes (not a clean
    /// shutdown or restart, which flushes) within a fraction of a second of a claim, recovery
    /// undoes the claim and its jobs wait again, while this worker still runs the ones it holds:
    /// such a job may run twice, even at the same time, and two jobs of one lock may overlap. No
    /// job is lost: defers, completions, retries and cancellations always wait for the flush, and
    /// the flush of any later commit makes the claims before it durable too. The in-memory
    /// connector ignores it.
    /// </summary>
    public bool DurableClaims { get; init; } = true;

    /// <summary>
    /// When <c>false</c>, the worker stops as soon as a fetch finds nothing to do (one-shot mode),
    /// after the jobs it started have ended. Default <c>true</c>.
    /// </summary>
    public bool Wait { get; init; } = true;

    /// <summary>Longest wait between two fetches when no notification arrives. Default 5 s.</summary>
    public TimeSpan FetchJobPollingInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often running jobs are checked for abort requests, besides notifications. Default 5 s.</summary>
    public TimeSpan AbortJobPollingInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// On stop, how long running jobs may take to finish before their cancellation token fires
    /// (a shutdown abort). <c>null</c> waits without limit, as Procrastinate does.
    /// </summary>
    public TimeSpan? ShutdownGracefulTimeout { get; init; }

    /// <summary>Wake up on PostgreSQL notifications instead of relying on polling only. Default <c>true</c>.</summary>
    public bool ListenNotify { get; init; } = true;

    /// <summary>What to do with finished jobs' rows. Default <see cref="DeleteJobsMode.Never"/>.</summary>
    public DeleteJobsMode DeleteJobs { get; init; } = DeleteJobsMode.Never;

    /// <summary>
    /// After this many jobs claimed by this worker since its last vacuum, it vacuums the job table
    /// (<c>VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) procrastinate_jobs</c>, on a connection of its own,
    /// beside its work). Each claimed job leaves an index entry that every later claim walks past
    /// until a vacuum, and autovacuum comes too seldom for a busy queue: without this, claims slow
    /// down under a sustained load until the worker falls behind (BENCHMARKS.md, W5). A vacuum
    /// takes no lock that jobs wait for; one that another vacuum would have to wait for is
    /// skipped; and the worker spends at most a tenth of its time vacuuming (after a vacuum that
    /// took 1 s, the next waits at least 9 s). Default 50,000; 0 turns it off (leave it to
    /// autovacuum). Needs the role to own the table: otherwise PostgreSQL refuses, the worker logs
    /// it once and stops trying.
    /// </summary>
    public int VacuumAfterClaimedJobs { get; init; } = 50_000;

    /// <summary>How often the worker's heartbeat is written. Default 10 s; keep it well under 30 s.</summary>
    public TimeSpan UpdateHeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A worker whose heartbeat is older than this is considered dead and pruned. Default 30 s.</summary>
    public TimeSpan StalledWorkerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Stop gracefully on SIGINT, SIGTERM and Ctrl+C. Default <c>true</c>; turn it off when a host
    /// (such as the .NET Generic Host) already handles signals.
    /// </summary>
    public bool HandleSignals { get; init; } = true;

    /// <summary>
    /// What to do with running jobs whose worker stopped heartbeating for <see cref="StalledWorkerTimeout"/>.
    /// Default <see cref="StalledJobPolicy.Retry"/>: they run again, with no human action.
    /// </summary>
    public StalledJobPolicy StalledJobs { get; init; } = StalledJobPolicy.Retry;

    /// <summary>How often stalled jobs are looked for (one worker at a time does it). Default 15 s.</summary>
    public TimeSpan StalledJobsCheckInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Where this worker logs (its lifecycle and its jobs); the app's <see cref="AppOptions.LoggerFactory"/> when null.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Middleware wrapping every job this worker runs, outermost first.</summary>
    public IReadOnlyList<IJobMiddleware>? Middleware { get; init; }

    /// <summary>Extra values handed to every job through <see cref="JobContext.AdditionalContext"/>.</summary>
    public IReadOnlyDictionary<string, object?>? AdditionalContext { get; init; }

    /// <summary>Run the periodic deferrer (off in the test harness, which runs only what is due).</summary>
    internal bool EnablePeriodic { get; init; } = true;

    /// <summary>Sees every outcome before it is written (the test harness records them).</summary>
    internal Action<Internal.JobOutcome>? OutcomeObserver { get; init; }

    /// <summary>Validates the options; called when the worker starts.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (Concurrency < 1)
            throw new ArgumentException($"Concurrency must be at least 1 (got {Concurrency}).", nameof(Concurrency));
        if (PrefetchJobs < 0)
            throw new ArgumentException($"PrefetchJobs cannot be negative (got {PrefetchJobs}).", nameof(PrefetchJobs));
        if (ClaimsInFlight is < 1 or > 4)
            throw new ArgumentException($"ClaimsInFlight must be from 1 to 4 (got {ClaimsInFlight}).", nameof(ClaimsInFlight));
        if (VacuumAfterClaimedJobs < 0)
            throw new ArgumentException($"VacuumAfterClaimedJobs cannot be negative (got {VacuumAfterClaimedJobs}); 0 turns vacuuming off.", nameof(VacuumAfterClaimedJobs));
        if (string.IsNullOrWhiteSpace(Name))
            throw new ArgumentException("The worker name cannot be empty.", nameof(Name));
        Internal.Names.ValidateText(Name, "The worker name", nameof(Name));
        RequirePositive(FetchJobPollingInterval, nameof(FetchJobPollingInterval));
        RequirePositive(AbortJobPollingInterval, nameof(AbortJobPollingInterval));
        RequirePositive(UpdateHeartbeatInterval, nameof(UpdateHeartbeatInterval));
        RequirePositive(StalledWorkerTimeout, nameof(StalledWorkerTimeout));
        RequirePositive(StalledJobsCheckInterval, nameof(StalledJobsCheckInterval));
        if (UpdateHeartbeatInterval >= StalledWorkerTimeout)
            throw new ArgumentException(
                $"UpdateHeartbeatInterval ({UpdateHeartbeatInterval}) must be shorter than StalledWorkerTimeout ({StalledWorkerTimeout}), or live workers look dead.",
                nameof(UpdateHeartbeatInterval));
        if (ShutdownGracefulTimeout is { } t && t < TimeSpan.Zero)
            throw new ArgumentException("ShutdownGracefulTimeout cannot be negative.", nameof(ShutdownGracefulTimeout));
        if (Queues is not null)
            foreach (var q in Queues)
                Internal.Names.ValidateQueue(q, nameof(Queues));
    }

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
            throw new ArgumentException($"{name} must be positive (got {value}).", name);
    }
}
