using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 5: worker A is paused (SIGSTOP) past the stalled timeout; worker B rescues and runs
/// its jobs; A is resumed while B runs them. A's late writes must not overwrite the newer state,
/// and a job A had claimed but not started must not run again in A.
/// </summary>
public sealed class S5LateWriteTests(ITestOutputHelper output)
{
    [Fact]
    public async Task S5_a_worker_resumed_after_being_presumed_dead_changes_nothing()
    {
        var settings = new WorkerSettings { Concurrency = 2, Prefetch = 1, StalledMs = 3000, HeartbeatMs = 500, RescueMs = 1000, Log = "information" };
        await using var db = await ScenarioDb.CreateAsync("s5");
        await using var app = db.CreateApp();
        var retried = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var noRetry = app.Task<LedgerArgs>(Contract.LedgerNoRetry, _ => { });
        // A's runs fail (first attempt): its late write would be 'failed' (x1) or a retry (x2).
        // B's runs succeed, and last long enough for A to wake up meanwhile.
        var x1 = await noRetry.DeferAsync(new LedgerArgs(2000, HonorCancel: false, FailBelowAttempt: 1, LaterMs: 8000));
        var x2 = await retried.DeferAsync(new LedgerArgs(2000, HonorCancel: false, FailBelowAttempt: 1, LaterMs: 8000));
        // Claimed by A into its buffer, never started there.
        var x3 = await retried.DeferAsync(new LedgerArgs(100, HonorCancel: false, LaterMs: 8000), new DeferOptions { Lock = "s5-lock" });

        var a = await db.StartWorkerAsync(settings.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () =>
                await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", a.Pid) == 2
                && await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 3,
            TimeSpan.FromSeconds(60), "A running x1 and x2, with x3 in its buffer");
        a.Signal(RelWorker.SIGSTOP);
        var pausedAt = await db.ClockAsync();

        var b = await db.StartWorkerAsync((settings with { Concurrency = 3, Prefetch = 0 }).ToArgs());
        await ScenarioDb.WaitUntilAsync(async () =>
                await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", b.Pid) == 3,
            TimeSpan.FromSeconds(60), "B running the three rescued jobs");
        var rescuedAfter = (await db.ClockAsync()) - pausedAt;
        var beforeResume = (await db.RowsAsync("SELECT id, status::text, attempts, worker_id FROM procrastinate_jobs ORDER BY id"))
            .Select(r => $"{r[0]}:{r[1]}/{r[2]}").ToList();
        a.Signal(RelWorker.SIGCONT);
        var resumedAt = await db.ClockAsync();

        await db.WaitAllFinalAsync(TimeSpan.FromSeconds(60));
        // A's outcomes reach the completer within a second of waking; let it try to write them.
        await ScenarioDb.WaitUntilAsync(() => Task.FromResult(a.Output.Split("its row changed since this worker claimed it").Length - 1 >= 2),
            TimeSpan.FromSeconds(30), "A reporting its stale outcomes");
        Assert.True(await a.StopAsync(TimeSpan.FromSeconds(30)) == 0, a.Tail(4000));
        Assert.True(await b.StopAsync(TimeSpan.FromSeconds(30)) == 0, b.Tail(4000));

        var presumed = new PresumedDead();
        presumed.Paused(a.Pid, pausedAt);
        var verdict = await Checks.CollectAsync(db, presumed, ServerLog.KilledClients);
        // 'scheduled' events left aside: the rescue's retry sets scheduled_at (to now), which writes one.
        var events = (await db.RowsAsync("SELECT job_id, string_agg(type::text, ',' ORDER BY id) FROM procrastinate_events WHERE type <> 'scheduled' GROUP BY job_id ORDER BY job_id"))
            .ToDictionary(r => (long)r[0]!, r => (string)r[1]!);
        var runs = await Checks.RunsAsync(db);
        var figures = verdict.Figures();
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["paused_s"] = Math.Round((resumedAt - pausedAt).TotalSeconds, 1);
        figures["rescued_and_restarted_by_b_after_s"] = Math.Round(rescuedAfter.TotalSeconds, 1);
        figures["before_resume"] = beforeResume;
        figures["events"] = events.ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.Value);
        figures["runs_of_x3"] = runs.Count(r => r.JobId == x3);
        figures["runs_of_x3_started_in_a_after_resume"] = runs.Count(r => r.JobId == x3 && r.Pid == a.Pid);
        figures["stale_outcomes_reported_by_a"] = a.Output.Split("its row changed since this worker claimed it").Length - 1;
        Figures.Record(output, "s5-late-write", figures);
        output.WriteLine(string.Join('\n', verdict.Violations()));
        output.WriteLine(a.Tail(5000));

        // A's late 'failed' and retry writes changed nothing: B's success stands, and no 'failed' event.
        Assert.Equal("deferred,started,deferred_for_retry,started,succeeded", events[x1]);
        Assert.Equal("deferred,started,deferred_for_retry,started,succeeded", events[x2]);
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", x1));
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", x2));
        // x3 never started in A before the pause: it may run once only, and never beside B's run of its lock.
        Assert.Equal(1, runs.Count(r => r.JobId == x3));
        verdict.AssertClean();
    }
}
