using System.Diagnostics;
using Npgsql;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 8: a long-running transaction holds back vacuum (its snapshot pins the xmin horizon)
/// while jobs flow at a steady rate; after it ends, throughput recovers and the backlog drains.
/// 20 s by default, a minute in soak mode.
/// </summary>
public sealed class S8LongTransactionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task S8_a_transaction_holding_back_vacuum_slows_nothing_for_good()
    {
        var hold = TimeSpan.FromSeconds(Soak.Pick(20, 60));
        var phase = TimeSpan.FromSeconds(Soak.Pick(6, 20));
        const int ratePerSecond = 100;
        await using var db = await ScenarioDb.CreateAsync("s8");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var workers = new List<RelWorker>();
        for (var i = 0; i < 2; i++)
            workers.Add(await db.StartWorkerAsync(new WorkerSettings { Concurrency = 4 }.ToArgs()));

        using var stop = new CancellationTokenSource();
        var produced = 0L;
        var producer = Task.Run(async () =>
        {
            var tick = Stopwatch.StartNew();
            var n = 0L;
            while (!stop.IsCancellationRequested)
            {
                var due = (long)(tick.Elapsed.TotalSeconds * ratePerSecond) - n;
                if (due > 0)
                {
                    await ledger.DeferManyAsync(Enumerable.Range(0, (int)due).Select(_ => new LedgerArgs(1)));
                    n += due;
                    Interlocked.Exchange(ref produced, n);
                }
                await Task.Delay(50);
            }
        });
        // Completions per second and backlog, sampled every second.
        var samples = new List<(double At, string Phase, long Done, long Backlog)>();
        var clock = Stopwatch.StartNew();
        var currentPhase = "warm-up";
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var row = (await db.RowsAsync("SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status IN ('todo', 'doing')) FROM procrastinate_jobs")).Single();
                lock (samples)
                    samples.Add((clock.Elapsed.TotalSeconds, currentPhase, (long)row[0]!, (long)row[1]!));
                await Task.Delay(1000);
            }
        });

        await Task.Delay(TimeSpan.FromSeconds(3));
        currentPhase = "baseline";
        await Task.Delay(phase);

        // The long transaction: a REPEATABLE READ snapshot pins the xmin horizon.
        await using (var holder = await db.DataSource.OpenConnectionAsync())
        {
            await using var tx = await holder.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
            await using (var cmd = new NpgsqlCommand("SELECT count(*) FROM procrastinate_jobs", holder, tx))
                await cmd.ExecuteScalarAsync();
            Assert.True(await db.ScalarAsync<bool>("SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE pid = $1", holder.ProcessID));
            currentPhase = "held";
            await Task.Delay(hold);
            await tx.CommitAsync();
        }
        var deadAtRelease = await db.ScalarAsync<long>("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'");
        currentPhase = "recovery";
        await Task.Delay(phase);
        currentPhase = "after";
        await Task.Delay(phase);
        await stop.CancelAsync();
        await producer;
        await sampler;
        await db.WaitAllFinalAsync(TimeSpan.FromSeconds(120));
        foreach (var w in workers)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        double Rate(string name)
        {
            var s = samples.Where(x => x.Phase == name).ToList();
            return s.Count < 2 ? 0 : Math.Round((s[^1].Done - s[0].Done) / (s[^1].At - s[0].At), 1);
        }
        long MaxBacklog(string name) => samples.Where(x => x.Phase == name).Select(x => x.Backlog).DefaultIfEmpty().Max();
        long EndBacklog(string name) => samples.Where(x => x.Phase == name).Select(x => x.Backlog).DefaultIfEmpty().Last();
        var verdict = await Checks.CollectAsync(db, new PresumedDead(), []);
        var figures = verdict.Figures();
        figures["rate_deferred_per_s"] = ratePerSecond;
        figures["hold_s"] = hold.TotalSeconds;
        figures["jobs_per_s_baseline_held_recovery_after"] = new[] { Rate("baseline"), Rate("held"), Rate("recovery"), Rate("after") };
        figures["max_backlog_baseline_held_recovery_after"] = new[] { MaxBacklog("baseline"), MaxBacklog("held"), MaxBacklog("recovery"), MaxBacklog("after") };
        figures["dead_tuples_at_release"] = deadAtRelease;
        figures["dead_tuples_at_end"] = await db.ScalarAsync<long>("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'");
        Figures.Record(output, "s8-long-transaction", figures);

        verdict.AssertClean();
        Assert.Equal(0, verdict.ExtraRuns);
        // Recovered: after the transaction ended, the workers keep up with the producers again
        // (the backlog is back to what it was before) and complete at least as fast as jobs arrive.
        Assert.True(EndBacklog("after") <= Math.Max(MaxBacklog("baseline"), ratePerSecond) * 2,
            $"backlog {EndBacklog("after")} after recovery (baseline max {MaxBacklog("baseline")})");
        Assert.True(Rate("after") >= 0.8 * Math.Min(ratePerSecond, Rate("baseline")), $"rate after {Rate("after")}/s, baseline {Rate("baseline")}/s");
    }
}
