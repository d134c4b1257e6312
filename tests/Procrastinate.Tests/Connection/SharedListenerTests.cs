using System.Diagnostics;
using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Connection;

/// <summary>
/// One LISTEN connection per process and connection string, shared by every worker (issue #8).
/// Each test connects with an application name of its own, which tells its connections apart in
/// <c>pg_stat_activity</c>; the listener's connection is the one whose last query is a LISTEN.
/// </summary>
public sealed class SharedListenerTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    // Generous: the CI machine has two busy cores.
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private string ConnectionStringFor(string applicationName) =>
        new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = applicationName }.ConnectionString;

    private Task<long> ListenConnectionCount(string applicationName) => db.ScalarAsync<long>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND query LIKE 'LISTEN %'",
        applicationName);

    private async Task<int> ListenerPid(string applicationName)
    {
        await WaitUntilAsync(async () => await ListenConnectionCount(applicationName) == 1, "one LISTEN connection");
        return await db.ScalarAsync<int>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND query LIKE 'LISTEN %'",
            applicationName);
    }

    private Task NotifyAsync(string channel, string payload) => db.ExecAsync("SELECT pg_notify($1, $2)", channel, payload);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > Generous)
                throw new TimeoutException($"Timed out after {Generous} waiting for {what}.");
            await Task.Delay(25);
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    /// <summary>What one subscriber saw, in order.</summary>
    private sealed class Probe
    {
        private readonly Lock _gate = new();
        private readonly List<(string Channel, string Payload)> _notifications = [];
        private readonly List<bool> _listening = [];

        public void OnNotification(string channel, string payload)
        {
            lock (_gate)
                _notifications.Add((channel, payload));
        }

        public void OnListening(bool listening)
        {
            lock (_gate)
                _listening.Add(listening);
        }

        public List<(string Channel, string Payload)> Notifications
        {
            get
            {
                lock (_gate)
                    return [.. _notifications];
            }
        }

        public List<bool> Listening
        {
            get
            {
                lock (_gate)
                    return [.. _listening];
            }
        }

        public bool Got(string payload) => Notifications.Any(n => n.Payload == payload);

        public bool IsListening => Listening is [.., true];
    }

    /// <summary>A running ListenAsync call and the means to end it.</summary>
    private sealed class Subscriber(NpgsqlConnector connector, IReadOnlyList<string> channels) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new();

        public Probe Probe { get; } = new();

        public Task Run { get; private set; } = Task.CompletedTask;

        public Subscriber Start()
        {
            Run = connector.ListenAsync(channels, Probe.OnNotification, Probe.OnListening, _cts.Token);
            return this;
        }

        public async Task StopAsync()
        {
            await _cts.CancelAsync();
            await Run.WaitAsync(Generous);
        }

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            try
            {
                await Run.WaitAsync(Generous);
            }
            finally
            {
                _cts.Dispose();
            }
        }
    }

    [Fact]
    public async Task Two_subscribers_of_two_apps_share_one_connection_and_get_only_their_channels()
    {
        const string name = "shl-two";
        // Two connectors on one connection string: several apps of one process on one database.
        await using var first = new NpgsqlConnector(ConnectionStringFor(name));
        await using var second = new NpgsqlConnector(ConnectionStringFor(name));
        await using var a = new Subscriber(first, ["shl_a", "shl \"quoted\" a"]).Start();
        await using var b = new Subscriber(second, ["shl_b"]).Start();
        await WaitUntilAsync(() => a.Probe.IsListening && b.Probe.IsListening, "both subscribers to listen");

        Assert.Equal(1L, await ListenConnectionCount(name));

        await NotifyAsync("shl_a", "a1");
        await NotifyAsync("shl \"quoted\" a", "a2");
        await NotifyAsync("shl_b", "b1");
        await WaitUntilAsync(() => a.Probe.Got("a1") && a.Probe.Got("a2") && b.Probe.Got("b1"), "the notifications");
        // One connection delivers in order: b1 came after a1 and a2, so b could only have seen
        // them by now, and a b1 for a would have come with the one for b.
        Assert.Equal([("shl_a", "a1"), ("shl \"quoted\" a", "a2")], a.Probe.Notifications);
        Assert.Equal([("shl_b", "b1")], b.Probe.Notifications);
        Assert.Equal([true], a.Probe.Listening);
        Assert.Equal([true], b.Probe.Listening);
        Assert.Equal(1L, await ListenConnectionCount(name));
    }

    [Fact]
    public async Task A_subscriber_joining_later_on_a_new_channel_is_listened_on_the_same_connection()
    {
        const string name = "shl-join";
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        await using var a = new Subscriber(connector, ["shl_join_a"]).Start();
        await WaitUntilAsync(() => a.Probe.IsListening, "the first subscriber to listen");
        var pid = await ListenerPid(name);

        await using var b = new Subscriber(connector, ["shl_join_b"]).Start();
        await WaitUntilAsync(() => b.Probe.IsListening, "the late subscriber to listen");
        await NotifyAsync("shl_join_b", "b1");
        await NotifyAsync("shl_join_a", "a1");
        await WaitUntilAsync(() => a.Probe.Got("a1") && b.Probe.Got("b1"), "the notifications");

        Assert.Equal([("shl_join_b", "b1")], b.Probe.Notifications);
        Assert.Equal([("shl_join_a", "a1")], a.Probe.Notifications);
        Assert.Equal([true], a.Probe.Listening);
        Assert.Equal(pid, await ListenerPid(name));

        // A third one on a channel already listened: told at once, same connection, and both get it.
        await using var c = new Subscriber(connector, ["shl_join_a"]).Start();
        await WaitUntilAsync(() => c.Probe.IsListening, "the third subscriber to listen");
        await NotifyAsync("shl_join_a", "a2");
        await WaitUntilAsync(() => a.Probe.Got("a2") && c.Probe.Got("a2"), "the shared channel's notification");
        Assert.Equal(pid, await ListenerPid(name));
    }

    [Fact]
    public async Task After_one_subscriber_leaves_the_other_still_receives()
    {
        const string name = "shl-leave";
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        await using var a = new Subscriber(connector, ["shl_leave_a"]).Start();
        await using var b = new Subscriber(connector, ["shl_leave_b"]).Start();
        await WaitUntilAsync(() => a.Probe.IsListening && b.Probe.IsListening, "both subscribers to listen");
        var pid = await ListenerPid(name);

        await b.StopAsync();
        var seenByB = b.Probe.Notifications.Count;

        await NotifyAsync("shl_leave_b", "b-after");
        await NotifyAsync("shl_leave_a", "a-after");
        await WaitUntilAsync(() => a.Probe.Got("a-after"), "the remaining subscriber's notification");
        Assert.Equal([("shl_leave_a", "a-after")], a.Probe.Notifications);
        Assert.Equal(seenByB, b.Probe.Notifications.Count);
        Assert.Equal(pid, await ListenerPid(name));
        Assert.True(SharedListener.IsRunning(connector.DataSource.ConnectionString));
    }

    [Fact]
    public async Task When_the_last_subscriber_leaves_the_listen_connection_is_closed()
    {
        const string name = "shl-close";
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        var a = new Subscriber(connector, ["shl_close_a"]).Start();
        var b = new Subscriber(connector, ["shl_close_b"]).Start();
        await WaitUntilAsync(() => a.Probe.IsListening && b.Probe.IsListening, "both subscribers to listen");
        var pid = await ListenerPid(name);

        await a.DisposeAsync();
        await b.DisposeAsync();

        var key = connector.DataSource.ConnectionString;
        Assert.False(SharedListener.IsRunning(key));
        await WaitUntilAsync(async () => await ListenConnectionCount(name) == 0, "no LISTEN connection");
        // The backend is gone, or back in the pool with nothing listened.
        var rows = await db.QueryAsync("SELECT query FROM pg_stat_activity WHERE pid = $1", pid);
        if (rows.Count > 0)
            Assert.Equal("UNLISTEN *", (string?)rows[0]["query"]);

        // A new subscriber starts a new listener.
        await using var c = new Subscriber(connector, ["shl_close_a"]).Start();
        await WaitUntilAsync(() => c.Probe.IsListening, "a new subscriber to listen");
        await NotifyAsync("shl_close_a", "again");
        await WaitUntilAsync(() => c.Probe.Got("again"), "the new listener's notification");
        Assert.Equal(1L, await ListenConnectionCount(name));
    }

    [Fact]
    public async Task A_terminated_listen_backend_is_reported_lost_then_listened_again()
    {
        const string name = "shl-kill";
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        await using var a = new Subscriber(connector, ["shl_kill_a"]).Start();
        await using var b = new Subscriber(connector, ["shl_kill_b"]).Start();
        await WaitUntilAsync(() => a.Probe.IsListening && b.Probe.IsListening, "both subscribers to listen");
        var pid = await ListenerPid(name);

        Assert.True(await db.ScalarAsync<bool>("SELECT pg_terminate_backend($1)", pid));

        await WaitUntilAsync(() => a.Probe.Listening is [true, .., false, true] && b.Probe.Listening is [true, .., false, true],
            "both subscribers to be told false, then true");
        var newPid = await ListenerPid(name);
        Assert.NotEqual(pid, newPid);
        await NotifyAsync("shl_kill_a", "a1");
        await NotifyAsync("shl_kill_b", "b1");
        await WaitUntilAsync(() => a.Probe.Got("a1") && b.Probe.Got("b1"), "notifications after the reconnection");
        Assert.Equal([("shl_kill_a", "a1")], a.Probe.Notifications);
        Assert.Equal([("shl_kill_b", "b1")], b.Probe.Notifications);
    }

    [Fact]
    public async Task Subscribers_coming_and_going_lose_no_notification_of_the_others_nor_the_connection()
    {
        // Each join or leave cancels the listener's WaitAsync: that must neither break the
        // connection nor drop a notification arriving meanwhile.
        const string name = "shl-churn";
        const int count = 1000;
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        await using var steady = new Subscriber(connector, ["shl_churn"]).Start();
        await WaitUntilAsync(() => steady.Probe.IsListening, "the steady subscriber to listen");
        var pid = await ListenerPid(name);

        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
                await NotifyAsync("shl_churn", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        var churns = 0;
        while (!sending.IsCompleted || churns < 50)
        {
            await using var passing = new Subscriber(connector, [$"shl_churn_{churns % 3}"]).Start();
            if (churns % 2 == 0)
                await WaitUntilAsync(() => passing.Probe.IsListening, "a passing subscriber to listen");
            churns++;
        }
        await sending;

        await WaitUntilAsync(() => steady.Probe.Notifications.Count >= count, $"{count} notifications");
        Assert.Equal(Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            steady.Probe.Notifications.Select(n => n.Payload));
        Assert.Equal([true], steady.Probe.Listening);
        Assert.Equal(pid, await ListenerPid(name));
    }

    [Fact]
    public async Task A_throwing_callback_does_not_keep_the_others_from_their_notifications()
    {
        const string name = "shl-throw";
        await using var connector = new NpgsqlConnector(ConnectionStringFor(name));
        using var cts = new CancellationTokenSource();
        var calls = 0;
        var throwing = connector.ListenAsync(["shl_throw"],
            (_, _) => { Interlocked.Increment(ref calls); throw new InvalidOperationException("subscriber bug"); },
            _ => throw new InvalidOperationException("subscriber bug"), cts.Token);
        await using var other = new Subscriber(connector, ["shl_throw"]).Start();
        await WaitUntilAsync(() => other.Probe.IsListening, "the other subscriber to listen");

        await NotifyAsync("shl_throw", "1");
        await NotifyAsync("shl_throw", "2");
        await WaitUntilAsync(() => other.Probe.Got("1") && other.Probe.Got("2"), "both notifications");
        Assert.Equal(2, Volatile.Read(ref calls));
        Assert.False(throwing.IsCompleted);

        await cts.CancelAsync();
        await throwing.WaitAsync(Generous);
    }

    [Fact]
    public async Task A_listener_whose_connectors_were_disposed_closes_its_connection_at_the_next_wake_up()
    {
        const string name = "shl-disposed";
        // What NpgsqlConnector passes, with a short keep-alive so the test does not wait 30 s.
        var dataSource = NpgsqlDataSource.Create(ConnectionStringFor(name));
        var disposed = false;
        var probe = new Probe();
        using var cts = new CancellationTokenSource();
        var run = SharedListener.ListenAsync(
            () => Volatile.Read(ref disposed) ? throw new ObjectDisposedException("connector") : dataSource,
            () => !Volatile.Read(ref disposed), TimeSpan.FromSeconds(1),
            ["shl_disposed"], probe.OnNotification, probe.OnListening, cts.Token);
        await WaitUntilAsync(() => probe.IsListening, "the subscriber to listen");
        var key = dataSource.ConnectionString;
        Assert.True(SharedListener.IsRunning(key));

        // Disposed without its subscription being cancelled.
        Volatile.Write(ref disposed, true);
        await dataSource.DisposeAsync();

        await WaitUntilAsync(() => !SharedListener.IsRunning(key), "the listener to stop");
        await WaitUntilAsync(async () => await ListenConnectionCount(name) == 0, "the LISTEN connection to close");
        Assert.False(run.IsCompleted); // the call itself still ends with its token only
        await cts.CancelAsync();
        await run.WaitAsync(Generous);
    }

    [Fact]
    public async Task Two_workers_of_one_app_share_one_listen_connection_and_both_wake_on_notifications()
    {
        const string name = "shl-workers";
        await using var app = new App(new NpgsqlConnector(ConnectionStringFor(name)));
        var started = new Dictionary<string, TaskCompletionSource>
        {
            ["q1"] = new(TaskCreationOptions.RunContinuationsAsynchronously),
            ["q2"] = new(TaskCreationOptions.RunContinuationsAsynchronously),
        };
        var one = app.Task<SumArgs>("shl.one", _ => started["q1"].TrySetResult(), queue: "q1");
        var two = app.Task<SumArgs>("shl.two", _ => started["q2"].TrySetResult(), queue: "q2");
        using var cts = new CancellationTokenSource();
        // Polling every minute: a job that starts within seconds was woken by its notification.
        var options = new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromMinutes(1) };
        var first = app.RunWorkerAsync(options with { Name = "shl-w1", Queues = ["q1"] }, cts.Token);
        var second = app.RunWorkerAsync(options with { Name = "shl-w2", Queues = ["q2"] }, cts.Token);
        try
        {
            await WaitUntilAsync(() => app.Workers.Count == 2 && app.Workers.All(w => w.IsListening), "both workers to listen");
            Assert.Equal(1L, await ListenConnectionCount(name));

            var deferredAt = Stopwatch.GetTimestamp();
            await one.DeferAsync(new SumArgs(1, 1));
            await two.DeferAsync(new SumArgs(2, 2));
            await Task.WhenAll(started["q1"].Task, started["q2"].Task).WaitAsync(Generous);
            var latency = Stopwatch.GetElapsedTime(deferredAt);
            Assert.True(latency < TimeSpan.FromSeconds(20), $"took {latency} (polling is 60 s)");
            Assert.Equal(1L, await ListenConnectionCount(name));
        }
        finally
        {
            await cts.CancelAsync();
            await Task.WhenAll(first, second).WaitAsync(Generous);
        }
        await WaitUntilAsync(async () => await ListenConnectionCount(name) == 0, "the LISTEN connection to close with the workers");
    }
}
