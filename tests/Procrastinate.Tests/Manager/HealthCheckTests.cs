using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Manager;

public sealed class HealthCheckTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task A_reachable_database_with_the_schema_is_healthy()
    {
        await using var app = db.CreateApp();
        var status = await app.Health.CheckDatabaseAsync();
        Assert.True(status.IsHealthy, status.Description);
    }

    [Fact]
    public async Task A_database_without_the_schema_is_unhealthy()
    {
        var cs = await TestCluster.CreateDatabaseAsync("noschema", withSchema: false);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var status = await app.Health.CheckDatabaseAsync();
            Assert.False(status.IsHealthy);
            Assert.Contains("not installed", status.Description);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task An_unreachable_database_is_unhealthy()
    {
        await using var app = new App(new NpgsqlConnector("Host=127.0.0.1;Port=1;Timeout=2"));
        var status = await app.Health.CheckDatabaseAsync();
        Assert.False(status.IsHealthy);
        Assert.Contains("cannot be reached", status.Description);
    }

    [Fact]
    public async Task Worker_health_follows_the_heartbeat_of_the_workers_in_this_process()
    {
        var clock = new ManualOffsetClock();
        await using var app = db.CreateApp(new AppOptions { TimeProvider = clock });
        Assert.False(app.Health.CheckWorkers().IsHealthy);
        Assert.True(app.Health.CheckWorkers(requireWorker: false).IsHealthy);

        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }, cts.Token); // next heartbeat in 10 s
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (app.Workers.Count == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        var healthy = app.Health.CheckWorkers();
        Assert.True(healthy.IsHealthy, healthy.Description);

        // The clock jumps past the stalled timeout: the heartbeat looks stale until the next write.
        clock.Offset = TimeSpan.FromMinutes(5);
        var stale = app.Health.CheckWorkers();
        Assert.False(stale.IsHealthy);
        Assert.Contains("stale", stale.Description);
        await cts.CancelAsync();
        await run;
        Assert.Empty(app.Workers);
    }

    private sealed class ManualOffsetClock : TimeProvider
    {
        public TimeSpan Offset { get; set; }

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Offset;
    }
}
