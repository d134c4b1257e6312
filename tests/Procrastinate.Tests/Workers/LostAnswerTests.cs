using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// A connection lost after PostgreSQL committed a statement, before its answer came back
/// (AnswerLosingProxy): a claim whose jobs the worker never saw, a completion written twice, a
/// defer that failed but inserted its job. Both layouts: their claim and completion statements differ.
/// </summary>
public abstract class LostAnswerTests<TFixture>(TFixture db) : IClassFixture<TFixture>, IAsyncLifetime
    where TFixture : DatabaseFixture
{
    // In the claim statement only (queries.sql, fetch_jobs), and in the completion only (finish_jobs).
    private const string ClaimMarker = "claimed AS (";
    private const string FinishMarker = "AS t(id, end_status, attempts, delete_job)";
    private const string DeferOrGetMarker = "SELECT id, true AS inserted FROM inserted"; // defer_job_or_get_existing

    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task The_jobs_of_a_claim_whose_answer_was_lost_run_once()
    {
        await using var rig = new Rig(db.ConnectionString);
        var (proxy, logs, app) = (rig.Proxy, rig.Logs, rig.App);
        var runs = new ConcurrentDictionary<long, int>();
        var task = app.Task<SumArgs>("lost_claim", (_, ctx) => runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1));
        var ids = await task.DeferManyAsync([new SumArgs(1, 0), new SumArgs(2, 0), new SumArgs(3, 0)]);
        proxy.LoseNextAnswerTo(ClaimMarker);

        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, Concurrency = 4, FetchJobPollingInterval = TimeSpan.FromSeconds(1) }, cts.Token);
        await proxy.AnswerLost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // The lost claim committed: its jobs were 'doing' under the worker before it could know.
        var succeeded = await AllSucceededAsync(ids);
        await cts.CancelAsync();
        await run;

        Assert.True(succeeded, "the jobs of the lost claim did not end: " + string.Join(", ",
            (await db.QueryAsync("SELECT id, status::text AS status, worker_id FROM procrastinate_jobs ORDER BY id")).Select(r => $"{r["id"]} {r["status"]} {r["worker_id"]}")));
        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(ids.Order(), runs.Keys.Order());
        Assert.All(runs.Values, n => Assert.Equal(1, n));
        var adopted = Assert.Single(logs.Entries, e => e.EventId.Id == 2014);
        Assert.Equal(ids.Count, adopted.State["Count"]);
        // One claim took them, the lost one: no job was claimed a second time.
        Assert.Equal(ids.Count, await db.ScalarAsync<long>(
            EventCount("started")));
    }

    [Fact]
    public async Task A_busy_worker_runs_the_jobs_of_a_lost_claim_once_and_no_job_that_ended_here_twice()
    {
        // The lost claim comes back (failed) while the worker holds jobs, runs others and has
        // outcomes to write (two claims may be on their way at once here): the look must not
        // take the jobs that ended here, still 'doing' until written, for the lost claim's.
        // Without the wait for the completer (AdoptOrphanedJobsAsync) it fails: jobs run twice.
        await using var rig = new Rig(db.ConnectionString);
        var (proxy, logs, app) = (rig.Proxy, rig.Logs, rig.App);
        var runs = new ConcurrentDictionary<long, int>();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("lost_busy", async (_, ctx) =>
        {
            runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1);
            started.TrySetResult();
            // Runs of different lengths: when the worker looks for the lost claim's jobs, 200 ms
            // after it failed, jobs are still ending, some of them with their outcomes unwritten.
            await Task.Delay(TimeSpan.FromMilliseconds(20 + ctx.Job.Id % 23 * 15));
        });
        var ids = await task.DeferManyAsync(Enumerable.Range(0, 1500).Select(i => new SumArgs(i, 0)));

        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false, Concurrency = 100, PrefetchJobs = 100, ClaimsInFlight = 2, FetchJobPollingInterval = TimeSpan.FromSeconds(1),
        }, cts.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        proxy.LoseNextAnswerTo(ClaimMarker);
        await proxy.AnswerLost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // Hold the completions back for a while (row locks on every running job), so that when the
        // worker looks, jobs that ended here are still 'doing' in the database with their outcomes
        // unwritten: they must not be taken for the lost claim's.
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await using (var locks = new Npgsql.NpgsqlCommand(
                "SELECT count(*) FROM (SELECT id FROM procrastinate_jobs WHERE status = 'doing' FOR UPDATE) AS held", connection, tx))
                Assert.True((long)(await locks.ExecuteScalarAsync())! > 0);
            await Task.Delay(1500);
            await tx.RollbackAsync();
        }
        var done = await AllSucceededAsync(ids);
        await cts.CancelAsync();
        await run;

        Assert.True(done, "not every job ended: " + await StatusCountsAsync());
        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(ids.Count, runs.Count);
        Assert.DoesNotContain(runs, r => r.Value != 1);
        var adopted = Assert.Single(logs.Entries, e => e.EventId.Id == 2014);
        Assert.True((int)adopted.State["Count"]! > 0);
    }

    [Fact]
    public async Task A_claim_on_its_way_when_another_was_lost_is_not_taken_for_the_lost_ones()
    {
        // Two claims on their way at once: the first loses its answer, the second has committed
        // and its answer is late. Until it comes back, its jobs too are 'doing' under this worker
        // and not held here, so the look for the lost claim's jobs must wait for it. Without that
        // wait (claims.Count == 0 in FetchLoopAsync) the second claim's jobs run twice.
        await using var rig = new Rig(db.ConnectionString);
        var (proxy, logs, app) = (rig.Proxy, rig.Logs, rig.App);
        var runs = new ConcurrentDictionary<long, int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("lost_beside", async (_, ctx) =>
        {
            runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1);
            await gate.Task;
        });
        var ids = await task.DeferManyAsync(Enumerable.Range(0, 200).Select(i => new SumArgs(i, 0)));

        // Room for 100 jobs, claimed in halves of 50, two claims on their way at most.
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false, Concurrency = 50, PrefetchJobs = 50, ClaimsInFlight = 2, FetchJobPollingInterval = TimeSpan.FromSeconds(1),
        }, cts.Token);
        // Full: 50 jobs running (held at the gate) and 50 waiting in the worker.
        Assert.True(await WaitForAsync(async () =>
            await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 100), "the worker did not fill up");
        // Opening the gate frees the room in two steps: a claim for the first half, then, while it
        // is on its way, one for the second. The first loses its answer once the second is sent;
        // the second's answer comes back 3 s late.
        proxy.LoseNextAnswerWhileTheNextIsHeld(ClaimMarker, TimeSpan.FromSeconds(3));
        gate.SetResult();
        await proxy.AnswerLost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var late = await WaitForAsync(() => Task.FromResult(proxy.Held == 1)); // the late answer came back
        var done = await AllSucceededAsync(ids);
        await cts.CancelAsync();
        await run;

        Assert.True(proxy.SecondSentBeforeCut, "the second claim was not sent while the first was on its way");
        Assert.True(done, "not every job ended: " + await StatusCountsAsync());
        Assert.True(late, "the second claim's answer did not come back");
        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(ids.Count, runs.Count);
        Assert.DoesNotContain(runs, r => r.Value != 1);
        // Only the lost claim's jobs were looked for and found.
        var adopted = Assert.Single(logs.Entries, e => e.EventId.Id == 2014);
        Assert.Equal(50, adopted.State["Count"]);
    }

    [Fact]
    public async Task A_completion_whose_answer_was_lost_is_written_once_and_logged_as_such()
    {
        await using var rig = new Rig(db.ConnectionString);
        var (proxy, logs, app) = (rig.Proxy, rig.Logs, rig.App);
        var runs = 0;
        var task = app.Task<SumArgs>("lost_finish", _ => Interlocked.Increment(ref runs));
        var id = await task.DeferAsync(new SumArgs(1, 0));
        proxy.LoseNextAnswerTo(FinishMarker);

        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(1) }, cts.Token);
        await proxy.AnswerLost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // The worker writes the outcome again; the row is no longer the run's: written before.
        Assert.True(await WaitForAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == 3013))), "no record of the outcome written before");
        await cts.CancelAsync();
        await run;

        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(1, runs);
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 3008); // not "rescued or retried elsewhere"
        Assert.Equal(1, await db.ScalarAsync<long>(
            EventCount("succeeded")));
    }

    [Fact]
    public async Task A_defer_whose_answer_was_lost_throws_and_a_queueing_lock_makes_its_retry_safe()
    {
        await using var proxy = new AnswerLosingProxy(db.ConnectionString);
        await using var app = new App(new NpgsqlConnector(proxy.ConnectionString));
        var task = app.Task<SumArgs>("lost_defer", _ => { });
        var options = new DeferOptions { QueueingLock = "lost-defer", IgnoreAlreadyEnqueued = true };
        proxy.LoseNextAnswerTo(DeferOrGetMarker);

        var lost = await Assert.ThrowsAnyAsync<Exception>(() => task.DeferAsync(new SumArgs(1, 1), options));
        Assert.True(lost is Npgsql.NpgsqlException, lost.ToString());
        Assert.Equal(1, proxy.Cuts);
        // The job was inserted all the same: the retry finds it waiting instead of deferring it twice.
        var id = await task.DeferAsync(new SumArgs(1, 1), options);
        Assert.Equal([id], (await db.QueryAsync("SELECT id FROM procrastinate_jobs WHERE task_name = 'lost_defer'")).Select(r => (long)r["id"]!));
    }

    /// <summary>An app whose connections go through a proxy that can lose an answer, with its logs captured.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        private readonly ILoggerFactory _factory;

        public Rig(string connectionString)
        {
            Proxy = new AnswerLosingProxy(connectionString);
            _factory = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Debug));
            App = new App(new NpgsqlConnector(Proxy.ConnectionString), new AppOptions { LoggerFactory = _factory });
        }

        public AnswerLosingProxy Proxy { get; }

        public CapturingLoggerProvider Logs { get; } = new();

        public App App { get; }

        public async ValueTask DisposeAsync()
        {
            await App.DisposeAsync();
            _factory.Dispose();
            await Proxy.DisposeAsync();
        }
    }

    /// <summary>Events of a type as readers see them: rows, and (lean layout) those still waiting in their job's row.</summary>
    private static string EventCount(string type) => $"""
        SELECT count(*) FROM (
            SELECT type::text AS type FROM procrastinate_events
            UNION ALL
            SELECT type FROM procrastinate_dotnet_pending_events(ARRAY(SELECT id FROM procrastinate_jobs))) AS e
        WHERE type = '{type}'
        """;

    /// <summary>Waits (up to 30 s) until every one of <paramref name="ids"/> has succeeded; false if not.</summary>
    private Task<bool> AllSucceededAsync(IReadOnlyCollection<long> ids) => WaitForAsync(async () =>
        await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' AND id = ANY($1)", ids.ToArray()) == ids.Count);

    /// <summary>The jobs per status, for a failure's message.</summary>
    private async Task<string> StatusCountsAsync() => string.Join(", ",
        (await db.QueryAsync("SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs GROUP BY 1")).Select(r => $"{r["status"]} {r["n"]}"));

    private static async Task<bool> WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (await condition())
                return true;
            await Task.Delay(50);
        }
        return false;
    }
}

public sealed class LostAnswerCompatibleTests(DatabaseFixture db) : LostAnswerTests<DatabaseFixture>(db);

public sealed class LostAnswerLeanTests(LeanDatabaseFixture db) : LostAnswerTests<LeanDatabaseFixture>(db);
