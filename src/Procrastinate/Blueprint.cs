using Procrastinate.Internal;
using Threading = System.Threading.Tasks;

namespace Procrastinate;

/// <summary>
/// A group of tasks defined apart from an app and added to one later, under a namespace
/// (<c>ns:name</c>); blueprints nest (<c>a:b:name</c>). An <see cref="App"/> is itself a blueprint.
/// </summary>
/// <remarks>A task of a blueprint can be deferred once the blueprint is added to an app.</remarks>
public class Blueprint
{
    /// <summary>The separator between a namespace and a name.</summary>
    public const char NamespaceSeparator = ':';

    private readonly Dictionary<string, JobTask> _tasksByName = new(StringComparer.Ordinal);
    private readonly List<JobTask> _tasks = [];
    private readonly Lock _registrationGate = new();
    private Blueprint? _parent;
    private App? _app;

    /// <summary>The tasks registered here (with their full names once attached).</summary>
    public IReadOnlyList<JobTask> Tasks
    {
        get
        {
            lock (_registrationGate)
                return [.. _tasks];
        }
    }

    /// <summary>
    /// Adds the tasks of <paramref name="blueprint"/> here, renaming each name and alias to
    /// <c><paramref name="namespace"/>:name</c>. A blueprint can be added once; it cannot take new tasks afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">The namespace is invalid, or a resulting name is already registered.</exception>
    /// <exception cref="InvalidOperationException">The blueprint was already added somewhere.</exception>
    public void AddBlueprint(Blueprint blueprint, string @namespace)
    {
        ArgumentNullException.ThrowIfNull(blueprint);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        if (_parent is not null)
            throw new InvalidOperationException("Add nested blueprints before adding this blueprint to an app.");
        if (@namespace.Contains(NamespaceSeparator, StringComparison.Ordinal))
            throw new ArgumentException($"A namespace cannot contain '{NamespaceSeparator}'; nest blueprints instead.", nameof(@namespace));
        if (ReferenceEquals(blueprint, this) || blueprint is App)
            throw new ArgumentException("An app or a blueprint cannot be added to itself or to another app.", nameof(blueprint));
        lock (blueprint._registrationGate)
        {
            if (blueprint._parent is not null)
                throw new InvalidOperationException("This blueprint was already added to an app or another blueprint.");
            var prefix = @namespace + NamespaceSeparator;
            var renamed = blueprint._tasks.Select(t => (Task: t, Name: prefix + t.Name, Aliases: t.Aliases.Select(a => prefix + a).ToList())).ToList();
            lock (_registrationGate)
            {
                foreach (var (_, name, aliases) in renamed)
                    foreach (var key in aliases.Prepend(name))
                    {
                        Names.ValidateTaskName(key, nameof(@namespace));
                        if (_tasksByName.ContainsKey(key))
                            throw new ArgumentException($"A task named '{key}' is already registered (as a name or an alias).", nameof(blueprint));
                    }
                foreach (var (task, name, aliases) in renamed)
                {
                    task.Name = name;
                    task.Aliases = aliases;
                    Add(task);
                }
            }
            blueprint._parent = this;
        }
        if (_app is { } app)
            foreach (var task in blueprint.Tasks)
                task.AttachTo(app);
    }

    /// <summary>Finds a task by name or alias.</summary>
    public JobTask? FindTask(string name)
    {
        lock (_registrationGate)
            return _tasksByName.GetValueOrDefault(name);
    }

    private protected void AttachTo(App app) => _app = app;

    // ---- Task registration -------------------------------------------------------------

    /// <summary>Registers a task with a synchronous body.</summary>
    /// <param name="name">The stable name stored with each job (at most 128 characters).</param>
    /// <param name="body">Runs each job, on a thread-pool thread (never on the fetcher's).</param>
    /// <param name="queue">Default queue (<c>default</c> when null); at most 40 bytes.</param>
    /// <param name="priority">Default priority; higher runs first.</param>
    /// <param name="lock">Default lock: jobs sharing it run one at a time.</param>
    /// <param name="queueingLock">Default queueing lock: at most one waiting job per value.</param>
    /// <param name="aliases">Other names that resolve to this task (for renames).</param>
    /// <param name="retry">What happens when a run throws; default: no retry.</param>
    /// <exception cref="ArgumentException">A name is invalid or already registered.</exception>
    public JobTask<TArgs> Task<TArgs>(string name, Action<TArgs> body, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Register<TArgs>(name, (a, _) => RunSync(() => body(a)), new(queue, priority, @lock, queueingLock, aliases, retry));
    }

    /// <summary>Registers a task with a synchronous body that reads its <see cref="JobContext"/>.</summary>
    /// <inheritdoc cref="Task{TArgs}(string, Action{TArgs}, string?, int, string?, string?, IEnumerable{string}?, RetryStrategy?)"/>
    public JobTask<TArgs> Task<TArgs>(string name, Action<TArgs, JobContext> body, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Register<TArgs>(name, (a, c) => RunSync(() => body(a, c)), new(queue, priority, @lock, queueingLock, aliases, retry));
    }

    /// <summary>Registers a task with an asynchronous body.</summary>
    /// <inheritdoc cref="Task{TArgs}(string, Action{TArgs}, string?, int, string?, string?, IEnumerable{string}?, RetryStrategy?)"/>
    public JobTask<TArgs> Task<TArgs>(string name, Func<TArgs, Threading.Task> body, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Register<TArgs>(name, (a, _) => body(a), new(queue, priority, @lock, queueingLock, aliases, retry));
    }

    /// <summary>Registers a task with an asynchronous body that reads its <see cref="JobContext"/>.</summary>
    /// <inheritdoc cref="Task{TArgs}(string, Action{TArgs}, string?, int, string?, string?, IEnumerable{string}?, RetryStrategy?)"/>
    public JobTask<TArgs> Task<TArgs>(string name, Func<TArgs, JobContext, Threading.Task> body, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Register(name, body, new(queue, priority, @lock, queueingLock, aliases, retry));
    }

    /// <summary>Registers a task with an asynchronous body taking the context and the job's cancellation token.</summary>
    /// <inheritdoc cref="Task{TArgs}(string, Action{TArgs}, string?, int, string?, string?, IEnumerable{string}?, RetryStrategy?)"/>
    public JobTask<TArgs> Task<TArgs>(string name, Func<TArgs, JobContext, CancellationToken, Threading.Task> body, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Register<TArgs>(name, (a, c) => body(a, c, c.CancellationToken), new(queue, priority, @lock, queueingLock, aliases, retry));
    }

    /// <summary>
    /// Registers a task written as a handler class. Each job gets an instance from
    /// <see cref="AppOptions.HandlerActivator"/> (a fresh DI scope with the hosting package).
    /// </summary>
    /// <inheritdoc cref="Task{TArgs}(string, Action{TArgs}, string?, int, string?, string?, IEnumerable{string}?, RetryStrategy?)"/>
    public JobTask<TArgs> Task<TArgs, THandler>(string name, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
        where THandler : IJobHandler<TArgs> =>
        Register<TArgs>(name, async (args, context) =>
        {
            var lease = context.App.Options.HandlerActivator.Activate(typeof(THandler), context);
            await using (lease.ConfigureAwait(false))
                await ((THandler)lease.Handler).HandleAsync(args, context, context.CancellationToken).ConfigureAwait(false);
        }, new(queue, priority, @lock, queueingLock, aliases, retry));

    /// <summary>
    /// Runs a synchronous body. The worker already runs each job on a thread-pool thread, so the
    /// body runs inline (no second hop); its exception becomes the task's.
    /// </summary>
    private static Threading.Task RunSync(Action action)
    {
        try
        {
            action();
            return Threading.Task.CompletedTask;
        }
        catch (Exception e)
        {
            return Threading.Task.FromException(e);
        }
    }


    private JobTask<TArgs> Register<TArgs>(string name, Func<TArgs, JobContext, Threading.Task> body, TaskDefaults defaults)
    {
        if (_parent is not null)
            throw new InvalidOperationException("This blueprint was already added to an app; register tasks before adding it.");
        var task = new JobTask<TArgs>(name, defaults, body);
        lock (_registrationGate)
        {
            foreach (var key in task.Aliases.Prepend(task.Name))
                if (_tasksByName.ContainsKey(key))
                    throw new ArgumentException($"A task named '{key}' is already registered (as a name or an alias).", nameof(name));
            Add(task);
        }
        if (_app is { } app)
            task.AttachTo(app);
        return task;
    }

    private void Add(JobTask task)
    {
        foreach (var key in task.Aliases.Prepend(task.Name))
            _tasksByName[key] = task;
        _tasks.Add(task);
    }
}
