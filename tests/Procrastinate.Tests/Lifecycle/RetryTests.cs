using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

public sealed class RetryStrategyTests
{
    private static Job JobWithAttempts(int attempts) => new() { Id = 1, Queue = "q", TaskName = "t", ArgsJson = "{}", Attempts = attempts };

    public static TheoryData<double, double, double, double[]> Delays => new()
    {
        // COMPAT.md 4.4 examples: wait + linear_wait * a + exponential_wait ^ (a + 1)
        { 3, 0, 0, [3, 3, 3, 3] },
        { 0, 3, 0, [0, 3, 6, 9] },
        { 0, 0, 3, [3, 9, 27, 81] },
        { 0, 0, 1, [1, 1, 1, 1] },
        { 1, 2, 2, [1 + 0 + 2, 1 + 2 + 4, 1 + 4 + 8, 1 + 6 + 16] },
        { 0.5, 0.25, 0, [0.5, 0.75, 1.0, 1.25] },
    };

    [Theory]
    [MemberData(nameof(Delays))]
    public void The_delay_follows_procrastinates_formula(double wait, double linear, double exponential, double[] expected)
    {
        var strategy = new RetryStrategy
        {
            Wait = TimeSpan.FromSeconds(wait), LinearWait = TimeSpan.FromSeconds(linear), ExponentialWait = TimeSpan.FromSeconds(exponential),
        };
        for (var attempts = 0; attempts < expected.Length; attempts++)
        {
            var decision = strategy.GetRetryDecision(new InvalidOperationException(), JobWithAttempts(attempts));
            Assert.NotNull(decision);
            Assert.Equal(TimeSpan.FromSeconds(expected[attempts]), decision.RetryIn);
        }
    }

    [Theory]
    [InlineData(null, 100, true)]
    [InlineData(0, 100, true)] // 0 means unlimited, as in Python
    [InlineData(3, 2, true)]
    [InlineData(3, 3, false)]
    [InlineData(3, 4, false)]
    public void Max_attempts_bounds_the_retries(int? maxAttempts, int attempts, bool retried)
    {
        var strategy = new RetryStrategy { MaxAttempts = maxAttempts };
        Assert.Equal(retried, strategy.GetRetryDecision(new InvalidOperationException(), JobWithAttempts(attempts)) is not null);
    }

    [Fact]
    public void Retry_exceptions_limits_which_errors_retry()
    {
        var strategy = new RetryStrategy { RetryExceptions = [typeof(IOException)] };
        Assert.NotNull(strategy.GetRetryDecision(new FileNotFoundException(), JobWithAttempts(0)));
        Assert.Null(strategy.GetRetryDecision(new InvalidOperationException(), JobWithAttempts(0)));
    }

    [Fact]
    public void The_shorthands_mean_what_procrastinate_means()
    {
        var e = new InvalidOperationException();
        Assert.Null(RetryStrategy.None.GetRetryDecision(e, JobWithAttempts(0)));
        Assert.NotNull(RetryStrategy.Forever.GetRetryDecision(e, JobWithAttempts(1_000_000)));
        Assert.Same(RetryStrategy.None, RetryStrategy.Times(0));
        Assert.NotNull(RetryStrategy.Times(2).GetRetryDecision(e, JobWithAttempts(1)));
        Assert.Null(RetryStrategy.Times(2).GetRetryDecision(e, JobWithAttempts(2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => RetryStrategy.Times(-1));
    }

    [Fact]
    public void A_decision_cannot_set_both_times()
    {
        var decision = new RetryDecision { RetryAt = DateTimeOffset.UtcNow, RetryIn = TimeSpan.FromSeconds(1) };
        Assert.Throws<InvalidOperationException>(() => decision.ResolveRetryAt(DateTimeOffset.UtcNow));
    }
}

public sealed class RetryTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    [Fact]
    public async Task A_task_retried_twice_runs_three_times_then_fails()
    {
        await using var app = db.CreateApp();
        var runs = 0;
        var seenAttempts = new List<int>();
        var task = app.Task<SumArgs>("flaky", (_, ctx) =>
        {
            runs++;
            seenAttempts.Add(ctx.Job.Attempts);
            throw new InvalidOperationException("nope");
        }, retry: RetryStrategy.Times(2));
        var id = await task.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal(3, runs);
        Assert.Equal([0, 1, 2], seenAttempts);
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(3, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id));
        var events = await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id);
        Assert.Equal(
            ["deferred", "started", "scheduled", "deferred_for_retry", "started", "scheduled", "deferred_for_retry", "started", "failed"],
            events.Select(e => (string)e["type"]!));
    }

    [Fact]
    public async Task A_retry_with_a_wait_is_scheduled_that_far_ahead()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("wait", _ => throw new InvalidOperationException(),
            retry: new RetryStrategy { Wait = TimeSpan.FromSeconds(100), MaxAttempts = 5 });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        var before = DateTimeOffset.UtcNow;
        await app.RunWorkerAsync(OneShot);
        var after = DateTimeOffset.UtcNow;
        var row = (await db.QueryAsync("SELECT status::text AS status, attempts, scheduled_at FROM procrastinate_jobs WHERE id = $1", id)).Single();
        Assert.Equal("todo", row["status"]);
        Assert.Equal(1, row["attempts"]);
        var at = new DateTimeOffset((DateTime)row["scheduled_at"]!, TimeSpan.Zero);
        Assert.InRange(at, before.AddSeconds(100).AddMilliseconds(-5), after.AddSeconds(100));
    }

    [Fact]
    public async Task A_custom_strategy_gets_the_exception_and_the_job_and_may_move_the_job()
    {
        await using var app = db.CreateApp();
        var seen = new List<(string Message, long JobId)>();
        var task = app.Task<SumArgs>("custom", (a, _) => { if (a.A == 1) throw new InvalidOperationException("first"); },
            retry: RetryStrategy.Custom((e, job) =>
            {
                seen.Add((e.Message, job.Id));
                return new RetryDecision { RetryIn = TimeSpan.Zero, Priority = 9, Queue = "elsewhere", Lock = "moved" };
            }));
        var id = await task.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot with { Queues = ["default"] });
        Assert.Equal([("first", id)], seen);
        var row = (await db.QueryAsync("SELECT status::text AS status, priority, queue_name, lock FROM procrastinate_jobs WHERE id = $1", id)).Single();
        Assert.Equal(("todo", 9, "elsewhere", "moved"), ((string)row["status"]!, (int)row["priority"]!, (string)row["queue_name"]!, (string)row["lock"]!));
    }

    [Fact]
    public async Task A_failing_strategy_fails_the_job_instead_of_losing_it()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("broken_strategy", _ => throw new InvalidOperationException(),
            retry: RetryStrategy.Custom((_, _) => throw new FormatException("strategy bug")));
        var id = await task.DeferAsync(new SumArgs(1, 1));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Only_listed_exceptions_are_retried()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("typed_retry", a => throw (a.A == 0 ? new IOException() : new InvalidOperationException()),
            retry: new RetryStrategy { RetryExceptions = [typeof(IOException)], MaxAttempts = 1 });
        var io = await task.DeferAsync(new SumArgs(0, 0));
        var other = await task.DeferAsync(new SumArgs(1, 0));
        await app.RunWorkerAsync(OneShot);
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", io));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", other));
    }

    [Fact]
    public async Task A_retry_into_a_taken_queueing_lock_fails_the_job_instead_of_leaving_it_doing()
    {
        await using var app = db.CreateApp();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("qlock_retry", async _ =>
        {
            started.TrySetResult();
            await release.Task;
            throw new InvalidOperationException();
        }, queueingLock: "single", retry: RetryStrategy.Forever);
        var first = await task.DeferAsync(new SumArgs(1, 1));
        var run = app.RunWorkerAsync(OneShot with { Queues = ["default"] });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // While the first one runs, another job takes the queueing lock (todo).
        var second = await task.DeferAsync(new SumArgs(2, 2), new DeferOptions { Queue = "parked" });
        release.SetResult();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", first));
        Assert.Equal("todo", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", second));
    }

    [Fact]
    public async Task An_immediate_retry_wakes_an_idle_worker_without_waiting_for_the_poll()
    {
        await using var app = db.CreateApp();
        var runs = new List<DateTimeOffset>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("retry_wake", _ =>
        {
            lock (runs)
            {
                runs.Add(DateTimeOffset.UtcNow);
                if (runs.Count == 2) done.TrySetResult();
                if (runs.Count == 1) throw new InvalidOperationException();
            }
        }, retry: RetryStrategy.Times(1));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(60) }, cts.Token);
        await Task.Delay(500);
        await task.DeferAsync(new SumArgs(1, 1));
        await done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;
        Assert.True(runs[1] - runs[0] < TimeSpan.FromSeconds(3), $"second run came {runs[1] - runs[0]} after the first");
    }
}
