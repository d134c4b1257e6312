using System.Text.Json;
using Npgsql;
using Procrastinate.Internal;

namespace Procrastinate;

/// <summary>
/// A task registered in an <see cref="App"/>: a stable name, its defaults, and the body that
/// runs each job. Use <see cref="JobTask{TArgs}"/> to defer jobs.
/// </summary>
public abstract class JobTask
{
    private App? _app;

    private protected JobTask(string name, TaskDefaults defaults)
    {
        Name = Names.ValidateTaskName(name);
        Queue = Names.ValidateQueue(defaults.Queue ?? Names.DefaultQueue);
        Priority = defaults.Priority;
        Lock = Names.ValidateLock(defaults.Lock, "lock", "lock");
        QueueingLock = Names.ValidateLock(defaults.QueueingLock, "queueing lock", "queueingLock");
        Aliases = [.. (defaults.Aliases ?? []).Select(a => Names.ValidateTaskName(a, "aliases"))];
        Retry = defaults.Retry ?? RetryStrategy.None;
    }

    /// <summary>The app the task belongs to.</summary>
    /// <exception cref="InvalidOperationException">The task's blueprint is not added to an app yet.</exception>
    public App App => _app ?? throw new InvalidOperationException(
        $"Task '{Name}' belongs to a blueprint that is not added to an app yet; call app.AddBlueprint(...) first.");

    internal void AttachTo(App app) => _app = app;

    private static readonly System.Text.Json.JsonSerializerOptions DefaultJsonOptions = AppOptions.CreateDefaultJsonOptions();

    /// <summary>The app's serializer options, or the defaults while the task's blueprint is not attached.</summary>
    private protected System.Text.Json.JsonSerializerOptions JsonOptions => _app?.Options.JsonSerializerOptions ?? DefaultJsonOptions;

    /// <summary>The stored name (with its blueprint namespaces).</summary>
    public string Name { get; internal set; }

    /// <summary>Other names jobs of this task may carry (for renamed tasks).</summary>
    public IReadOnlyList<string> Aliases { get; internal set; }

    /// <summary>The default queue.</summary>
    public string Queue { get; }

    /// <summary>The default priority.</summary>
    public int Priority { get; }

    /// <summary>The default lock.</summary>
    public string? Lock { get; }

    /// <summary>The default queueing lock.</summary>
    public string? QueueingLock { get; }

    /// <summary>What happens when a run throws.</summary>
    public RetryStrategy Retry { get; }

    /// <summary>The arguments type.</summary>
    public abstract Type ArgsType { get; }

    private IJobMiddleware[] _middleware = [];
    private PeriodicSchedule[] _schedules = [];

    /// <summary>The task's cron schedules.</summary>
    public IReadOnlyList<PeriodicSchedule> Schedules => _schedules;

    private protected PeriodicSchedule AddSchedule(string cron, string periodicId, string? timeZone, System.Text.Json.Nodes.JsonObject args, DeferOptions? options)
    {
        ArgumentNullException.ThrowIfNull(cron);
        ArgumentNullException.ThrowIfNull(periodicId);
        if (periodicId.Length > Names.MaxTaskNameChars)
            throw new ArgumentException($"The periodic id '{periodicId[..20]}…' is {periodicId.Length} characters long; the limit is {Names.MaxTaskNameChars}.", nameof(periodicId));
        if (options?.ScheduleAt is not null || options?.ScheduleIn is not null)
            throw new ArgumentException("Periodic jobs run at their tick: ScheduleAt and ScheduleIn do not apply.", nameof(options));
        if (options?.IgnoreAlreadyEnqueued == true)
            throw new ArgumentException("IgnoreAlreadyEnqueued does not apply to periodic jobs: a tick whose queueing lock is taken is skipped.", nameof(options));
        Names.ValidateText(periodicId, "The periodic id", nameof(periodicId));
        JsonArgs.ValidateSerialized(args.ToJsonString(), _app?.Options.MaxArgsBytes ?? AppOptions.DefaultMaxArgsBytes);
        var expression = CronExpression.Parse(cron, timeZone);
        if (options?.Queue is { } q) Names.ValidateQueue(q);
        Names.ValidateLock(options?.Lock, "lock", "Lock");
        Names.ValidateLock(options?.QueueingLock, "queueing lock", "QueueingLock");
        if (_schedules.Any(s => s.PeriodicId == periodicId))
            throw new ArgumentException($"Task '{Name}' already has a schedule with periodic id '{periodicId}'; give each schedule its own id.", nameof(periodicId));
        var schedule = new PeriodicSchedule(this, expression, periodicId, args, options);
        _schedules = [.. _schedules, schedule];
        return schedule;
    }

    /// <summary>The task's middleware, outermost first.</summary>
    public IReadOnlyList<IJobMiddleware> Middleware => _middleware;

    /// <summary>Adds a middleware around this task's body (after those added before).</summary>
    public JobTask Use(IJobMiddleware middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        _middleware = [.. _middleware, middleware];
        return this;
    }

    /// <summary>Runs one job: reads its arguments and calls the body.</summary>
    internal abstract Task InvokeAsync(JobContext context);

    /// <summary>Resolves every default of one defer (COMPAT.md 3.2) and validates the result.</summary>
    internal JobToDefer BuildJob(string argsJson, DeferOptions? options) =>
        App.BuildJob(Name, argsJson, options, this);
}

/// <summary>The defaults of a task, given at registration.</summary>
internal sealed record TaskDefaults(
    string? Queue,
    int Priority,
    string? Lock,
    string? QueueingLock,
    IEnumerable<string>? Aliases,
    RetryStrategy? Retry);

/// <summary>A task whose arguments are a <typeparamref name="TArgs"/> record, stored as a JSON object.</summary>
/// <typeparam name="TArgs">The arguments type.</typeparam>
public sealed class JobTask<TArgs> : JobTask
{
    private readonly Func<TArgs, JobContext, Task> _body;

    internal JobTask(string name, TaskDefaults defaults, Func<TArgs, JobContext, Task> body)
        : base(name, defaults)
    {
        _body = body;
    }

    /// <inheritdoc />
    public override Type ArgsType => typeof(TArgs);

    /// <summary>Defers one job and returns its id.</summary>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    /// <exception cref="ArgumentException">The arguments or options are invalid; nothing was written.</exception>
    public long Defer(TArgs args, DeferOptions? options = null) =>
        SyncRunner.Run(App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.Pool, async: false, CancellationToken.None));

    /// <summary>Defers one job and returns its id.</summary>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    /// <exception cref="ArgumentException">The arguments or options are invalid; nothing was written.</exception>
    public Task<long> DeferAsync(TArgs args, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.Pool, async: true, cancellationToken).AsTask();

    /// <summary>Defers one job inside the caller's transaction: it exists only if the transaction commits.</summary>
    public long Defer(TArgs args, NpgsqlTransaction transaction, DeferOptions? options = null) =>
        SyncRunner.Run(App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.From(transaction), async: false, CancellationToken.None));

    /// <summary>Defers one job inside the caller's transaction: it exists only if the transaction commits.</summary>
    public Task<long> DeferAsync(TArgs args, NpgsqlTransaction transaction, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.From(transaction), async: true, cancellationToken).AsTask();

    /// <summary>Defers one job on the caller's open connection (and its current transaction, if any).</summary>
    public long Defer(TArgs args, NpgsqlConnection connection, DeferOptions? options = null) =>
        SyncRunner.Run(App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.From(connection), async: false, CancellationToken.None));

    /// <summary>Defers one job on the caller's open connection (and its current transaction, if any).</summary>
    public Task<long> DeferAsync(TArgs args, NpgsqlConnection connection, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        App.DeferOneAsync(BuildJob(Serialize(args), options), options, DbTarget.From(connection), async: true, cancellationToken).AsTask();

    /// <summary>Defers many jobs in one round trip; all or none are inserted. Returns the ids in input order.</summary>
    /// <exception cref="AlreadyEnqueuedException">A queueing lock conflicts; nothing was inserted.</exception>
    public IReadOnlyList<long> DeferMany(IEnumerable<TArgs> args, DeferOptions? options = null) =>
        SyncRunner.Run(App.DeferBatchAsync(BuildMany(args, options), DbTarget.Pool, async: false, CancellationToken.None));

    /// <summary>Defers many jobs in one round trip; all or none are inserted. Returns the ids in input order.</summary>
    /// <exception cref="AlreadyEnqueuedException">A queueing lock conflicts; nothing was inserted.</exception>
    public async Task<IReadOnlyList<long>> DeferManyAsync(IEnumerable<TArgs> args, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        await App.DeferBatchAsync(BuildMany(args, options), DbTarget.Pool, async: true, cancellationToken).ConfigureAwait(false);

    /// <summary>Defers many jobs inside the caller's transaction, in one round trip.</summary>
    public async Task<IReadOnlyList<long>> DeferManyAsync(IEnumerable<TArgs> args, NpgsqlTransaction transaction, DeferOptions? options = null, CancellationToken cancellationToken = default) =>
        await App.DeferBatchAsync(BuildMany(args, options), DbTarget.From(transaction), async: true, cancellationToken).ConfigureAwait(false);

    /// <summary>Defers many jobs inside the caller's transaction, in one round trip.</summary>
    public IReadOnlyList<long> DeferMany(IEnumerable<TArgs> args, NpgsqlTransaction transaction, DeferOptions? options = null) =>
        SyncRunner.Run(App.DeferBatchAsync(BuildMany(args, options), DbTarget.From(transaction), async: false, CancellationToken.None));

    /// <summary>
    /// Runs this task on a cron schedule: 5 fields, or 6 with seconds last (Procrastinate's form),
    /// in <paramref name="timeZone"/> (UTC when null). Each tick is deferred once across all workers
    /// with <paramref name="args"/> (an empty object when null) plus <c>timestamp</c>, the tick's Unix
    /// time, which a <c>Timestamp</c> property of <typeparamref name="TArgs"/> receives.
    /// </summary>
    /// <param name="cron">The cron expression (see <see cref="CronExpression"/>).</param>
    /// <param name="periodicId">Tells several schedules of this task apart.</param>
    /// <param name="args">The arguments of every deferred job.</param>
    /// <param name="timeZone">An IANA (or Windows) time zone id.</param>
    /// <param name="options">Queue, priority, lock and queueing lock of the jobs.</param>
    /// <exception cref="FormatException">The expression is malformed (the message names it).</exception>
    /// <exception cref="ArgumentException">Unknown time zone, duplicate periodic id, or invalid options.</exception>
    public PeriodicSchedule Periodic(string cron, string periodicId = "", TArgs? args = default, string? timeZone = null, DeferOptions? options = null)
    {
        var node = args is null
            ? new System.Text.Json.Nodes.JsonObject()
            : System.Text.Json.JsonSerializer.SerializeToNode(args, JsonOptions) as System.Text.Json.Nodes.JsonObject
              ?? throw new ArgumentException("Periodic arguments must serialize to a JSON object.", nameof(args));
        return AddSchedule(cron, periodicId, timeZone, node, options);
    }

    /// <summary>Serializes arguments as they would be stored.</summary>
    public string Serialize(TArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return JsonArgs.ValidateSerialized(JsonSerializer.Serialize(args, App.Options.JsonSerializerOptions), App.Options.MaxArgsBytes);
    }

    /// <summary>Reads stored arguments into <typeparamref name="TArgs"/>.</summary>
    /// <exception cref="JsonException">The JSON does not fit the arguments type.</exception>
    public TArgs Deserialize(string argsJson) =>
        JsonSerializer.Deserialize<TArgs>(argsJson, App.Options.JsonSerializerOptions)
            ?? throw new JsonException($"The arguments of task '{Name}' deserialized to null.");

    internal override Task InvokeAsync(JobContext context) =>
        _body(Deserialize(context.Job.ArgsJson), context);

    private List<JobToDefer> BuildMany(IEnumerable<TArgs> args, DeferOptions? options)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (options?.IgnoreAlreadyEnqueued == true)
            throw new ArgumentException("IgnoreAlreadyEnqueued is not supported for batch defers: a batch is all or nothing.", nameof(options));
        // The options are the same for every job: validate and resolve them once.
        var jobs = new List<JobToDefer>(args.TryGetNonEnumeratedCount(out var count) ? count : 16);
        foreach (var a in args)
        {
            var json = Serialize(a);
            jobs.Add(jobs.Count == 0 ? BuildJob(json, options) : jobs[0] with { ArgsJson = json });
        }
        return jobs;
    }
}
