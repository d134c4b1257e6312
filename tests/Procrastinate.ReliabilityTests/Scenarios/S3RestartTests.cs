using System.Diagnostics;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 3: PostgreSQL is restarted mid-run (fast shutdown: every session is terminated).
/// Workers survive, reconnect (pool and LISTEN) and finish everything, with no extra run.
/// </summary>
public sealed class S3RestartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task S3_a_PostgreSQL_restart_mid_run_is_survived_and_everything_finishes()
    {
        var total = Soak.Pick(3000, 20_000);
        // 20 % of the jobs in chains of 100 under one lock each.
        var restarts = Soak.Pick(1, 5);
        // The stalled timeout must exceed the outage: nobody can heartbeat while the server is down.
        var settings = new WorkerSettings { Concurrency = 4, StalledMs = 15_000, HeartbeatMs = 500, RescueMs = 1000, PollMs = 1000 };
        await using var db = await ScenarioDb.CreateAsync("s3");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var random = new Random(3);
        for (var b = 0; b < total / 100; b++)
            await ledger.DeferManyAsync(Enumerable.Range(0, 100).Select(_ => new LedgerArgs(random.Next(5, 30))),
                b % 5 == 1 ? new DeferOptions { Lock = $"lock-{b}" } : null);
        // Long jobs, certainly running when the server goes away.
        await ledger.DeferManyAsync(Enumerable.Range(0, 12).Select(_ => new LedgerArgs(1500)), new DeferOptions { Priority = 1 });

        var workers = new List<RelWorker>();
        for (var i = 0; i < 3; i++)
            workers.Add(await db.StartWorkerAsync(settings.ToArgs()));
        var watch = Stopwatch.StartNew();
        var downtimes = new List<double>();
        var runningAtRestart = new List<long>();
        for (var r = 0; r < restarts; r++)
        {
            var threshold = total - (long)total * (r + 1) / (restarts + 2);
            await ScenarioDb.WaitUntilAsync(async () => await db.PendingAsync() <= threshold, TimeSpan.FromSeconds(180), "progress before a restart");
            runningAtRestart.Add(await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE ended_at IS NULL"));
            downtimes.Add(Math.Round((await ReliabilityCluster.RestartAsync(TimeSpan.Zero)).TotalSeconds, 2));
            db.DataSource.Clear();
            ((NpgsqlConnector)app.Connector).DataSource.Clear();
        }
        var restartedAt = watch.Elapsed;

        var listenersBack = await ScenarioDb.WaitUntilAsync(async () => (await db.ListeningPidsAsync()).SetEquals(workers.Select(w => w.Pid)),
            TimeSpan.FromSeconds(60), "every worker listening again after the restart");
        var drained = await db.WaitAllFinalAsync(TimeSpan.FromSeconds(Soak.Pick(180, 900)));
        foreach (var w in workers)
            Assert.False(w.HasExited, $"worker {w.Pid} exited: {w.Tail(3000)}");
        foreach (var w in workers)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        var verdict = await Checks.CollectAsync(db, new PresumedDead(), ServerLog.Restart);
        var figures = verdict.Figures();
        figures["workers"] = workers.Count;
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["restarts"] = restarts;
        figures["downtime_s"] = downtimes;
        figures["runs_in_progress_at_restart"] = runningAtRestart;
        figures["listeners_back_after_s"] = Math.Round(listenersBack.TotalSeconds, 2);
        figures["drained_after_restart_s"] = Math.Round(drained.TotalSeconds, 1);
        figures["total_s"] = Math.Round((restartedAt + listenersBack + drained).TotalSeconds, 1);
        Figures.Record(output, "s3-restart", figures);

        verdict.AssertClean();
        Assert.Equal(0, verdict.ExtraRuns);
        Assert.Equal(verdict.Jobs, verdict.Status("succeeded"));
    }

    /// <summary>
    /// An outage longer than the stalled timeout: nobody can heartbeat while the server is down, so
    /// when it is back every running job looks stalled until its worker's next heartbeat. A live
    /// worker's jobs should not be run a second time: they were not running in a killed worker.
    /// Worker A rescues every 200 ms, worker B heartbeats every 2 s (both valid settings), which
    /// makes the order deterministic: A's rescue runs before B's first heartbeat after the outage.
    /// </summary>
    [Fact]
    public async Task S3b_an_outage_longer_than_the_stalled_timeout_does_not_run_live_jobs_twice()
    {
        var rescuer = new WorkerSettings { Concurrency = 4, Prefetch = 0, StalledMs = 3000, HeartbeatMs = 500, RescueMs = 200 };
        var slowBeat = rescuer with { HeartbeatMs = 2000, RescueMs = 60_000 };
        var outage = TimeSpan.FromSeconds(5);
        await using var db = await ScenarioDb.CreateAsync("s3b");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await ledger.DeferManyAsync(Enumerable.Range(0, 8).Select(_ => new LedgerArgs(12_000, HonorCancel: false, LaterMs: 100)));

        var a = await db.StartWorkerAsync(rescuer.ToArgs());
        var b = await db.StartWorkerAsync(slowBeat.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () =>
                await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", a.Pid) == 4
                && await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", b.Pid) == 4,
            TimeSpan.FromSeconds(60), "four jobs running in each worker");
        var down = await ReliabilityCluster.RestartAsync(outage);
        db.DataSource.Clear();
        await db.WaitAllFinalAsync(TimeSpan.FromSeconds(120));
        Assert.False(a.HasExited || b.HasExited, "a worker died");
        Assert.True(await a.StopAsync(TimeSpan.FromSeconds(30)) == 0, a.Tail(3000));
        Assert.True(await b.StopAsync(TimeSpan.FromSeconds(30)) == 0, b.Tail(3000));

        var verdict = await Checks.CollectAsync(db, new PresumedDead(), ServerLog.Restart);
        var figures = verdict.Figures();
        figures["worker_a_settings"] = string.Join(' ', rescuer.ToArgs());
        figures["worker_b_settings"] = string.Join(' ', slowBeat.ToArgs());
        figures["outage_s"] = Math.Round(down.TotalSeconds, 2);
        figures["rescued_jobs"] = await db.ScalarAsync<long>("SELECT count(DISTINCT job_id) FROM procrastinate_events WHERE type = 'deferred_for_retry'");
        Figures.Record(output, "s3b-long-outage", figures);
        output.WriteLine(string.Join('\n', verdict.Violations()));
        output.WriteLine(a.Tail(3000));

        verdict.AssertClean();
    }
}
