using System.Collections.Concurrent;
using System.Diagnostics;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

public sealed class WorkerTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    private Task<string> Status(long id) => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    private async Task<List<string>> Events(long id) =>
        [.. (await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id)).Select(r => (string)r["type"]!)];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_job_that_returns_succeeds(bool async)
    {
        await using var app = db.CreateApp();
        var results = new ConcurrentBag<int>();
        var sum = app.Task<SumArgs>("sum", a => results.Add(a.A + a.B), queue: "sums");
        var id = sum.Defer(new SumArgs(3, 5));
        if (async) await app.RunWorkerAsync(OneShot with { Queues = ["sums"] });
        else app.RunWorker(OneShot with { Queues = ["sums"] });

        Assert.Equal([8], results);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(id));
    }

    [Fact]
    public async Task A_job_that_throws_fails()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("boom", async _ => { await Task.Yield(); throw new InvalidOperationException("boom"); });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("failed", await Status(id));
        Assert.Equal(["deferred", "started", "failed"], await Events(id));
    }

    [Fact]
    public async Task An_unknown_task_fails_without_retry_and_other_jobs_still_run()
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var known = app.Task<SumArgs>("known", _ => Interlocked.Increment(ref ran), retry: RetryStrategy.Forever);
        var unknown = await app.DeferAsync("not.registered", "{}");
        var good = await known.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("failed", await Status(unknown));
        Assert.Equal("succeeded", await Status(good));
        Assert.Equal(1, ran);
    }

    [Fact]
    public async Task A_job_deferred_the_way_Python_does_is_run_by_the_dotnet_worker()
    {
        await using var app = db.CreateApp();
        SumArgs? received = null;
        app.Task<SumArgs>("mycode.sum", a => received = a, queue: "sums");
        // Exactly what Python 3.9's defer sends (COMPAT.md 3.2).
        var id = await db.ScalarAsync<long>("""
            SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
                ROW('sums', 'mycode.sum', 0, NULL, NULL, '{"a": 3, "b": 5}'::jsonb, NULL)::procrastinate_job_to_defer_v1]))
            """);
        await app.RunWorkerAsync(OneShot with { Queues = ["sums"] });
        Assert.Equal(new SumArgs(3, 5), received);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(id));
        // The worker row is gone after a clean stop; the foreign key cleared worker_id, as with Python.
        Assert.Null(await db.ScalarAsync<long?>("SELECT worker_id FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Jobs_run_in_priority_then_id_order_and_only_from_served_queues()
    {
        await using var app = db.CreateApp();
        var order = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("ordered", a => order.Enqueue(a.A));
        await task.DeferAsync(new SumArgs(1, 0));
        await task.DeferAsync(new SumArgs(2, 0), new DeferOptions { Priority = 5 });
        await task.DeferAsync(new SumArgs(3, 0));
        await task.DeferAsync(new SumArgs(4, 0), new DeferOptions { Priority = 5 });
        var other = await task.DeferAsync(new SumArgs(99, 0), new DeferOptions { Queue = "other" });
        await app.RunWorkerAsync(OneShot with { Queues = ["default"] });
        Assert.Equal([2, 4, 1, 3], order);
        Assert.Equal("todo", await Status(other));
    }

    [Fact]
    public async Task Jobs_scheduled_in_the_future_wait_for_the_database_clock()
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var task = app.Task<SumArgs>("scheduled", _ => Interlocked.Increment(ref ran));
        var future = await task.DeferAsync(new SumArgs(1, 1), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
        var past = await task.DeferAsync(new SumArgs(1, 1), new DeferOptions { ScheduleAt = DateTimeOffset.UtcNow.AddMinutes(-1) });
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("todo", await Status(future));
        Assert.Equal("succeeded", await Status(past));
        Assert.Equal(1, ran);
    }

    [Theory]
    [InlineData(DeleteJobsMode.Never, true, true)]
    [InlineData(DeleteJobsMode.Successful, false, true)]
    [InlineData(DeleteJobsMode.Always, false, false)]
    public async Task Delete_jobs_mode_decides_which_rows_remain(DeleteJobsMode mode, bool succeededKept, bool failedKept)
    {
        await using var app = db.CreateApp();
        var ok = app.Task<SumArgs>("ok", _ => { });
        var ko = app.Task<SumArgs>("ko", _ => throw new InvalidOperationException());
        var okId = await ok.DeferAsync(new SumArgs(1, 1));
        var koId = await ko.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot with { DeleteJobs = mode });
        Assert.Equal(succeededKept, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", okId) == 1);
        Assert.Equal(failedKept, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", koId) == 1);
    }

    [Fact]
    public async Task Concurrency_runs_jobs_at_the_same_time()
    {
        await using var app = db.CreateApp();
        var current = 0;
        var peak = 0;
        var task = app.Task<SumArgs>("parallel", async (_, ctx) =>
        {
            var now = Interlocked.Increment(ref current);
            InterlockedMax(ref peak, now);
            await Task.Delay(200, ctx.CancellationToken);
            Interlocked.Decrement(ref current);
        });
        await task.DeferManyAsync(Enumerable.Range(0, 8).Select(i => new SumArgs(i, i)));
        var sw = Stopwatch.StartNew();
        await app.RunWorkerAsync(OneShot with { Concurrency = 4 });
        Assert.Equal(4, peak);
        Assert.Equal(8L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.5), $"8 jobs of 200 ms at concurrency 4 took {sw.Elapsed}");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    [Fact]
    public async Task The_job_context_describes_the_job_and_the_worker()
    {
        await using var app = db.CreateApp();
        JobContext? seen = null;
        var task = app.Task<SumArgs>("ctx", (_, ctx) => { seen = ctx; }, queue: "cq", priority: 3, @lock: "lk", queueingLock: "qk");
        var id = await task.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(OneShot with
        {
            Name = "w1", Queues = ["cq"], AdditionalContext = new Dictionary<string, object?> { ["tenant"] = "acme" },
        });
        Assert.NotNull(seen);
        Assert.Equal(id, seen.Job.Id);
        Assert.Equal(("ctx", "cq", 3, "lk", "qk", 0), (seen.Job.TaskName, seen.Job.Queue, seen.Job.Priority, seen.Job.Lock, seen.Job.QueueingLock, seen.Job.Attempts));
        Assert.Equal(JobStatus.Doing, seen.Job.Status);
        Assert.Equal(1, seen.Job.Args.GetProperty("a").GetInt32());
        Assert.Equal("w1", seen.Worker.Name);
        Assert.Equal(["cq"], seen.Worker.Queues);
        Assert.Equal(seen.Job.WorkerId, seen.Worker.Id);
        Assert.Equal("acme", seen.AdditionalContext["tenant"]);
        Assert.Equal(AbortReason.None, seen.AbortReason);
        Assert.True(seen.StartedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
    }

    public sealed class RecordingHandler : IJobHandler<SumArgs>, IDisposable
    {
        public static readonly ConcurrentBag<(int Sum, long JobId)> Calls = [];
        public static int Disposed;

        public Task HandleAsync(SumArgs args, JobContext context, CancellationToken cancellationToken)
        {
            Calls.Add((args.A + args.B, context.Job.Id));
            return Task.CompletedTask;
        }

        public void Dispose() => Interlocked.Increment(ref Disposed);
    }

    [Fact]
    public async Task Handler_classes_get_a_fresh_instance_per_job()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs, RecordingHandler>("handler");
        var ids = await task.DeferManyAsync([new SumArgs(1, 1), new SumArgs(2, 2)]);
        var disposedBefore = RecordingHandler.Disposed;
        await app.RunWorkerAsync(OneShot);
        Assert.Equal([(2, ids[0]), (4, ids[1])], RecordingHandler.Calls.OrderBy(c => c.JobId));
        Assert.Equal(2, RecordingHandler.Disposed - disposedBefore);
    }

    [Fact]
    public async Task A_job_with_arguments_that_do_not_fit_the_record_fails()
    {
        await using var app = db.CreateApp();
        app.Task<SumArgs>("typed", _ => { });
        var id = await app.DeferAsync("typed", """{"a": "not a number", "b": 1}""");
        var missing = await app.DeferAsync("typed", """{"a": 1}""");
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("failed", await Status(id));
        Assert.Equal("failed", await Status(missing));
    }

    [Fact]
    public async Task The_worker_registers_itself_and_unregisters_at_stop()
    {
        await using var app = db.CreateApp();
        long? workerIdDuringJob = null;
        List<Dictionary<string, object?>>? info = null;
        var task = app.Task<SumArgs>("registered", async (_, ctx) =>
        {
            workerIdDuringJob = await db.ScalarAsync<long?>("SELECT id FROM procrastinate_workers WHERE id = $1", ctx.Worker.Id);
            info = await db.QueryAsync("SELECT name, host, process_id, queues, concurrency FROM procrastinate_dotnet_workers WHERE worker_id = $1", ctx.Worker.Id);
        });
        await task.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot with { Name = "named", Queues = ["default"], Concurrency = 3 });
        Assert.NotNull(workerIdDuringJob);
        var row = Assert.Single(info!);
        Assert.Equal(("named", Environment.MachineName, Environment.ProcessId, 3), ((string)row["name"]!, (string)row["host"]!, (int)row["process_id"]!, (int)row["concurrency"]!));
        Assert.Equal(["default"], (string[])row["queues"]!);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers"));
    }

    [Fact]
    public async Task The_worker_heartbeats_while_it_runs()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("slow", async (_, ctx) => await Task.Delay(1500, ctx.CancellationToken));
        await task.DeferAsync(new SumArgs(1, 1));
        var run = app.RunWorkerAsync(OneShot with { UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(200) });
        await Task.Delay(300);
        var first = await db.ScalarAsync<DateTime>("SELECT last_heartbeat FROM procrastinate_workers");
        await Task.Delay(800);
        var later = await db.ScalarAsync<DateTime>("SELECT last_heartbeat FROM procrastinate_workers");
        await run;
        Assert.True(later > first, $"heartbeat did not move: {first:O} then {later:O}");
    }

    [Fact]
    public async Task A_stale_worker_is_pruned_at_start()
    {
        await using var app = db.CreateApp();
        await db.ExecAsync("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour')");
        await app.RunWorkerAsync(OneShot);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
    }

    [Fact]
    public async Task A_notification_wakes_an_idle_worker_at_once()
    {
        await using var app = db.CreateApp();
        var started = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("wake", _ => started.TrySetResult(DateTimeOffset.UtcNow));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(30) }, cts.Token);
        await Task.Delay(1000); // let it register, fetch nothing, LISTEN and sleep
        var deferredAt = DateTimeOffset.UtcNow;
        await task.DeferAsync(new SumArgs(1, 1));
        var startedAt = await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;
        Assert.True(startedAt - deferredAt < TimeSpan.FromSeconds(2), $"took {startedAt - deferredAt}");
    }

    [Fact]
    public async Task Without_notifications_the_worker_polls()
    {
        await using var app = db.CreateApp();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("poll", _ => started.TrySetResult());
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false, ListenNotify = false, FetchJobPollingInterval = TimeSpan.FromMilliseconds(300),
        }, cts.Token);
        await Task.Delay(500);
        await task.DeferAsync(new SumArgs(1, 1));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(5));
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Stopping_lets_running_jobs_finish()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("finish_me", async _ => { inJob.TrySetResult(); await Task.Delay(500); });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }, cts.Token);
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;
        Assert.Equal("succeeded", await Status(id));
    }

    [Fact]
    public async Task Past_the_graceful_timeout_the_jobs_token_fires_and_the_job_ends_aborted()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        AbortReason? reason = null;
        var task = app.Task<SumArgs>("endless", async (_, ctx) =>
        {
            inJob.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            finally
            {
                reason = ctx.AbortReason;
            }
        });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, ShutdownGracefulTimeout = TimeSpan.FromMilliseconds(200) }, cts.Token);
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(AbortReason.Shutdown, reason);
        Assert.Equal("aborted", await Status(id));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
    }

    [Fact]
    public async Task Invalid_worker_options_are_refused_at_start()
    {
        await using var app = db.CreateApp();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => app.RunWorkerAsync(new WorkerOptions { Concurrency = 0 }));
        Assert.Contains("Concurrency must be at least 1", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => app.RunWorkerAsync(new WorkerOptions { Queues = [new string('q', 41)] }));
        await Assert.ThrowsAsync<ArgumentException>(() => app.RunWorkerAsync(new WorkerOptions { FetchJobPollingInterval = TimeSpan.Zero }));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
    }

    [Fact]
    public async Task One_shot_mode_runs_lock_chains_to_the_end()
    {
        await using var app = db.CreateApp();
        var order = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("chain", a => order.Enqueue(a.A), @lock: "chain");
        await task.DeferManyAsync(Enumerable.Range(1, 5).Select(i => new SumArgs(i, 0)));
        await app.RunWorkerAsync(OneShot with { Concurrency = 3 });
        Assert.Equal([1, 2, 3, 4, 5], order);
    }

    [Fact]
    public async Task Claimed_jobs_that_never_started_go_back_to_the_queue_at_stop()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ran = new ConcurrentBag<int>();
        var task = app.Task<SumArgs>("prefetched", async a => { ran.Add(a.A); inJob.TrySetResult(); await release.Task; });
        await task.DeferManyAsync(Enumerable.Range(0, 6).Select(i => new SumArgs(i, 0)));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, Concurrency = 1, PrefetchJobs = 5 }, cts.Token);
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // One runs, five wait in the local buffer, all six claimed.
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
        await cts.CancelAsync();
        release.SetResult();
        await run;
        Assert.Single(ran);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND attempts = 0 AND worker_id IS NULL"));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    public sealed record PaddedArgs(int Mode, string Pad);

    /// <summary>
    /// A worker at Concurrency 1 with the default (adaptive) prefetch first runs
    /// <paramref name="warmUp"/> jobs of <paramref name="warmMode"/> (0: returns at once; 2: takes
    /// 50 ms), then gets a job that blocks followed by 200 quick ones, all with arguments padded
    /// to <paramref name="padChars"/>. Returns how many jobs it holds claimed while the blocker runs.
    /// </summary>
    private async Task<long> HeldWhileBlocked(int warmMode, int warmUp, int padChars)
    {
        await using var app = db.CreateApp();
        var inBlock = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<PaddedArgs>("adaptive", async a =>
        {
            if (a.Mode == 1)
            {
                inBlock.TrySetResult();
                await release.Task;
            }
            else if (a.Mode == 2)
            {
                await Task.Delay(50);
            }
        });
        var pad = new string('x', padChars);
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, Concurrency = 1, FetchJobPollingInterval = TimeSpan.FromMilliseconds(100) }, cts.Token);
        try
        {
            await task.DeferManyAsync(Enumerable.Repeat(new PaddedArgs(warmMode, pad), warmUp));
            var deadline = Stopwatch.StartNew();
            while (await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'") < warmUp)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the warm-up jobs did not all run");
                await Task.Delay(20);
            }
            await task.DeferManyAsync([new PaddedArgs(1, pad), .. Enumerable.Repeat(new PaddedArgs(0, pad), 200)]);
            await inBlock.Task.WaitAsync(TimeSpan.FromSeconds(10));
            // Let the fetcher fill whatever room it has (it claims on notifications and every 100 ms).
            long held = 0, previous = -1;
            for (var i = 0; i < 10 && held != previous; i++)
            {
                await Task.Delay(150);
                previous = held;
                held = await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'");
            }
            return held;
        }
        finally
        {
            await cts.CancelAsync();
            release.TrySetResult();
            await run;
        }
    }

    [Fact]
    public async Task The_default_prefetch_claims_hundreds_ahead_when_jobs_are_short()
    {
        // About 100 ms of work: for jobs of microseconds, the cap of 300 (here: all 201 jobs). At
        // least 100 even if a slow moment of the machine made the last warm-up jobs take a
        // millisecond; without adaptation it held 2.
        Assert.InRange(await HeldWhileBlocked(warmMode: 0, warmUp: 100, padChars: 0), 100L, 201L);
    }

    [Fact]
    public async Task The_default_prefetch_stays_near_the_concurrency_when_jobs_take_long()
    {
        // Jobs of 50 ms at Concurrency 1: 100 ms of work is 2 jobs ahead of the running one.
        var held = await HeldWhileBlocked(warmMode: 2, warmUp: 10, padChars: 0);
        Assert.InRange(held, 2L, 3L);
    }

    [Fact]
    public async Task The_default_prefetch_holds_at_most_about_16_MB_of_arguments()
    {
        // Arguments of about 100,000 characters: 8,000,000 / 100,000 = 79 ahead of the running one.
        var held = await HeldWhileBlocked(warmMode: 0, warmUp: 50, padChars: 100_000);
        Assert.InRange(held, 3L, 81L);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_worker_keeps_at_most_its_claims_in_flight_and_runs_every_job_once(int claims)
    {
        await using var app = db.CreateApp();
        var runs = new ConcurrentDictionary<int, int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("in_flight", async a =>
        {
            await gate.Task;
            runs.AddOrUpdate(a.A, 1, (_, n) => n + 1);
        });
        await task.DeferManyAsync(Enumerable.Range(0, 500).Select(i => new SumArgs(i, 0)));
        // Room for 200 jobs, claims of at most 100 when two may be on their way. A worker with
        // nothing to do sends one claim; once it holds jobs, the next claims may go out together.
        var run = app.RunWorkerAsync(OneShot with { Concurrency = 10, PrefetchJobs = 190, ClaimsInFlight = claims });
        var deadline = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") < 200 && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        Assert.Equal(200L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
        // Claims wait on this lock (a claim locks rows; plain reads do not wait): once the held
        // jobs end, the test sees how many claims the worker sends before one has come back.
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var lockTx = await blocker.BeginTransactionAsync();
        await using (var lockCmd = new Npgsql.NpgsqlCommand("LOCK TABLE procrastinate_jobs IN EXCLUSIVE MODE", blocker, lockTx))
            await lockCmd.ExecuteNonQueryAsync();
        gate.SetResult();
        const string waitingClaims =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH candidate%'";
        deadline.Restart();
        long waiting;
        while ((waiting = await db.ScalarAsync<long>(waitingClaims)) < claims && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        Assert.Equal(claims, waiting);
        await Task.Delay(300); // and no more than that
        Assert.Equal(claims, await db.ScalarAsync<long>(waitingClaims));
        await lockTx.RollbackAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(500, runs.Count);
        Assert.All(runs.Values, n => Assert.Equal(1, n));
        Assert.Equal(500L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    [Fact]
    public async Task A_job_announced_while_a_claim_is_on_its_way_is_claimed_when_it_comes_back_not_at_the_next_poll()
    {
        await using var app = db.CreateApp();
        var ran = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("announced_meanwhile", a => ran.Enqueue(a.A));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false, Concurrency = 2, PrefetchJobs = 0, FetchJobPollingInterval = TimeSpan.FromSeconds(60),
        }, cts.Token);
        var deadline = Stopwatch.StartNew();
        while (app.Workers.FirstOrDefault() is not { IsListening: true, Id: > 0 } && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        var workerId = app.Workers.Single().Id;
        // The claim's foreign-key check on its worker's row (compatible layout) waits for this row
        // lock: the claim has taken its snapshot and cannot come back until the lock goes.
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var lockTx = await blocker.BeginTransactionAsync();
        await using (var lockCmd = new Npgsql.NpgsqlCommand("SELECT id FROM procrastinate_workers WHERE id = $1 FOR UPDATE", blocker, lockTx))
        {
            lockCmd.Parameters.AddWithValue(workerId);
            await lockCmd.ExecuteNonQueryAsync();
        }
        await task.DeferAsync(new SumArgs(1, 0));
        const string waitingClaims =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH candidate%'";
        deadline.Restart();
        while (await db.ScalarAsync<long>(waitingClaims) < 1 && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        Assert.Equal(1L, await db.ScalarAsync<long>(waitingClaims));
        // Deferred and announced after the claim's snapshot: the claim comes back without it.
        await task.DeferAsync(new SumArgs(2, 0));
        await Task.Delay(300); // the notification reaches the worker
        await lockTx.RollbackAsync();
        deadline.Restart();
        while (ran.Count < 2 && deadline.Elapsed < TimeSpan.FromSeconds(20))
            await Task.Delay(20);
        Assert.Equal([1, 2], ran.Order());
        await cts.CancelAsync();
        await run;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_claim_commits_without_waiting_for_the_flush_unless_claims_are_durable(bool durable)
    {
        var server = await db.ScalarAsync<string>("SHOW synchronous_commit");
        Assert.NotEqual("off", server); // or the test could not tell the two apart
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("flush_setting", _ => { });
        await task.DeferManyAsync([new SumArgs(1, 0), new SumArgs(2, 0), new SumArgs(3, 0)]);
        // A row trigger, inside the claim's transaction, records the setting its commit will use.
        await db.ExecAsync("""
            CREATE TABLE test_claim_commit (setting text);
            CREATE FUNCTION test_claim_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO test_claim_commit VALUES (current_setting('synchronous_commit'));
                RETURN NULL;
            END;
            $$;
            CREATE TRIGGER test_claim_commit AFTER UPDATE ON procrastinate_jobs FOR EACH ROW
                WHEN (OLD.status = 'todo' AND NEW.status = 'doing') EXECUTE FUNCTION test_claim_commit();
            """);
        try
        {
            await app.RunWorkerAsync(OneShot with { DurableClaims = durable });
            var settings = await db.QueryAsync("SELECT setting FROM test_claim_commit");
            Assert.Equal(3, settings.Count);
            Assert.All(settings, row => Assert.Equal(durable ? server : "off", row["setting"]));
            Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
        }
        finally
        {
            await db.ExecAsync("""
                DROP TRIGGER test_claim_commit ON procrastinate_jobs;
                DROP FUNCTION test_claim_commit();
                DROP TABLE test_claim_commit;
                """);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public async Task ClaimsInFlight_is_from_1_to_4(int claims)
    {
        await using var app = db.CreateApp();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => app.RunWorkerAsync(OneShot with { ClaimsInFlight = claims }));
        Assert.Contains("ClaimsInFlight must be from 1 to 4", e.Message);
    }

    [Fact]
    public async Task Without_prefetch_a_worker_claims_only_for_free_executors()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("no_prefetch", async _ => { inJob.TrySetResult(); await release.Task; });
        await task.DeferManyAsync(Enumerable.Range(0, 4).Select(i => new SumArgs(i, 0)));
        var run = app.RunWorkerAsync(OneShot with { Concurrency = 2, PrefetchJobs = 0 });
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(200);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
        release.SetResult();
        await run;
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
        await Assert.ThrowsAsync<ArgumentException>(() => app.RunWorkerAsync(new WorkerOptions { PrefetchJobs = -1 }));
    }

    [Fact]
    public Task An_idle_worker_wakes_when_a_scheduled_job_becomes_due_not_at_the_next_poll() =>
        AnIdleWorkerWakesWhenAScheduledJobBecomesDueAsync(db, () => Task.CompletedTask);

    /// <summary>
    /// An idle worker with a one-minute poll runs a job deferred 1.5 s ahead within 2 s of its
    /// time; <paramref name="afterDefer"/> looks at the database once the job is deferred.
    /// </summary>
    internal static async Task AnIdleWorkerWakesWhenAScheduledJobBecomesDueAsync(DatabaseFixture db, Func<Task> afterDefer)
    {
        await using var app = db.CreateApp();
        var started = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("due_soon", _ => started.TrySetResult(DateTimeOffset.UtcNow));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(60) }, cts.Token);
        await Task.Delay(500);
        var dueAt = DateTimeOffset.UtcNow.AddSeconds(1.5);
        await task.DeferAsync(new SumArgs(1, 1), new DeferOptions { ScheduleAt = dueAt });
        await afterDefer();
        var at = await started.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await cts.CancelAsync();
        await run;
        Assert.InRange(at - dueAt, TimeSpan.FromMilliseconds(-50), TimeSpan.FromSeconds(2));
    }
}
