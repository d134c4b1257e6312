using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>Captures log records with their structured state and active scopes.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    public sealed record Entry(LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> State, IReadOnlyDictionary<string, object?> Scope);

    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();
    public ConcurrentQueue<Entry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var fields = new Dictionary<string, object?>();
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (k, v) in pairs) fields[k] = v;
            var scope = new Dictionary<string, object?>();
            owner._scopes.ForEachScope((s, acc) =>
            {
                if (s is IEnumerable<KeyValuePair<string, object?>> kvs)
                    foreach (var (k, v) in kvs) acc[k] = v;
            }, scope);
            owner.Entries.Enqueue(new Entry(logLevel, eventId, formatter(state, exception), fields, scope));
        }
    }
}

public sealed class LoggingTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_retry_the_worker_wrote_is_not_reported_as_stale()
    {
        // retry_job used to call procrastinate_retry_job_v2 in the list of its own locking SELECT:
        // PostgreSQL ran the function, then found the row changed by it and returned no row, so
        // the worker reported each retry it had written as "rescued or retried elsewhere" (3008).
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        await using var app = db.CreateApp(new AppOptions { LoggerFactory = factory });
        var calls = 0;
        var task = app.Task<SumArgs>("retried_once",
            _ => { if (Interlocked.Increment(ref calls) == 1) throw new InvalidOperationException("first run fails"); },
            retry: RetryStrategy.Times(1));
        var id = await task.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false });

        Assert.Equal(2, calls);
        Assert.Equal(JobStatus.Succeeded, await app.Jobs.GetStatusAsync(id));
        // The only warning is the failed run's, with its retry (3004).
        Assert.Equal([3004], logs.Entries.Where(e => e.Level >= LogLevel.Warning).Select(e => e.EventId.Id));
    }

    [Fact]
    public async Task Every_record_carries_an_action_and_job_records_carry_the_jobs_fields()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        await using var app = db.CreateApp(new AppOptions { LoggerFactory = factory });
        var ok = app.Task<SumArgs>("logged", _ => { }, queue: "lq");
        var ko = app.Task<SumArgs>("logged_fail", _ => throw new InvalidOperationException("secret-free message"), queue: "lq");
        var okId = await ok.DeferAsync(new SumArgs(123456, 654321));
        await ko.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false });

        Assert.All(logs.Entries, e => Assert.True(e.State.ContainsKey("Action"), $"no action in '{e.Message}'"));
        var actions = logs.Entries.Select(e => (string)e.State["Action"]!).ToHashSet();
        Assert.Superset(new HashSet<string> { "job_defer", "start_worker", "start_job", "job_success", "job_error", "stop_worker" }, actions);

        var success = Assert.Single(logs.Entries, e => (string)e.State["Action"]! == "job_success");
        Assert.Equal(3002, success.EventId.Id);
        Assert.Equal(okId, success.Scope["job_id"]);
        Assert.Equal("logged", success.Scope["task_name"]);
        Assert.Equal("lq", success.Scope["queue_name"]);
        Assert.Equal(LogLevel.Error, Assert.Single(logs.Entries, e => (string)e.State["Action"]! == "job_error").Level);

        // Arguments stay out of the logs unless the user opts in.
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("123456", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Arguments_are_logged_when_the_user_opts_in()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        await using var app = db.CreateApp(new AppOptions { LoggerFactory = factory, LogArguments = true });
        var task = app.Task<SumArgs>("logged_args", _ => { });
        await task.DeferAsync(new SumArgs(123456, 1));
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false });
        Assert.Contains(logs.Entries, e => e.Message.Contains("123456", StringComparison.Ordinal));
    }
}
