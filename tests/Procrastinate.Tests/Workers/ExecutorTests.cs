using System.Diagnostics;
using Procrastinate.Internal.Workers;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// The executors run buffered jobs one after the other on a pool thread and fan out only when
/// jobs wait: synchronous bodies must still run side by side and never hold up claims or
/// completions.
/// </summary>
public sealed class ExecutorTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    [Fact]
    public async Task Synchronous_bodies_run_side_by_side_up_to_the_concurrency()
    {
        await using var app = db.CreateApp();
        using var allIn = new Barrier(4);
        var met = 0;
        var task = app.Task<SumArgs>("sync_side_by_side", _ =>
        {
            // Returns only once four bodies are inside at the same time.
            if (allIn.SignalAndWait(Generous))
                Interlocked.Increment(ref met);
        });
        await task.DeferManyAsync(Enumerable.Range(0, 4).Select(i => new SumArgs(i, 0)));
        await app.RunWorkerAsync(OneShot with { Concurrency = 4 }).WaitAsync(Generous * 2);
        Assert.Equal(4, met);
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    [Fact]
    public async Task A_blocked_synchronous_body_holds_up_neither_claims_nor_completions()
    {
        await using var app = db.CreateApp();
        var sawOthersDone = false;
        var blocker = app.Task<SumArgs>("sync_blocker", _ =>
        {
            // Blocks its thread until the three other jobs were claimed, run and written, one at a
            // time through the other slot (no prefetch): the fetcher and the completer go on.
            var until = DateTime.UtcNow + Generous;
            while (DateTime.UtcNow < until)
            {
                if (db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'sync_quick' AND status = 'succeeded'")
                        .GetAwaiter().GetResult() == 3)
                {
                    sawOthersDone = true;
                    return;
                }
                Thread.Sleep(20);
            }
        });
        var quick = app.Task<SumArgs>("sync_quick", _ => { });
        await blocker.DeferAsync(new SumArgs(0, 0));
        await quick.DeferManyAsync(Enumerable.Range(1, 3).Select(i => new SumArgs(i, 0)));
        await app.RunWorkerAsync(OneShot with { Concurrency = 2, PrefetchJobs = 0 }).WaitAsync(Generous * 2);
        Assert.True(sawOthersDone);
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    [Fact]
    public async Task Stopping_waits_for_a_synchronous_body_that_is_running()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("sync_finish_me", _ => { inJob.TrySetResult(); Thread.Sleep(500); });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }, cts.Token);
        await inJob.Task.WaitAsync(Generous);
        await cts.CancelAsync();
        await run.WaitAsync(Generous);
        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Claims_go_on_while_one_batch_of_outcomes_is_written_and_pause_at_two()
    {
        await using var app = db.CreateApp();
        using var locked = new ManualResetEventSlim();
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("backlog", a =>
        {
            if (a.A == 0)
            {
                first.TrySetResult();
                locked.Wait(Generous); // until the test holds this job's row: its completion batch blocks
            }
        });
        await task.DeferManyAsync(Enumerable.Range(0, 3000).Select(i => new SumArgs(i, 0)));
        var firstId = await db.ScalarAsync<long>("SELECT min(id) FROM procrastinate_jobs");
        // Capacity 10 plus an adaptive prefetch of at most 300.
        var run = app.RunWorkerAsync(OneShot with { Concurrency = 10 });
        await first.Task.WaitAsync(Generous);
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var lockRow = new Npgsql.NpgsqlCommand("SELECT 1 FROM procrastinate_jobs WHERE id = $1 FOR UPDATE", connection, transaction))
        {
            lockRow.Parameters.Add(new Npgsql.NpgsqlParameter<long> { TypedValue = firstId });
            await lockRow.ExecuteScalarAsync();
        }
        locked.Set();
        // The batch with the first job waits on the lock. Claims go on until its outcomes and a
        // second full batch behind them wait (1,000), not only the first batch (500): a claim does
        // not wait for the completion statement before it.
        const string doingSql = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'";
        var deadline = Stopwatch.StartNew();
        long doing;
        while ((doing = await db.ScalarAsync<long>(doingSql)) < 1000 && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        await Task.Delay(1000);
        // Without the pause, every job would be claimed and run by now, 'doing' until written.
        var doingLater = await db.ScalarAsync<long>(doingSql);
        var todo = await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'");
        await transaction.RollbackAsync();
        await run.WaitAsync(Generous * 2);
        Assert.True(doing >= 1000, $"claims stopped at {doing} jobs doing while one completion batch was blocked");
        Assert.True(doingLater <= 1400, $"{doingLater} jobs doing while the completer was blocked");
        Assert.True(todo >= 1500, $"only {todo} jobs left todo while the completer was blocked");
        Assert.Equal(3000L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    [Fact]
    public async Task Many_short_jobs_with_mixed_bodies_all_end_once()
    {
        await using var app = db.CreateApp();
        var runs = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var task = app.Task<SumArgs>("mixed", async a =>
        {
            runs.AddOrUpdate(a.A, 1, (_, n) => n + 1);
            if (a.A % 3 == 0)
                await Task.Yield();
            else if (a.A % 7 == 0)
                await Task.Delay(1);
        });
        await task.DeferManyAsync(Enumerable.Range(0, 500).Select(i => new SumArgs(i, 0)));
        await app.RunWorkerAsync(OneShot with { Concurrency = 7 }).WaitAsync(Generous * 2);
        Assert.Equal(500, runs.Count);
        Assert.All(runs.Values, n => Assert.Equal(1, n));
        Assert.Equal(500L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }
}

public sealed class AsyncSignalTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_set_before_the_wait_is_kept_once()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        signal.Set();
        signal.Set();
        Assert.True(await signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None));
        Assert.False(await signal.WaitAsync(TimeSpan.FromMilliseconds(50), CancellationToken.None));
    }

    [Fact]
    public async Task A_set_wakes_a_waiter_and_reset_forgets_a_pending_set()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None);
        Assert.False(wait.IsCompleted);
        signal.Set();
        Assert.True(await wait.WaitAsync(Generous));
        signal.Set();
        signal.Reset();
        Assert.False(await signal.WaitAsync(TimeSpan.FromMilliseconds(50), CancellationToken.None));
    }

    [Fact]
    public async Task A_set_after_a_timeout_is_kept_for_the_next_wait()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        Assert.False(await signal.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None));
        signal.Set();
        Assert.True(await signal.WaitAsync(TimeSpan.FromMilliseconds(50), CancellationToken.None));
    }

    [Fact]
    public async Task Cancellation_ends_the_wait_and_a_later_set_stays_pending()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        using var cts = new CancellationTokenSource();
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Generous));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => signal.WaitAsync(Timeout.InfiniteTimeSpan, cts.Token));
        signal.Set();
        Assert.True(await signal.WaitAsync(TimeSpan.FromMilliseconds(50), CancellationToken.None));
    }

    [Fact]
    public async Task SetInline_resumes_the_waiter_on_the_setting_thread()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None); // parked before it returns
        var resumedOn = wait.ContinueWith(_ => Environment.CurrentManagedThreadId, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        var setter = await Task.Run(() =>
        {
            signal.SetInline();
            return Environment.CurrentManagedThreadId;
        });
        Assert.Equal(setter, await resumedOn.WaitAsync(Generous));
    }

    [Fact]
    public async Task Concurrent_sets_never_lose_a_wake()
    {
        var signal = new AsyncSignal(TimeProvider.System);
        for (var round = 0; round < 2000; round++)
        {
            var wait = signal.WaitAsync(TimeSpan.FromMilliseconds(round % 2 == 0 ? 1 : 1000), CancellationToken.None);
            var set = round % 3 == 0 ? Task.Run(signal.SetInline) : Task.Run(signal.Set);
            var woken = await wait.WaitAsync(Generous);
            await set;
            // A wait that timed out leaves the set pending: the next wait sees it at once.
            if (!woken)
                Assert.True(await signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None).WaitAsync(Generous));
        }
    }
}

public sealed class JobContextTests
{
    private static JobContext NewContext(App app) =>
        new(app, new Job { Id = 1, Queue = "default", TaskName = "t", ArgsJson = "{}" }, new WorkerInfo("w", 1, null),
            DateTimeOffset.UtcNow, new Dictionary<string, object?>());

    [Fact]
    public async Task The_token_fires_on_abort_whether_it_was_read_before_or_after()
    {
        await using var app = new App(new NpgsqlConnector("Host=localhost"));
        var before = NewContext(app);
        var token = before.CancellationToken;
        Assert.False(token.IsCancellationRequested);
        Assert.True(before.RequestAbort(AbortReason.UserRequest));
        Assert.True(token.IsCancellationRequested);
        Assert.False(before.RequestAbort(AbortReason.Shutdown));
        Assert.Equal(AbortReason.UserRequest, before.AbortReason);

        var after = NewContext(app);
        Assert.True(after.RequestAbort(AbortReason.Shutdown));
        Assert.True(after.CancellationToken.IsCancellationRequested);
        Assert.Equal(after.CancellationToken, after.CancellationToken);
    }

    [Fact]
    public async Task After_the_run_the_token_is_disposed_and_an_abort_is_harmless()
    {
        await using var app = new App(new NpgsqlConnector("Host=localhost"));
        var read = NewContext(app);
        _ = read.CancellationToken;
        read.DisposeAbortSource();
        Assert.True(read.RequestAbort(AbortReason.UserRequest));
        Assert.Throws<ObjectDisposedException>(() => read.CancellationToken);

        var unread = NewContext(app);
        unread.DisposeAbortSource();
        Assert.True(unread.RequestAbort(AbortReason.UserRequest));
        Assert.Throws<ObjectDisposedException>(() => unread.CancellationToken);
    }
}
