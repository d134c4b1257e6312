using System.Diagnostics;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 2: the server terminates every connection of the workers (pool, LISTEN, ledger) every
/// two seconds while jobs flow. Workers keep going, the listeners come back, and the defer-to-start
/// latency returns to normal: the polling interval is 30 s, so a low latency proves LISTEN is back.
/// </summary>
public sealed class S2TerminateBackendTests(ITestOutputHelper output)
{
    [Fact]
    public async Task S2_terminated_connections_and_listeners_come_back_and_nothing_is_lost()
    {
        var storm = TimeSpan.FromSeconds(Soak.Pick(20, 120));
        var every = TimeSpan.FromSeconds(2);
        var settings = new WorkerSettings { Concurrency = 4, StalledMs = 5000, HeartbeatMs = 500, RescueMs = 1000, PollMs = 30_000 };
        await using var db = await ScenarioDb.CreateAsync("s2");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });

        var workers = new List<RelWorker>();
        for (var i = 0; i < 3; i++)
            workers.Add(await db.StartWorkerAsync(settings.ToArgs()));
        await ScenarioDb.WaitUntilAsync(async () => (await db.ListeningPidsAsync()).Count == workers.Count, TimeSpan.FromSeconds(30), "three listeners");

        var before = await MeasureLatencyAsync(db, ledger, 20);

        // The storm: a producer defers a job every 20 ms; every 2 s every worker connection is terminated.
        var producing = Stopwatch.StartNew();
        var terminations = 0L;
        var listenerTerminations = 0L;
        var rounds = 0;
        var produced = 0;
        var producer = Task.Run(async () =>
        {
            var random = new Random(2);
            while (producing.Elapsed < storm)
            {
                await ledger.DeferAsync(new LedgerArgs(random.Next(5, 20)));
                produced++;
                await Task.Delay(20);
            }
        });
        while (producing.Elapsed < storm)
        {
            await Task.Delay(every);
            var killed = await db.RowsAsync("""
                SELECT pg_terminate_backend(pid), query LIKE 'LISTEN %'
                FROM pg_stat_activity
                WHERE datname = $1 AND (application_name LIKE 'relw-%' OR application_name LIKE 'relledger-%')
                """, db.Name);
            terminations += killed.Count(r => (bool)r[0]!);
            listenerTerminations += killed.Count(r => (bool)r[0]! && (bool)r[1]!);
            rounds++;
        }
        await producer;

        var listenersBack = await ScenarioDb.WaitUntilAsync(async () => (await db.ListeningPidsAsync()).SetEquals(workers.Select(w => w.Pid)),
            TimeSpan.FromSeconds(30), "every worker listening again");
        var drained = await db.WaitAllFinalAsync(TimeSpan.FromSeconds(120));
        var after = await MeasureLatencyAsync(db, ledger, 20);

        foreach (var w in workers)
            Assert.False(w.HasExited, $"worker {w.Pid} exited: {w.Tail(3000)}");
        foreach (var w in workers)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        var verdict = await Checks.CollectAsync(db, new PresumedDead(), ServerLog.TerminatedBackends);
        var figures = verdict.Figures();
        figures["workers"] = workers.Count;
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["storm_s"] = storm.TotalSeconds;
        figures["termination_rounds"] = rounds;
        figures["backends_terminated"] = terminations;
        figures["listen_connections_terminated"] = listenerTerminations;
        figures["jobs_deferred_during_storm"] = produced;
        figures["listeners_back_after_s"] = Math.Round(listenersBack.TotalSeconds, 2);
        figures["drained_after_storm_s"] = Math.Round(drained.TotalSeconds, 2);
        figures["latency_before_ms_p50_p95_max"] = before;
        figures["latency_after_ms_p50_p95_max"] = after;
        Figures.Record(output, "s2-terminate-backends", figures);

        verdict.AssertClean();
        Assert.Equal(0, verdict.ExtraRuns);
        Assert.Equal(verdict.Jobs, verdict.Status("succeeded"));
        Assert.True(listenerTerminations >= rounds, $"only {listenerTerminations} LISTEN connections terminated in {rounds} rounds");
        // Polling is every 30 s: starting within a second means a notification woke the worker.
        Assert.True(after[1] < 1000, $"latency after the storm p95 {after[1]} ms (before: {before[1]} ms)");
    }

    /// <summary>Defers <paramref name="count"/> jobs one at a time, 100 ms apart; defer-to-start latency p50, p95, max (ms, database clock).</summary>
    internal static async Task<double[]> MeasureLatencyAsync(ScenarioDb db, JobTask<LedgerArgs> ledger, int count)
    {
        var ids = new List<long>();
        for (var i = 0; i < count; i++)
        {
            ids.Add(await ledger.DeferAsync(new LedgerArgs(1)));
            await Task.Delay(100);
        }
        await ScenarioDb.WaitUntilAsync(async () => await db.ScalarAsync<long>("SELECT count(DISTINCT job_id) FROM ledger WHERE job_id = ANY($1)", ids.ToArray()) == count,
            TimeSpan.FromSeconds(90), "latency probes started");
        var latencies = (await db.RowsAsync("""
                SELECT extract(epoch FROM min(l.started_at) - e.at) * 1000
                FROM ledger l JOIN procrastinate_events e ON e.job_id = l.job_id AND e.type = 'deferred'
                WHERE l.job_id = ANY($1) GROUP BY l.job_id, e.at
                """, ids.ToArray()))
            .Select(r => Convert.ToDouble(r[0], System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        return [Math.Round(latencies[latencies.Count / 2], 1), Math.Round(latencies[(int)Math.Ceiling(latencies.Count * 0.95) - 1], 1), Math.Round(latencies[^1], 1)];
    }
}
