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
        return [.. args.Select(a => BuildJob(Serialize(a), options))];
    }
}
