using System.Collections.Concurrent;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Periodic;

public sealed record TickArgs(long Timestamp);

public sealed record ReportArgs(string Name, long Timestamp = 0);

public sealed class PeriodicTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static WorkerOptions Options => new() { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromMilliseconds(500) };

    private async Task<List<long>> Ticks(string task) =>
        [.. (await db.QueryAsync("SELECT (args->>'timestamp')::bigint AS t FROM procrastinate_jobs WHERE task_name = $1 ORDER BY 1", task)).Select(r => (long)r["t"]!)];

    private static void AssertContiguousOnce(List<long> ticks, long step = 1)
    {
        Assert.Equal(ticks.Count, ticks.Distinct().Count());
        for (var i = 1; i < ticks.Count; i++)
            Assert.True(ticks[i] - ticks[i - 1] == step, $"gap between ticks {ticks[i - 1]} and {ticks[i]}");
    }

    [Fact]
    public async Task Four_workers_defer_each_tick_once_and_a_worker_starting_after_a_gap_catches_up_once()
    {
        var apps = Enumerable.Range(0, 4).Select(_ => db.CreateApp()).ToList();
        foreach (var app in apps)
            app.Task<TickArgs>("every_second", _ => { }).Periodic("* * * * * *");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await Task.WhenAll(apps.Select(app => app.RunWorkerAsync(Options, cts.Token)));

        var ticks = await Ticks("every_second");
        Assert.InRange(ticks.Count, 55, 62);
        AssertContiguousOnce(ticks);
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT defer_timestamp FROM procrastinate_periodic_defers GROUP BY 1 HAVING count(*) > 1) d"));

        // A worker that starts 5 minutes later (its clock says so) catches the missed ticks up, once each.
        var lastBefore = ticks[^1];
        await using var late = db.CreateApp(new AppOptions { TimeProvider = new OffsetTimeProvider(TimeSpan.FromMinutes(5)) });
        late.Task<TickArgs>("every_second", _ => { }).Periodic("* * * * * *");
        var startedAt = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(4)))
            await late.RunWorkerAsync(Options with { Concurrency = 20 }, cts.Token);

        var after = await Ticks("every_second");
        AssertContiguousOnce(after);
        Assert.Equal(lastBefore + 1, after[ticks.Count]);
        Assert.True(after[^1] >= startedAt, $"caught up to {after[^1]}, expected at least {startedAt}");
        Assert.InRange(after.Count - ticks.Count, 300, 312);
        foreach (var app in apps)
            await app.DisposeAsync();
    }

    [Fact]
    public async Task A_new_schedule_starts_with_its_most_recent_tick_only()
    {
        await using var app = db.CreateApp();
        app.Task<TickArgs>("every_minute", _ => { }).Periodic("* * * * *");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            await app.RunWorkerAsync(Options, cts.Token);
        var end = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var ticks = await Ticks("every_minute");
        // The most recent tick at start, and no older one; a minute that began during the run
        // adds its own tick.
        var tick = ticks[0];
        Assert.Equal(0, tick % 60);
        Assert.InRange(now - tick, 0, 61);
        if (ticks.Count > 1)
            Assert.True(ticks is [_, var next] && next == tick + 60 && next <= end, $"ticks {string.Join(", ", ticks)} in a run from {now} to {end}");
    }

    [Fact]
    public async Task Ticks_older_than_the_maximum_delay_are_skipped()
    {
        await using var app = db.CreateApp(new AppOptions { PeriodicMaxDelay = TimeSpan.FromSeconds(60) });
        app.Task<TickArgs>("every_10s", _ => { }).Periodic("* * * * * */10");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var old = now - now % 10 - 1000;
        // As if the schedule last ran 1000 s ago.
        await db.ExecAsync("INSERT INTO procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp) VALUES ('every_10s', '', $1)", old);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            await app.RunWorkerAsync(Options, cts.Token);
        var ticks = await Ticks("every_10s");
        AssertContiguousOnce(ticks, 10);
        Assert.True(ticks[0] >= now - 61, $"first tick {now - ticks[0]} s old");
        Assert.InRange(ticks.Count, 6, 8);
    }

    [Fact]
    public async Task The_task_receives_the_tick_as_timestamp_with_its_configured_arguments()
    {
        await using var app = db.CreateApp();
        var seen = new ConcurrentBag<ReportArgs>();
        var report = app.Task<ReportArgs>("report", a => seen.Add(a));
        report.Periodic("* * * * * *", periodicId: "daily-sales", args: new ReportArgs("sales", Timestamp: 42),
            options: new DeferOptions { Queue = "reports", Priority = 3 });
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
            await app.RunWorkerAsync(Options, cts.Token);

        Assert.NotEmpty(seen);
        Assert.All(seen, a => Assert.Equal("sales", a.Name));
        Assert.All(seen, a => Assert.NotEqual(42, a.Timestamp));
        var rows = await db.QueryAsync("""
            SELECT j.queue_name, j.priority, (j.args->>'timestamp')::bigint AS ts, d.defer_timestamp, d.periodic_id
            FROM procrastinate_jobs j JOIN procrastinate_periodic_defers d ON d.job_id = j.id
            """);
        var row = rows[^1];
        Assert.Equal(("reports", 3, "daily-sales"), ((string)row["queue_name"]!, (int)row["priority"]!, (string)row["periodic_id"]!));
        Assert.Equal(row["ts"], row["defer_timestamp"]);
    }

    [Fact]
    public async Task A_tick_already_deferred_by_Python_is_not_deferred_again()
    {
        await using var app = db.CreateApp();
        app.Task<TickArgs>("shared_tick", _ => { }).Periodic("* * * * *");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var tick = now - now % 60;
        // What a Python worker sends for that tick (COMPAT.md 3.15).
        await db.ScalarAsync<long>(
            "SELECT procrastinate_defer_periodic_job_v2('default', NULL, NULL, 'shared_tick', 0, '', $1, jsonb_build_object('timestamp', $1))", tick);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            await app.RunWorkerAsync(Options, cts.Token);
        var ticks = await Ticks("shared_tick");
        Assert.Equal(ticks.Count, ticks.Distinct().Count());
        Assert.Contains(tick, ticks);
    }

    [Fact]
    public async Task A_tick_whose_queueing_lock_is_taken_is_skipped_and_the_worker_goes_on()
    {
        await using var app = db.CreateApp();
        var task = app.Task<TickArgs>("locked_tick", _ => { });
        task.Periodic("* * * * * *", options: new DeferOptions { QueueingLock = "pq", Queue = "parked" });
        await app.DeferAsync("locked_tick", """{"timestamp": 0}""", new DeferOptions { QueueingLock = "pq", Queue = "parked" });
        var other = app.Task<TickArgs>("free_tick", _ => { });
        other.Periodic("* * * * * *");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
            await app.RunWorkerAsync(Options with { Queues = ["default"] }, cts.Token);
        Assert.Equal([0L], await Ticks("locked_tick"));
        Assert.True((await Ticks("free_tick")).Count >= 2);
    }

    [Fact]
    public void Bad_schedules_are_refused_at_registration()
    {
        using var app = new App(new NpgsqlConnector("Host=localhost"));
        var task = app.Task<TickArgs>("t", _ => { });
        Assert.Contains("'61 * * * *'", Assert.Throws<FormatException>(() => task.Periodic("61 * * * *")).Message);
        Assert.Contains("Nowhere/City", Assert.Throws<ArgumentException>(() => task.Periodic("* * * * *", timeZone: "Nowhere/City")).Message);
        task.Periodic("0 * * * *", "hourly");
        Assert.Contains("already has a schedule", Assert.Throws<ArgumentException>(() => task.Periodic("5 * * * *", "hourly")).Message);
        Assert.Throws<ArgumentException>(() => task.Periodic("* * * * *", "x", options: new DeferOptions { ScheduleIn = TimeSpan.FromSeconds(1) }));
        Assert.Throws<ArgumentException>(() => task.Periodic("* * * * *", new string('p', 129)));
        Assert.Throws<ArgumentException>(() => task.Periodic("* * * * *", "y", options: new DeferOptions { Queue = new string('q', 41) }));
        Assert.Single(task.Schedules);
    }
}
