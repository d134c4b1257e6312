using System.Collections.Concurrent;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 7: poison jobs (one always throws; others crash the process by stack overflow,
/// Environment.Exit and fail-fast) among ordinary jobs. Workers run with
/// <c>StalledJobs = RetryPerStrategy</c>, and a supervisor restarts crashed processes. The other
/// jobs all succeed; each poison job ends 'failed' after its retries.
/// </summary>
public sealed class S7PoisonJobTests(ITestOutputHelper output)
{
    [Fact]
    public async Task S7_poison_jobs_end_failed_after_their_retries_and_do_not_stop_the_others()
    {
        var settings = new WorkerSettings { Concurrency = 4, StalledMs = 2000, HeartbeatMs = 400, RescueMs = 500, StalledPolicy = "retry_per_strategy" };
        await using var db = await ScenarioDb.CreateAsync("s7");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var poisonThrow = app.Task<LedgerArgs>(Contract.PoisonThrow, _ => { });
        var poisonCrash = app.Task<CrashArgs>(Contract.PoisonCrash, _ => { });
        var random = new Random(7);
        var normal = await ledger.DeferManyAsync(Enumerable.Range(0, Soak.Pick(400, 4000)).Select(_ => new LedgerArgs(random.Next(10, 50))));
        // One lock for the poison jobs: each crash job crashes a process of its own, so every crash
        // is observed; and the throwing job never waits in the buffer of a process that a crash
        // job is about to kill (its run would then be rescued, an attempt spent, before its
        // ledger row was written: it failed that way once in a loaded run).
        var poisonLock = new DeferOptions { Lock = "poison-crash" };
        var thrower = await poisonThrow.DeferAsync(new LedgerArgs(), poisonLock);
        var crashers = new Dictionary<string, long>();
        foreach (var mode in new[] { "stackoverflow", "exit", "failfast" })
            crashers[mode] = await poisonCrash.DeferAsync(new CrashArgs(mode), poisonLock);

        var pool = new List<RelWorker>();
        for (var i = 0; i < 3; i++)
            pool.Add(await db.StartWorkerAsync(settings.ToArgs()));
        var presumed = new PresumedDead();
        var exits = new ConcurrentDictionary<int, int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(Soak.Pick(180, 900));
        while (await db.PendingAsync() > 0)
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"not finished: {await db.PendingAsync()} jobs pending");
            foreach (var dead in pool.Where(w => w.HasExited).ToList())
            {
                exits[dead.Pid] = dead.ExitCode!.Value;
                presumed.Killed(dead.Pid);
                pool.Remove(dead);
                pool.Add(await db.StartWorkerAsync(settings.ToArgs()));
            }
            await Task.Delay(100);
        }
        foreach (var w in pool)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        var runs = await Checks.RunsAsync(db);
        var verdict = await Checks.CollectAsync(db, presumed, ServerLog.KilledClients);
        var figures = verdict.Figures();
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["ordinary_jobs"] = normal.Count;
        figures["worker_crashes"] = exits.Count;
        figures["crash_exit_codes"] = exits.Values.GroupBy(c => c).ToDictionary(g => g.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), g => g.Count());
        var poison = new Dictionary<string, object?>();
        foreach (var (name, id) in crashers.Append(new("throw", thrower)))
            poison[name] = new
            {
                status = await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id),
                attempts = await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id),
                runs = runs.Count(r => r.JobId == id),
                distinct_pids = runs.Where(r => r.JobId == id).Select(r => r.Pid).Distinct().Count(),
            };
        figures["poison_jobs"] = poison;
        Figures.Record(output, "s7-poison", figures);

        var runsPerPoison = Contract.PoisonRetries + 1;
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", thrower));
        Assert.Equal(runsPerPoison, runs.Count(r => r.JobId == thrower));
        foreach (var (mode, id) in crashers)
        {
            // Failed once its retries were used up: each rescue of a crashed run counts as an attempt.
            Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
            Assert.Equal(runsPerPoison, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id));
            // Every run crashed its process, a different one each time.
            var crashRuns = runs.Where(r => r.JobId == id).ToList();
            Assert.Equal(runsPerPoison, crashRuns.Count);
            Assert.Equal(runsPerPoison, crashRuns.Select(r => r.Pid).Distinct().Count());
            Assert.All(crashRuns, r => Assert.True(exits.ContainsKey(r.Pid), $"{mode}: pid {r.Pid} did not crash"));
        }
        Assert.Equal(3 * runsPerPoison, exits.Count);
        Assert.Equal(normal.Count, (int)await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY($1) AND status = 'succeeded'", normal.ToArray()));
        verdict.AssertClean();
    }
}
