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
        var restarts = Soak.Pick(1, 5);
        // The stalled timeout must exceed the outage: nobody can heartbeat while the server is down.
        var settings = new WorkerSettings { Concurrency = 4, StalledMs = 15_000, HeartbeatMs = 500, RescueMs = 1000, PollMs = 1000 };
        await using var db = await ScenarioDb.CreateAsync("s3");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await DeferMixAsync(ledger, total, seed: 3);
        // Long jobs, certainly running when the server goes away.
        await ledger.DeferManyAsync(Enumerable.Range(0, 12).Select(_ => new LedgerArgs(1500)), new DeferOptions { Priority = 1 });

        var workers = await StartWorkersAsync(db, settings, 3);
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
    /// PostgreSQL crashes mid-run (immediate shutdown: no checkpoint, WAL not yet written lost)
    /// and recovers. With durable claims (the default) every check holds and no job runs twice.
    /// With <c>DurableClaims = false</c> a claim's commit does not wait for the flush, so a crash
    /// may undo the claims of its last fraction of a second: their jobs wait again while the
    /// worker still runs the ones it holds. No job may be lost or left 'doing', and every extra
    /// run must follow a run that started within a second of the crash or after it (a job held in
    /// a worker's buffer starts after the restart); such runs may overlap, which is reported, not
    /// failed. The ledger's commits wait for the flush here (it must survive the crash).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task S3d_a_PostgreSQL_crash_mid_run_loses_no_job(bool durableClaims)
    {
        var total = Soak.Pick(3000, 20_000);
        var crashes = Soak.Pick(1, 3);
        var settings = new WorkerSettings
        {
            Concurrency = 4, StalledMs = 15_000, HeartbeatMs = 500, RescueMs = 1000, PollMs = 1000,
            LedgerSync = true, DurableClaims = durableClaims,
        };
        await using var db = await ScenarioDb.CreateAsync(durableClaims ? "s3d_durable" : "s3d");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await DeferMixAsync(ledger, total, seed: 4);

        var workers = await StartWorkersAsync(db, settings, 3);
        var presumedDead = new PresumedDead();
        var downtimes = new List<double>();
        var runningAtCrash = new List<long>();
        for (var c = 0; c < crashes; c++)
        {
            var threshold = total - (long)total * (c + 1) / (crashes + 2);
            await ScenarioDb.WaitUntilAsync(async () => await db.PendingAsync() <= threshold, TimeSpan.FromSeconds(180), "progress before a crash");
            runningAtCrash.Add(await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE ended_at IS NULL"));
            var crashedAt = await db.ClockAsync();
            downtimes.Add(Math.Round((await ReliabilityCluster.CrashAndRestartAsync()).TotalSeconds, 2));
            db.DataSource.Clear();
            ((NpgsqlConnector)app.Connector).DataSource.Clear();
            // On the database's clock, as the ledger's: from a second before the crash to 5 s after
            // the restart (a job held in a worker's buffer may start after it).
            if (!durableClaims)
                presumedDead.ServerCrashed(crashedAt - TimeSpan.FromSeconds(1), await db.ClockAsync() + TimeSpan.FromSeconds(5));
        }

        var drained = await db.WaitAllFinalAsync(TimeSpan.FromSeconds(Soak.Pick(180, 900)));
        foreach (var w in workers)
            Assert.False(w.HasExited, $"worker {w.Pid} exited: {w.Tail(3000)}");
        foreach (var w in workers)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        var verdict = await Checks.CollectAsync(db, presumedDead, ServerLog.Crash);
        var figures = verdict.Figures();
        figures["durable_claims"] = durableClaims;
        figures["workers"] = workers.Count;
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["crashes"] = crashes;
        figures["downtime_s"] = downtimes;
        figures["runs_in_progress_at_crash"] = runningAtCrash;
        figures["drained_after_crash_s"] = Math.Round(drained.TotalSeconds, 1);
        Figures.Record(output, durableClaims ? "s3d-crash-durable-claims" : "s3d-crash", figures);
        output.WriteLine(string.Join('\n', verdict.Violations()));

        Assert.Equal(verdict.Jobs, verdict.Status("succeeded"));
        if (durableClaims)
        {
            verdict.AssertClean();
            Assert.Equal(0, verdict.ExtraRuns);
        }
        else
        {
            Assert.Equal(0, verdict.Lost);
            Assert.Equal(0, verdict.Doing);
            Assert.Empty(verdict.UnjustifiedRuns);
            Assert.Empty(verdict.Anomalies);
            Assert.Empty(verdict.LogProblems);
        }
    }

    /// <summary>
    /// An outage longer than the stalled timeout: nobody can heartbeat while the server is down, so
    /// when it is back every running job looks stalled until its worker's next heartbeat. A live
    /// worker's jobs should not be run a second time: they were not running in a killed worker.
    /// Worker A rescues every 200 ms, worker B heartbeats every 2 s (both legal settings), so A's
    /// first rescue after the outage usually comes before B's first heartbeat.
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

        verdict.AssertClean();
    }

    /// <summary>
    /// After a restart, stalled jobs are still rescued: worker B is SIGKILLed once the server is
    /// back, and worker A (the only one rescuing) must put B's jobs back within the stalled timeout
    /// plus one rescue interval plus 5 s.
    /// </summary>
    [Fact]
    public async Task S3c_after_a_restart_the_rescue_still_works()
    {
        var rescuer = new WorkerSettings { Concurrency = 4, Prefetch = 0, StalledMs = 3000, HeartbeatMs = 500, RescueMs = 200 };
        var other = rescuer with { RescueMs = 60_000 };
        await using var db = await ScenarioDb.CreateAsync("s3c");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await ledger.DeferManyAsync(Enumerable.Range(0, 8).Select(_ => new LedgerArgs(20_000, HonorCancel: false, LaterMs: 100)));
        var a = await db.StartWorkerAsync(rescuer.ToArgs());
        var b = await db.StartWorkerAsync(other.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () =>
                await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", a.Pid) == 4
                && await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", b.Pid) == 4,
            TimeSpan.FromSeconds(60), "four jobs running in each worker");
        // Many dirty pages, so the shutdown checkpoint takes a moment (as on a busy server), while A
        // keeps trying to connect every 200 ms.
        await db.ExecAsync("CREATE TABLE ballast AS SELECT g, md5(g::text) AS m FROM generate_series(1, 300000) AS g");
        var down = await ReliabilityCluster.RestartAsync(TimeSpan.FromSeconds(5));
        db.DataSource.Clear();
        // Both workers heartbeat again (so nothing is stalled yet), then B dies.
        await ScenarioDb.WaitUntilAsync(async () => await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '1 second'") == 2,
            TimeSpan.FromSeconds(30), "both workers heartbeating after the restart");
        var held = (await db.RowsAsync("SELECT j.id FROM procrastinate_jobs j JOIN procrastinate_dotnet_workers d ON d.worker_id = j.worker_id WHERE d.process_id = $1 AND j.status = 'doing'", b.Pid))
            .Select(r => (long)r[0]!).ToArray();
        var killedAt = await db.ClockAsync();
        await b.KillAsync();
        var bound = rescuer.StalledTimeout + rescuer.RescueInterval + TimeSpan.FromSeconds(5);
        TimeSpan? rescuedAfter = null;
        try
        {
            rescuedAfter = await ScenarioDb.WaitUntilAsync(async () =>
                    await db.ScalarAsync<long>("SELECT count(DISTINCT job_id) FROM procrastinate_events WHERE type = 'deferred_for_retry' AND job_id = ANY($1)", held) == held.Length,
                bound + TimeSpan.FromSeconds(10), "B's jobs rescued by A");
        }
        catch (TimeoutException)
        {
        }
        Figures.Record(output, "s3c-rescue-after-restart", new Dictionary<string, object?>
        {
            ["outage_s"] = Math.Round(down.TotalSeconds, 2),
            ["jobs_held_by_killed_worker"] = held.Length,
            ["rescued_after_s"] = rescuedAfter is { } t ? Math.Round(t.TotalSeconds, 2) : null,
            ["bound_s"] = bound.TotalSeconds,
        });
        Assert.Equal(4, held.Length);
        Assert.True(rescuedAfter is { } r && r <= bound, $"B's jobs were not rescued within {bound.TotalSeconds} s of the kill (rescued after: {rescuedAfter?.TotalSeconds.ToString() ?? "never"}); killed at {killedAt:HH:mm:ss.fff}");
    }

    /// <summary>Short ledger jobs of 5-30 ms, 20 % of them in chains of 100 under one lock each.</summary>
    private static async Task DeferMixAsync(JobTask<LedgerArgs> ledger, int total, int seed)
    {
        var random = new Random(seed);
        for (var b = 0; b < total / 100; b++)
            await ledger.DeferManyAsync(Enumerable.Range(0, 100).Select(_ => new LedgerArgs(random.Next(5, 30))),
                b % 5 == 1 ? new DeferOptions { Lock = $"lock-{b}" } : null);
    }

    private static async Task<List<RelWorker>> StartWorkersAsync(ScenarioDb db, WorkerSettings settings, int count)
    {
        var workers = new List<RelWorker>();
        for (var i = 0; i < count; i++)
            workers.Add(await db.StartWorkerAsync(settings.ToArgs()));
        return workers;
    }
}
