using System.Diagnostics;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

/// <summary>Cancel, abort and status (COMPAT.md 2.6.5, 3.6, 3.7, 4.3, 4.5, W7).</summary>
public sealed class CancelAbortTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    private Task<string> Status(long id) => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    private Task<bool> AbortRequested(long id) => db.ScalarAsync<bool>("SELECT abort_requested FROM procrastinate_jobs WHERE id = $1", id);

    private Task<int> Attempts(long id) => db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id);

    private Task<long> RowCount(long id) => db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", id);

    private async Task<List<string>> Events(long id) =>
        [.. (await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id)).Select(r => (string)r["type"]!)];

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > Generous)
                throw new TimeoutException($"Timed out after {Generous} waiting for {what}.");
            await Task.Delay(20);
        }
    }

    /// <summary>The worker's LISTEN connection is up (each test class has its own database).</summary>
    private Task WaitForListenerAsync() => WaitUntilAsync(
        () => db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %')"),
        "the worker to LISTEN");

    private static async Task<long> DeferTodoAsync(App app, string queue = "default") =>
        await app.DeferAsync("cancel.target", """{"a": 1, "b": 2}""", new DeferOptions { Queue = queue });

    // ---- Cancel ---------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancel_of_a_todo_job_makes_it_cancelled_and_a_second_cancel_returns_false(bool async)
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);

        var first = async ? await app.Jobs.CancelAsync(id) : app.Jobs.Cancel(id);
        Assert.True(first);
        Assert.Equal("cancelled", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(0, await Attempts(id));
        Assert.Equal(["deferred", "cancelled"], await Events(id));

        var second = async ? await app.Jobs.CancelAsync(id) : app.Jobs.Cancel(id);
        Assert.False(second);
        Assert.Equal("cancelled", await Status(id));
        Assert.Equal(["deferred", "cancelled"], await Events(id));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancel_or_abort_of_an_unknown_job_returns_false(bool async)
    {
        await using var app = db.CreateApp();
        Assert.False(async ? await app.Jobs.CancelAsync(424242) : app.Jobs.Cancel(424242));
        Assert.False(async ? await app.Jobs.CancelAsync(424242, delete: true) : app.Jobs.Cancel(424242, delete: true));
        Assert.False(async ? await app.Jobs.AbortAsync(424242) : app.Jobs.Abort(424242));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancel_with_delete_removes_a_todo_job_and_its_events(bool async)
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);
        var other = await DeferTodoAsync(app);

        Assert.True(async ? await app.Jobs.CancelAsync(id, delete: true) : app.Jobs.Cancel(id, delete: true));

        Assert.Equal(0L, await RowCount(id));
        Assert.Empty(await Events(id));
        Assert.Equal("todo", await Status(other));
        Assert.False(async ? await app.Jobs.CancelAsync(id, delete: true) : app.Jobs.Cancel(id, delete: true));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancel_without_abort_of_a_running_job_returns_false_and_leaves_it_running(bool async)
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);

        Assert.False(async ? await app.Jobs.CancelAsync(id) : app.Jobs.Cancel(id));
        Assert.False(async ? await app.Jobs.CancelAsync(id, delete: true) : app.Jobs.Cancel(id, delete: true));

        Assert.Equal("doing", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(["deferred", "started"], await Events(id));
    }

    [Fact]
    public async Task Cancel_of_a_finished_job_returns_false_and_changes_nothing()
    {
        await using var app = db.CreateApp();
        app.Task<SumArgs>("cancel.target", _ => { });
        var id = await DeferTodoAsync(app);
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("succeeded", await Status(id));

        Assert.False(await app.Jobs.CancelAsync(id));
        Assert.False(await app.Jobs.AbortAsync(id));
        Assert.False(app.Jobs.Cancel(id, delete: true));

        Assert.Equal("succeeded", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(id));
    }

    // ---- Inside the caller's transaction ----------------------------------------------------------

    [Fact]
    public async Task Cancel_inside_a_rolled_back_transaction_leaves_the_job_todo()
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            Assert.True(await app.Jobs.CancelAsync(id, tx));
            Assert.Equal(JobStatus.Cancelled, await app.Jobs.GetStatusAsync(id, tx));
            // Outside the transaction, nothing is visible yet.
            Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
            await tx.RollbackAsync();
        }

        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
        Assert.Equal(["deferred"], await Events(id));
    }

    [Fact]
    public async Task Cancel_inside_a_committed_transaction_cancels_the_job()
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            Assert.True(await app.Jobs.CancelAsync(id, tx));
            await tx.CommitAsync();
        }

        Assert.Equal(JobStatus.Cancelled, await app.Jobs.GetStatusAsync(id));
        Assert.Equal(["deferred", "cancelled"], await Events(id));
    }

    [Fact]
    public async Task Cancel_with_delete_and_abort_inside_a_transaction_follow_the_transaction()
    {
        await using var app = db.CreateApp();
        var deleted = await DeferTodoAsync(app);
        var aborted = await DeferTodoAsync(app);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            Assert.True(await app.Jobs.CancelAsync(deleted, tx, delete: true));
            Assert.True(await app.Jobs.CancelAsync(aborted, tx, abort: true));
            Assert.Null(await app.Jobs.GetStatusAsync(deleted, tx));
            Assert.Equal(JobStatus.Cancelled, await app.Jobs.GetStatusAsync(aborted, tx));
            await tx.CommitAsync();
        }

        Assert.Equal(0L, await RowCount(deleted));
        Assert.Equal("cancelled", await Status(aborted));
        Assert.True(await AbortRequested(aborted));
    }

    [Fact]
    public async Task GetStatus_inside_a_transaction_sees_the_uncommitted_changes_of_that_transaction()
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);

        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using (var cmd = new Npgsql.NpgsqlCommand("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", connection, tx))
        {
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = id });
            await cmd.ExecuteNonQueryAsync();
        }
        var inserted = await app.DeferAsync("cancel.target", "{}", tx);

        Assert.Equal(JobStatus.Doing, await app.Jobs.GetStatusAsync(id, tx));
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(inserted, tx));
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
        Assert.Null(await app.Jobs.GetStatusAsync(inserted));
        await tx.RollbackAsync();
    }

    // ---- Status and Get -------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task GetStatus_returns_the_status_and_null_for_an_unknown_job(bool async)
    {
        await using var app = db.CreateApp();
        var todo = await DeferTodoAsync(app);
        var cancelled = await DeferTodoAsync(app);
        await app.Jobs.CancelAsync(cancelled);
        var doing = await DeferTodoAsync(app);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", doing);

        Func<long, Task<JobStatus?>> get = async
            ? id => app.Jobs.GetStatusAsync(id)
            : id => Task.FromResult(app.Jobs.GetStatus(id));

        Assert.Equal(JobStatus.Todo, await get(todo));
        Assert.Equal(JobStatus.Cancelled, await get(cancelled));
        Assert.Equal(JobStatus.Doing, await get(doing));
        Assert.Null(await get(987654));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Get_returns_the_job_and_null_for_an_unknown_job(bool async)
    {
        await using var app = db.CreateApp();
        var at = new DateTimeOffset(2031, 5, 6, 7, 8, 9, TimeSpan.Zero);
        var id = await app.DeferAsync("cancel.target", """{"a": 1, "b": 2}""", new DeferOptions
        {
            Queue = "jq", Priority = 4, Lock = "lk", QueueingLock = "qlk", ScheduleAt = at,
        });

        var job = async ? await app.Jobs.GetAsync(id) : app.Jobs.Get(id);

        Assert.NotNull(job);
        Assert.Equal(id, job.Id);
        Assert.Equal("cancel.target", job.TaskName);
        Assert.Equal("jq", job.Queue);
        Assert.Equal(4, job.Priority);
        Assert.Equal("lk", job.Lock);
        Assert.Equal("qlk", job.QueueingLock);
        Assert.Equal(JobStatus.Todo, job.Status);
        Assert.Equal(at, job.ScheduledAt);
        Assert.Equal(0, job.Attempts);
        Assert.False(job.AbortRequested);
        Assert.Null(job.WorkerId);
        Assert.Equal(2, job.Args.GetProperty("b").GetInt32());

        Assert.Null(async ? await app.Jobs.GetAsync(id + 1000) : app.Jobs.Get(id + 1000));
    }

    // ---- Abort of a waiting job -------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abort_of_a_todo_job_cancels_it_with_abort_requested_and_both_events(bool async)
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);

        Assert.True(async ? await app.Jobs.AbortAsync(id) : app.Jobs.Abort(id));

        Assert.Equal("cancelled", await Status(id));
        Assert.True(await AbortRequested(id));
        Assert.Equal(0, await Attempts(id));
        Assert.Equal(["deferred", "abort_requested", "cancelled"], await Events(id));
        var job = await app.Jobs.GetAsync(id);
        Assert.NotNull(job);
        Assert.True(job.AbortRequested);
        Assert.Equal(JobStatus.Cancelled, job.Status);
    }

    [Fact]
    public async Task Cancel_with_abort_true_is_the_same_as_Abort()
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);
        Assert.True(app.Jobs.Cancel(id, abort: true));
        Assert.Equal("cancelled", await Status(id));
        Assert.True(await AbortRequested(id));
        Assert.Equal(["deferred", "abort_requested", "cancelled"], await Events(id));
    }

    [Fact]
    public async Task Abort_of_a_running_job_only_sets_the_flag_and_keeps_it_doing()
    {
        await using var app = db.CreateApp();
        var id = await DeferTodoAsync(app);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);

        Assert.True(await app.Jobs.AbortAsync(id));
        Assert.Equal(JobStatus.Doing, await app.Jobs.GetStatusAsync(id));
        Assert.True(await AbortRequested(id));
        // Asking again still matches the job and writes another event (COMPAT.md 2.6.5).
        Assert.True(app.Jobs.Abort(id));
        Assert.Equal(["deferred", "started", "abort_requested", "abort_requested"], await Events(id));
    }

    // ---- Abort of a running job by a worker ---------------------------------------------------------

    private sealed class AbortProbe
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<(AbortReason Reason, long At)> TokenFired { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<Exception?> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Runs;
    }

    /// <summary>An async task that waits on its token (at most 20 s, then returns normally).</summary>
    private static JobTask<SumArgs> LongAsyncTask(App app, string name, AbortProbe probe, RetryStrategy? retry = null) =>
        app.Task<SumArgs>(name, async (_, ctx, ct) =>
        {
            Interlocked.Increment(ref probe.Runs);
            using var registration = ct.Register(() => probe.TokenFired.TrySetResult((ctx.AbortReason, Stopwatch.GetTimestamp())));
            probe.Started.TrySetResult();
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(20), ct);
                probe.Ended.TrySetResult(null);
            }
            catch (Exception e)
            {
                probe.Ended.TrySetResult(e);
                throw;
            }
        }, retry: retry);

    private async Task AssertEndedAbortedByUserAsync(long id, AbortProbe probe)
    {
        Assert.Equal("aborted", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal(["deferred", "started", "abort_requested", "aborted"], await Events(id));
        Assert.Equal(1, probe.Runs);
    }

    [Fact]
    public async Task Abort_of_a_running_async_job_fires_its_token_through_the_notification_and_ends_aborted()
    {
        await using var app = db.CreateApp();
        var probe = new AbortProbe();
        var task = LongAsyncTask(app, "long_async_notify", probe);
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false,
            ListenNotify = true,
            AbortJobPollingInterval = TimeSpan.FromSeconds(60),
            ShutdownGracefulTimeout = TimeSpan.FromSeconds(1),
        }, cts.Token);
        try
        {
            await probe.Started.Task.WaitAsync(Generous);
            await WaitForListenerAsync();
            Assert.Equal(JobStatus.Doing, await app.Jobs.GetStatusAsync(id));

            var askedAt = Stopwatch.GetTimestamp();
            Assert.True(await app.Jobs.AbortAsync(id));
            var (reason, firedAt) = await probe.TokenFired.Task.WaitAsync(Generous);
            var ended = await probe.Ended.Task.WaitAsync(Generous);

            Assert.Equal(AbortReason.UserRequest, reason);
            var latency = Stopwatch.GetElapsedTime(askedAt, firedAt);
            Assert.True(latency < TimeSpan.FromSeconds(5), $"the notification path took {latency} (polling is 60 s)");
            Assert.IsAssignableFrom<OperationCanceledException>(ended);
            await WaitUntilAsync(async () => await Status(id) != "doing", "the outcome to be written");
        }
        finally
        {
            await cts.CancelAsync();
            await run.WaitAsync(Generous);
        }

        await AssertEndedAbortedByUserAsync(id, probe);
    }

    [Fact]
    public async Task Abort_of_a_running_async_job_is_found_by_polling_without_notifications()
    {
        await using var app = db.CreateApp();
        var probe = new AbortProbe();
        var task = LongAsyncTask(app, "long_async_poll", probe);
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false,
            ListenNotify = false,
            AbortJobPollingInterval = TimeSpan.FromMilliseconds(200),
            ShutdownGracefulTimeout = TimeSpan.FromSeconds(1),
        }, cts.Token);
        try
        {
            await probe.Started.Task.WaitAsync(Generous);
            var askedAt = Stopwatch.GetTimestamp();
            Assert.True(app.Jobs.Abort(id)); // the sync form
            var (reason, firedAt) = await probe.TokenFired.Task.WaitAsync(Generous);
            await probe.Ended.Task.WaitAsync(Generous);

            Assert.Equal(AbortReason.UserRequest, reason);
            var latency = Stopwatch.GetElapsedTime(askedAt, firedAt);
            Assert.True(latency < TimeSpan.FromSeconds(5), $"polling every 200 ms took {latency}");
            await WaitUntilAsync(async () => await Status(id) != "doing", "the outcome to be written");
        }
        finally
        {
            await cts.CancelAsync();
            await run.WaitAsync(Generous);
        }

        await AssertEndedAbortedByUserAsync(id, probe);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_sync_job_that_checks_for_an_abort_ends_aborted_after_an_abort(bool throughToken)
    {
        await using var app = db.CreateApp();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ended = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        AbortReason seenReason = AbortReason.None;
        var task = app.Task<SumArgs>("sync_abort", (_, ctx) =>
        {
            started.TrySetResult();
            var sw = Stopwatch.StartNew();
            try
            {
                while (sw.Elapsed < TimeSpan.FromSeconds(20))
                {
                    if (throughToken)
                        ctx.CancellationToken.ThrowIfCancellationRequested();
                    else
                        ctx.ThrowIfAbortRequested();
                    Thread.Sleep(10);
                }
                ended.TrySetResult(null);
            }
            catch (Exception e)
            {
                seenReason = ctx.AbortReason;
                ended.TrySetResult(e);
                throw;
            }
        });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false,
            ListenNotify = false,
            AbortJobPollingInterval = TimeSpan.FromMilliseconds(200),
            ShutdownGracefulTimeout = TimeSpan.FromSeconds(1),
        }, cts.Token);
        try
        {
            await started.Task.WaitAsync(Generous);
            Assert.True(await app.Jobs.AbortAsync(id));
            var exception = await ended.Task.WaitAsync(Generous);
            if (throughToken)
                Assert.IsAssignableFrom<OperationCanceledException>(exception);
            else
                Assert.IsType<JobAbortedException>(exception);
            Assert.Equal(AbortReason.UserRequest, seenReason);
            await WaitUntilAsync(async () => await Status(id) != "doing", "the outcome to be written");
        }
        finally
        {
            await cts.CancelAsync();
            await run.WaitAsync(Generous);
        }

        Assert.Equal("aborted", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(["deferred", "started", "abort_requested", "aborted"], await Events(id));
    }

    [Fact]
    public async Task A_user_abort_is_final_even_when_the_task_retries_forever()
    {
        await using var app = db.CreateApp();
        var probe = new AbortProbe();
        var task = LongAsyncTask(app, "long_async_forever", probe, RetryStrategy.Forever);
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false,
            ListenNotify = false,
            AbortJobPollingInterval = TimeSpan.FromMilliseconds(200),
            FetchJobPollingInterval = TimeSpan.FromMilliseconds(200),
            ShutdownGracefulTimeout = TimeSpan.FromSeconds(1),
        }, cts.Token);
        try
        {
            await probe.Started.Task.WaitAsync(Generous);
            Assert.True(await app.Jobs.AbortAsync(id));
            var (reason, _) = await probe.TokenFired.Task.WaitAsync(Generous);
            Assert.Equal(AbortReason.UserRequest, reason);
            await probe.Ended.Task.WaitAsync(Generous);
            await WaitUntilAsync(async () => await Status(id) != "doing", "the outcome to be written");
            // Leave the worker a few polls to pick the job up again, if it had been retried.
            await Task.Delay(600);
        }
        finally
        {
            await cts.CancelAsync();
            await run.WaitAsync(Generous);
        }

        await AssertEndedAbortedByUserAsync(id, probe);
    }

    [Fact]
    public async Task A_job_that_throws_JobAbortedException_without_an_abort_request_ends_aborted_without_retry()
    {
        await using var app = db.CreateApp();
        var runs = 0;
        // Throws on its first run only, so a wrong retry would end 'succeeded' instead of looping.
        var task = app.Task<SumArgs>("self_abort", async _ =>
        {
            await Task.Yield();
            if (Interlocked.Increment(ref runs) == 1)
                throw new JobAbortedException("giving up");
        }, retry: RetryStrategy.Forever);
        var id = await task.DeferAsync(new SumArgs(1, 1));

        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);

        Assert.Equal(1, runs);
        Assert.Equal("aborted", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal(["deferred", "started", "aborted"], await Events(id));
    }

    [Fact]
    public async Task A_sync_job_that_throws_JobAbortedException_without_an_abort_request_ends_aborted()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("self_abort_sync", (Action<SumArgs>)(_ => throw new JobAbortedException()));
        var id = await task.DeferAsync(new SumArgs(1, 1));

        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);

        Assert.Equal("aborted", await Status(id));
        Assert.Equal(["deferred", "started", "aborted"], await Events(id));
    }

    [Fact]
    public async Task A_shutdown_abort_consults_the_retry_strategy_and_puts_a_retried_job_back_to_todo()
    {
        await using var app = db.CreateApp();
        var probe = new AbortProbe();
        var task = LongAsyncTask(app, "shutdown_forever", probe, RetryStrategy.Forever);
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            HandleSignals = false,
            ListenNotify = false,
            ShutdownGracefulTimeout = TimeSpan.FromMilliseconds(100),
        }, cts.Token);

        await probe.Started.Task.WaitAsync(Generous);
        await cts.CancelAsync();
        await run.WaitAsync(Generous);

        var (reason, _) = await probe.TokenFired.Task.WaitAsync(Generous);
        Assert.Equal(AbortReason.Shutdown, reason);
        Assert.Equal(1, probe.Runs);
        Assert.Equal("todo", await Status(id));
        Assert.Equal(1, await Attempts(id));
        Assert.False(await AbortRequested(id));
        // A retry with a time writes 'scheduled' events too (and the worker's unregistering
        // another one, COMPAT.md 2.8); the status events are what matters here.
        Assert.Equal(["deferred", "started", "deferred_for_retry"], (await Events(id)).Where(e => e != "scheduled"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
    }
}
