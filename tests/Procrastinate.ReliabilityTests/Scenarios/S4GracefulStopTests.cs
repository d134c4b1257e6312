using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 4: graceful stop (SIGTERM) with running and buffered jobs; a stop timeout shorter
/// than a job; a second SIGTERM. Jobs finish, are retried or end aborted; none stays 'doing'.
/// </summary>
public sealed class S4GracefulStopTests(ITestOutputHelper output)
{
    private static async Task<long> OpenRunsAsync(ScenarioDb db, int pid) =>
        await db.ScalarAsync<long>("SELECT count(*) FROM ledger WHERE pid = $1 AND ended_at IS NULL", pid);

    private static async Task<string> StatusAsync(ScenarioDb db, long id) =>
        await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    /// <summary>Runs what is left with a one-shot worker, then checks and records the scenario.</summary>
    private async Task<Verdict> FinishAndCheckAsync(ScenarioDb db, string scenario, Dictionary<string, object?> extra)
    {
        var rest = await db.StartWorkerAsync([.. new WorkerSettings().ToArgs(), "one_shot=true"]);
        Assert.True(await rest.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, rest.Tail(3000));
        var verdict = await Checks.CollectAsync(db, new PresumedDead(), []);
        var figures = verdict.Figures();
        foreach (var (k, v) in extra)
            figures[k] = v;
        Figures.Record(output, scenario, figures);
        verdict.AssertClean();
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
        return verdict;
    }

    [Fact]
    public async Task S4a_SIGTERM_lets_running_jobs_finish_and_gives_buffered_jobs_back()
    {
        await using var db = await ScenarioDb.CreateAsync("s4a");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await ledger.DeferManyAsync(Enumerable.Range(0, 6).Select(_ => new LedgerArgs(2500, HonorCancel: false)));
        var worker = await db.StartWorkerAsync(new WorkerSettings { Concurrency = 3, Prefetch = 3 }.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () => await OpenRunsAsync(db, worker.Pid) == 3
            && await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 6,
            TimeSpan.FromSeconds(60), "three jobs running and three buffered");

        var exit = await worker.StopAsync(TimeSpan.FromSeconds(30));

        Assert.True(exit == 0, worker.Tail(3000));
        var states = (await db.RowsAsync("SELECT status::text, attempts FROM procrastinate_jobs ORDER BY id"))
            .Select(r => $"{r[0]}/{r[1]}").ToList();
        // The running ones finished; the buffered ones went back to the queue, attempts unchanged.
        Assert.Equal(["succeeded/1", "succeeded/1", "succeeded/1", "todo/0", "todo/0", "todo/0"], states);
        var verdict = await FinishAndCheckAsync(db, "s4a-graceful-stop", new() { ["after_sigterm"] = states, ["exit_code"] = exit });
        Assert.Equal(6, verdict.Status("succeeded"));
        Assert.Equal(0, verdict.ExtraRuns);
    }

    [Fact]
    public async Task S4b_a_stop_timeout_shorter_than_the_jobs_aborts_them_into_a_retry_or_aborted()
    {
        await using var db = await ScenarioDb.CreateAsync("s4b");
        await using var app = db.CreateApp();
        var retried = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var noRetry = app.Task<LedgerArgs>(Contract.LedgerNoRetry, _ => { });
        var r1 = await retried.DeferAsync(new LedgerArgs(30_000, LaterMs: 10));
        var r2 = await retried.DeferAsync(new LedgerArgs(30_000, LaterMs: 10));
        var aborted = await noRetry.DeferAsync(new LedgerArgs(30_000));
        var stubborn = await retried.DeferAsync(new LedgerArgs(3000, HonorCancel: false));
        var worker = await db.StartWorkerAsync(new WorkerSettings { Concurrency = 4, Prefetch = 0, GracefulMs = 500 }.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () => await OpenRunsAsync(db, worker.Pid) == 4, TimeSpan.FromSeconds(60), "four jobs running");

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        var exit = await worker.StopAsync(TimeSpan.FromSeconds(30));
        var stopTook = stopping.Elapsed;

        Assert.True(exit == 0, worker.Tail(3000));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
        Assert.Equal("todo", await StatusAsync(db, r1));
        Assert.Equal("todo", await StatusAsync(db, r2));
        Assert.Equal("aborted", await StatusAsync(db, aborted));
        Assert.Equal("succeeded", await StatusAsync(db, stubborn));
        var verdict = await FinishAndCheckAsync(db, "s4b-stop-timeout", new()
        {
            ["graceful_timeout_ms"] = 500,
            ["stop_took_s"] = Math.Round(stopTook.TotalSeconds, 2),
            ["exit_code"] = exit,
        });
        Assert.Equal("succeeded", await StatusAsync(db, r1));
        Assert.Equal(2, verdict.ExtraRunsAfterFailure);
    }

    [Fact]
    public async Task S4c_a_second_SIGTERM_aborts_at_once()
    {
        await using var db = await ScenarioDb.CreateAsync("s4c");
        await using var app = db.CreateApp();
        var retried = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        var id = await retried.DeferAsync(new LedgerArgs(60_000, LaterMs: 10));
        var worker = await db.StartWorkerAsync(new WorkerSettings { Concurrency = 1, Prefetch = 0 }.ToArgs());
        await ScenarioDb.WaitUntilAsync(async () => await OpenRunsAsync(db, worker.Pid) == 1, TimeSpan.FromSeconds(60), "the job running");

        worker.Signal(RelWorker.SIGTERM);
        await Task.Delay(500);
        Assert.False(worker.HasExited);
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        worker.Signal(RelWorker.SIGTERM);
        var exit = await worker.WaitForExitAsync(TimeSpan.FromSeconds(15));

        Assert.True(exit == 0, worker.Tail(3000));
        Assert.Equal("todo", await StatusAsync(db, id));
        await FinishAndCheckAsync(db, "s4c-second-sigterm", new() { ["stop_after_second_signal_s"] = Math.Round(stopping.Elapsed.TotalSeconds, 2) });
        Assert.Equal("succeeded", await StatusAsync(db, id));
    }
}
