using Microsoft.Extensions.Logging;
using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Internal.Workers;
using Threading = System.Threading.Tasks;

namespace Procrastinate;

/// <summary>
/// The entry point: holds the connector and the registered tasks, defers jobs and runs workers.
/// </summary>
/// <example>
/// <code>
/// var app = new App(new NpgsqlConnector());
/// var sum = app.Task&lt;SumArgs&gt;("sum", args => File.WriteAllText("myfile", $"{args.A + args.B}"), queue: "sums");
/// using (app.Open())
///     sum.Defer(new SumArgs(3, 5));
/// await app.RunWorkerAsync(new WorkerOptions { Queues = ["sums"] });
/// </code>
/// </example>
public sealed class App : Blueprint, IAsyncDisposable, IDisposable
{

    /// <summary>Creates an app over <paramref name="connector"/>.</summary>
    public App(Connector connector, AppOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connector);
        Connector = connector;
        Options = options ?? new AppOptions();
        Logger = Options.LoggerFactory.CreateLogger("Procrastinate");
        Schema = new SchemaManager(this);
        Jobs = new JobManager(this);
        Telemetry = new AppTelemetry(this, Options.MeterFactory);
        AttachTo(this);
        BuiltinTasks = new BuiltinTasks(this);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<WorkerState, byte> _workers = new();

    /// <summary>Health checks of the database, the schema and this process's workers.</summary>
    public HealthChecks Health => new(this);

    /// <summary>The workers running in this process now.</summary>
    public IReadOnlyCollection<WorkerState> Workers => [.. _workers.Keys];

    internal void AddWorker(WorkerState state) => _workers[state] = 0;

    internal void RemoveWorker(WorkerState state) => _workers.TryRemove(state, out _);

    /// <summary>The tasks every app has, such as <c>remove_old_jobs</c>.</summary>
    public BuiltinTasks BuiltinTasks { get; }

    /// <summary>Where jobs are stored.</summary>
    public Connector Connector { get; }

    /// <summary>The app's settings.</summary>
    public AppOptions Options { get; }

    /// <summary>Installs and checks the database schema.</summary>
    public SchemaManager Schema { get; }

    /// <summary>Operations on existing jobs: status, cancel, abort.</summary>
    public JobManager Jobs { get; }

    internal ILogger Logger { get; }

    internal AppTelemetry Telemetry { get; }

    // ---- Opening ----------------------------------------------------------------------

    /// <summary>
    /// Checks that the database is reachable. Disposing the result closes the connector's pooled
    /// connections; the app can still be used afterwards (it reconnects on demand).
    /// </summary>
    /// <exception cref="Npgsql.NpgsqlException">The database cannot be reached.</exception>
    public IDisposable Open()
    {
        SyncRunner.Run(Connector.OpenAsync(async: false, CancellationToken.None));
        return new Closer(this);
    }

    /// <inheritdoc cref="Open"/>
    public async Threading.Task<IAsyncDisposable> OpenAsync(CancellationToken cancellationToken = default)
    {
        await Connector.OpenAsync(async: true, cancellationToken).ConfigureAwait(false);
        return new Closer(this);
    }

    private sealed class Closer(App app) : IDisposable, IAsyncDisposable
    {
        public void Dispose() => SyncRunner.Run(app.Connector.CloseAsync(async: false));

        public ValueTask DisposeAsync() => app.Connector.CloseAsync(async: true);
    }

    // ---- Defer by name ----------------------------------------------------------------------

    /// <summary>
    /// Defers a job by task name with JSON arguments, whether or not the task is registered here
    /// (for tools and other processes). A registered task's defaults apply.
    /// </summary>
    /// <exception cref="ArgumentException">The JSON is malformed or not an object, or a name is invalid.</exception>
    public long Defer(string taskName, string argsJson, DeferOptions? options = null) =>
        SyncRunner.Run(DeferOneAsync(BuildByName(taskName, argsJson, options), options, DbTarget.Pool, async: false, CancellationToken.None));

    /// <inheritdoc cref="Defer(string, string, DeferOptions?)"/>
    public Threading.Task<long> DeferAsync(string taskName, string argsJson, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        DeferOneAsync(BuildByName(taskName, argsJson, options), options, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Defers a job by task name inside the caller's transaction.</summary>
    public Threading.Task<long> DeferAsync(string taskName, string argsJson, NpgsqlTransaction transaction, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        DeferOneAsync(BuildByName(taskName, argsJson, options), options, DbTarget.From(transaction), async: true, cancellationToken).AsTask();

    private JobToDefer BuildByName(string taskName, string argsJson, DeferOptions? options)
    {
        Names.ValidateTaskName(taskName, nameof(taskName));
        var json = JsonArgs.ValidateUntrusted(argsJson, Options.MaxArgsBytes);
        return BuildJob(taskName, json, options, FindTask(taskName));
    }

    internal JobToDefer BuildJob(string taskName, string argsJson, DeferOptions? options, JobTask? task)
    {
        if (options?.ScheduleAt is not null && options.ScheduleIn is not null)
            throw new ArgumentException("Set ScheduleAt or ScheduleIn, not both.", nameof(options));
        DateTimeOffset? scheduledAt = options?.ScheduleAt;
        if (options?.ScheduleIn is { } delay)
        {
            var now = Options.TimeProvider.GetUtcNow();
            scheduledAt = delay >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + delay;
        }
        if (scheduledAt is { } at)
        {
            // Sentinels (DateTimeOffset.MinValue, default, MaxValue) and unit mistakes are refused:
            // a schedule is an instant between 1970 and the horizon.
            var horizon = Options.TimeProvider.GetUtcNow() + Options.MaxScheduleAhead;
            if (at < DateTimeOffset.UnixEpoch || at > horizon)
                throw new ArgumentOutOfRangeException(options?.ScheduleIn is not null ? "ScheduleIn" : "ScheduleAt", at,
                    $"The job would be scheduled at {at:O}: schedules must fall between 1970-01-01 and {Options.MaxScheduleAhead.TotalDays:0} days from now (AppOptions.MaxScheduleAhead).");
            scheduledAt = TruncateToMicroseconds(at.ToUniversalTime());
        }

        return new JobToDefer(
            Queue: Names.ValidateQueue(options?.Queue ?? task?.Queue ?? Names.DefaultQueue, "Queue"),
            TaskName: taskName,
            Priority: options?.Priority ?? task?.Priority ?? 0,
            Lock: Names.ValidateLock(options?.Lock ?? task?.Lock, "lock", "Lock"),
            QueueingLock: Names.ValidateLock(options?.QueueingLock ?? task?.QueueingLock, "queueing lock", "QueueingLock"),
            ArgsJson: argsJson,
            ScheduledAt: scheduledAt);
    }

    private static DateTimeOffset TruncateToMicroseconds(DateTimeOffset value) =>
        new(value.Ticks - value.Ticks % 10, value.Offset);

    internal async ValueTask<long> DeferOneAsync(JobToDefer job, DeferOptions? options, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequireExternalSupport(target);
        using var activity = StartSendActivity(job, 1);
        try
        {
            var trace = TraceContext.From(activity ?? System.Diagnostics.Activity.Current);
            long id;
            var inserted = true;
            if (options?.IgnoreAlreadyEnqueued == true && job.QueueingLock is not null)
            {
                // The waiting job may start between the conflict and the lookup; then try again.
                long? found = null;
                for (var attempt = 0; attempt < 5 && found is null; attempt++)
                    (found, inserted) = await Connector.DeferJobOrGetExistingAsync(job, trace, target, async, cancellationToken).ConfigureAwait(false);
                id = found ?? throw new AlreadyEnqueuedException(job.QueueingLock);
            }
            else
            {
                id = (await Connector.DeferJobsAsync([job], trace, target, async, cancellationToken).ConfigureAwait(false))[0];
            }
            activity?.SetTag("messaging.message.id", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (inserted)
                Telemetry.Deferred.Add(1, AppTelemetry.Tags(job.TaskName, job.Queue));
            Log.JobDeferred(Logger, "job_defer", id, job.TaskName, job.Queue, inserted ? "deferred" : "already enqueued");
            return id;
        }
        catch (Exception e) when (Fail(activity, e) is { } replacement)
        {
            throw replacement;
        }
    }

    internal async ValueTask<IReadOnlyList<long>> DeferBatchAsync(IReadOnlyList<JobToDefer> jobs, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequireExternalSupport(target);
        if (jobs.Count == 0)
            return [];
        using var activity = StartSendActivity(jobs[0], jobs.Count);
        try
        {
            var ids = await Connector.DeferJobsAsync(jobs, TraceContext.From(activity ?? System.Diagnostics.Activity.Current), target, async, cancellationToken)
                .ConfigureAwait(false);
            if (Telemetry.Deferred.Enabled)
            {
                foreach (var group in jobs.CountBy(j => (j.TaskName, j.Queue)))
                    Telemetry.Deferred.Add(group.Value, AppTelemetry.Tags(group.Key.TaskName, group.Key.Queue));
            }
            Log.JobsDeferred(Logger, "job_defer", ids.Length);
            return ids;
        }
        catch (Exception e) when (Fail(activity, e) is { } replacement)
        {
            throw replacement;
        }
    }

    /// <summary>
    /// Marks the defer's span as failed, and returns the exception to throw instead of
    /// <paramref name="e"/>, if any: a missing schema is reported as a <see cref="SchemaException"/>.
    /// Returns null (rethrow as it is) otherwise.
    /// </summary>
    private static Exception? Fail(System.Diagnostics.Activity? activity, Exception e)
    {
        var replacement = SchemaException.FromMissingObject(e);
        if (activity is not null)
        {
            activity.SetStatus(System.Diagnostics.ActivityStatusCode.Error, (replacement ?? e).Message);
            activity.SetTag("error.type", (replacement ?? e).GetType().FullName);
        }
        return replacement;
    }

    private static System.Diagnostics.Activity? StartSendActivity(JobToDefer job, int count)
    {
        var activity = ProcrastinateTelemetry.Source.StartActivity($"send {job.Queue}", System.Diagnostics.ActivityKind.Producer);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "procrastinate");
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.destination.name", job.Queue);
            activity.SetTag("procrastinate.task.name", job.TaskName);
            if (count > 1)
                activity.SetTag("messaging.batch.message_count", count);
        }
        return activity;
    }

    internal void RequireExternalSupport(DbTarget target)
    {
        if (target.IsExternal && !Connector.SupportsExternalConnections)
            throw new NotSupportedException($"{Connector.GetType().Name} cannot run inside a caller's NpgsqlConnection or transaction.");
    }

    // ---- Workers ----------------------------------------------------------------------------

    /// <summary>
    /// Runs a worker until it is stopped: by <paramref name="cancellationToken"/>, by SIGINT/SIGTERM
    /// (when <see cref="WorkerOptions.HandleSignals"/> is on), or, in one-shot mode, when nothing is left.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public async Threading.Task RunWorkerAsync(WorkerOptions? options = null, CancellationToken cancellationToken = default)
    {
        var worker = new Worker(this, options ?? new WorkerOptions());
        await worker.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a worker on the calling thread until it stops (see <see cref="RunWorkerAsync"/>).
    /// The worker's loops are asynchronous; this call blocks the calling thread for the
    /// worker's lifetime, like Python's <c>app.run_worker()</c>.
    /// </summary>
    public void RunWorker(WorkerOptions? options = null, CancellationToken cancellationToken = default)
    {
        // A process-level blocking run: the worker's loops never capture a synchronization context.
        Threading.Task.Run(() => RunWorkerAsync(options, cancellationToken), CancellationToken.None).GetAwaiter().GetResult();
    }

    // ---- Disposal ------------------------------------------------------------------------------

    /// <summary>Disposes the connector and the app's meter.</summary>
    public void Dispose()
    {
        Telemetry.Dispose();
        Connector.Dispose();
    }

    /// <summary>Disposes the connector and the app's meter.</summary>
    public ValueTask DisposeAsync()
    {
        Telemetry.Dispose();
        return Connector.DisposeAsync();
    }
}
