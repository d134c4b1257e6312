using System.Collections.Concurrent;
using Procrastinate.Internal;
using Procrastinate.Testing;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Behaviour;

/// <summary>
/// The behaviour every connector must have, written once, through the public API (plus the
/// connector contract where a test needs another process's view). It runs against PostgreSQL
/// and against the in-memory connector; a behaviour that differs is a failing test.
/// </summary>
public abstract class BehaviourSuite : IAsyncLifetime
{
    /// <summary>A fresh app on a clean store.</summary>
    protected abstract App CreateApp();

    /// <summary>Lets time pass on the store's clock (waits on PostgreSQL, advances a manual clock in memory).</summary>
    protected abstract Task PassAsync(TimeSpan time);

    /// <summary>The clock the app uses.</summary>
    protected abstract TimeProvider Clock { get; }

    public abstract Task InitializeAsync();

    public virtual Task DisposeAsync() => Task.CompletedTask;

    private App NewApp(out JobHarness harness)
    {
        var app = CreateApp();
        harness = new JobHarness(app);
        return app;
    }

    [Fact]
    public async Task A_deferred_job_runs_and_succeeds_with_Procrastinates_events()
    {
        await using var app = NewApp(out var harness);
        var sum = app.Task<SumArgs>("sum", _ => { });
        var id = await sum.DeferAsync(new SumArgs(3, 5));
        var job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal(("sum", "default", 0, JobStatus.Todo, 0, """{"a": 3, "b": 5}"""), (job.TaskName, job.Queue, job.Priority, job.Status, job.Attempts, job.ArgsJson));

        var runs = await harness.RunDueJobsAsync();
        Assert.Equal(JobStatus.Succeeded, Assert.Single(runs).Status);
        job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal((JobStatus.Succeeded, 1), (job.Status, job.Attempts));
        Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded], (await app.Jobs.ListEventsAsync(id)).Select(e => e.Type!.Value));
    }

    [Fact]
    public async Task A_failing_job_fails_and_an_unknown_task_fails_without_retry()
    {
        await using var app = NewApp(out var harness);
        var boom = app.Task<SumArgs>("boom", _ => throw new InvalidOperationException("boom"));
        var failing = await boom.DeferAsync(new SumArgs(1, 1));
        var unknown = await app.DeferAsync("nobody.knows", "{}");
        var runs = await harness.RunDueJobsAsync();
        Assert.Equal(2, runs.Count);
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(failing));
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(unknown));
        Assert.IsType<TaskNotFoundException>(runs.Single(r => r.Job.Id == unknown).Exception);
    }

    [Fact]
    public async Task Jobs_run_by_priority_then_id_from_the_served_queues_only()
    {
        await using var app = NewApp(out var harness);
        var order = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("ordered", a => order.Enqueue(a.A));
        await task.DeferAsync(new SumArgs(1, 0));
        await task.DeferAsync(new SumArgs(2, 0), new DeferOptions { Priority = 5 });
        await task.DeferAsync(new SumArgs(3, 0));
        await task.DeferAsync(new SumArgs(4, 0), new DeferOptions { Priority = -1 });
        var elsewhere = await task.DeferAsync(new SumArgs(5, 0), new DeferOptions { Queue = "elsewhere" });
        await harness.RunDueJobsAsync(["default"]);
        Assert.Equal([2, 1, 3, 4], order);
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(elsewhere));
    }

    [Fact]
    public async Task Jobs_of_one_lock_run_in_order_and_a_future_head_blocks_the_lock()
    {
        await using var app = NewApp(out var harness);
        var order = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("locked", a => order.Enqueue(a.A), @lock: "L");
        await task.DeferManyAsync([new SumArgs(1, 0), new SumArgs(2, 0)]);
        await task.DeferAsync(new SumArgs(3, 0), new DeferOptions { Priority = 1 });
        await harness.RunDueJobsAsync();
        Assert.Equal([3, 1, 2], order);

        var head = await task.DeferAsync(new SumArgs(4, 0), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
        var blocked = await task.DeferAsync(new SumArgs(5, 0));
        Assert.Empty(await harness.RunDueJobsAsync());
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(blocked));
        await app.Jobs.CancelAsync(head);
        Assert.Single(await harness.RunDueJobsAsync());
    }

    [Fact]
    public async Task A_queueing_lock_allows_one_waiting_job()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("unique", _ => { }, queueingLock: "k");
        var first = await task.DeferAsync(new SumArgs(1, 1));
        var conflict = await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => task.DeferAsync(new SumArgs(2, 2)));
        Assert.Equal(("k", (long?)first), (conflict.QueueingLock, conflict.ExistingJobId));
        Assert.Equal(first, await task.DeferAsync(new SumArgs(3, 3), new DeferOptions { IgnoreAlreadyEnqueued = true }));
        await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => task.DeferManyAsync([new SumArgs(4, 4)], new DeferOptions { QueueingLock = "k" }));
        await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => task.DeferManyAsync([new SumArgs(5, 5), new SumArgs(6, 6)], new DeferOptions { QueueingLock = "other" }));
        Assert.Single(await app.Jobs.ListAsync());

        await harness.RunDueJobsAsync();
        var again = await task.DeferAsync(new SumArgs(7, 7));
        Assert.NotEqual(first, again);
    }

    [Fact]
    public async Task A_scheduled_job_waits_for_its_time()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("later", _ => { });
        var id = await task.DeferAsync(new SumArgs(1, 1), new DeferOptions { ScheduleIn = TimeSpan.FromSeconds(1) });
        Assert.Empty(await harness.RunDueJobsAsync());
        await PassAsync(TimeSpan.FromSeconds(1.2));
        Assert.Single(await harness.RunDueJobsAsync());
        Assert.Equal(JobStatus.Succeeded, await app.Jobs.GetStatusAsync(id));
        Assert.Equal([JobEventType.Scheduled, JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded],
            (await app.Jobs.ListEventsAsync(id)).Select(e => e.Type!.Value));
    }

    [Fact]
    public async Task Retries_follow_the_strategy_and_end_failed()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("flaky", _ => throw new InvalidOperationException(), retry: RetryStrategy.Times(2));
        var id = await task.DeferAsync(new SumArgs(1, 1));
        var runs = await harness.RunDueJobsAsync();
        Assert.Equal([true, true, false], runs.Select(r => r.Retried));
        Assert.Equal([0, 1, 2], runs.Select(r => r.Job.Attempts));
        var job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal((JobStatus.Failed, 3), (job.Status, job.Attempts));
    }

    [Fact]
    public async Task A_retry_with_a_wait_is_due_after_it()
    {
        await using var app = NewApp(out var harness);
        var calls = 0;
        var task = app.Task<SumArgs>("waits", _ => { if (Interlocked.Increment(ref calls) == 1) throw new InvalidOperationException(); },
            retry: new RetryStrategy { Wait = TimeSpan.FromSeconds(1) });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        var before = Clock.GetUtcNow();
        var first = Assert.Single(await harness.RunDueJobsAsync());
        var after = Clock.GetUtcNow();
        Assert.True(first.Retried);
        var job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal(JobStatus.Todo, job.Status);
        Assert.InRange(job.ScheduledAt!.Value, before.AddSeconds(1).AddMilliseconds(-1), after.AddSeconds(1));
        await PassAsync(TimeSpan.FromSeconds(1.2));
        Assert.Equal(JobStatus.Succeeded, Assert.Single(await harness.RunDueJobsAsync()).Status);
    }

    [Fact]
    public async Task Cancel_delete_abort_and_manual_retry_change_statuses_as_Procrastinate_does()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("cancellable", a => { if (a.A == 9) throw new InvalidOperationException(); });
        var a = await task.DeferAsync(new SumArgs(1, 1));
        var b = await task.DeferAsync(new SumArgs(2, 2));
        var c = await task.DeferAsync(new SumArgs(3, 3));
        Assert.True(await app.Jobs.CancelAsync(a));
        Assert.False(await app.Jobs.CancelAsync(a));
        Assert.True(await app.Jobs.CancelAsync(b, delete: true));
        Assert.Null(await app.Jobs.GetAsync(b));
        Assert.True(await app.Jobs.AbortAsync(c));
        var aborted = (await app.Jobs.GetAsync(c))!;
        Assert.Equal((JobStatus.Cancelled, true), (aborted.Status, aborted.AbortRequested));
        Assert.Equal([JobEventType.Deferred, JobEventType.AbortRequested, JobEventType.Cancelled], (await app.Jobs.ListEventsAsync(c)).Select(e => e.Type!.Value));
        Assert.False(await app.Jobs.CancelAsync(-1));
        Assert.Null(await app.Jobs.GetStatusAsync(-1));

        var failing = await task.DeferAsync(new SumArgs(9, 9));
        await harness.RunDueJobsAsync();
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(failing));
        await app.Jobs.RetryAsync(failing, priority: 4);
        var retried = (await app.Jobs.GetAsync(failing))!;
        Assert.Equal((JobStatus.Todo, 2, 4), (retried.Status, retried.Attempts, retried.Priority));
        Assert.Equal(JobEventType.Retried, (await app.Jobs.ListEventsAsync(failing)).Last(e => e.Type != JobEventType.Scheduled).Type);
        var invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => app.Jobs.RetryAsync(a));
        Assert.Contains("invalid status to retry", invalid.Message);
    }

    [Fact]
    public async Task An_abort_request_stops_a_running_job()
    {
        await using var app = NewApp(out _);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        AbortReason? reason = null;
        var task = app.Task<SumArgs>("endless", async (_, ctx) =>
        {
            started.TrySetResult();
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
        var run = app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await app.Jobs.AbortAsync(id));
        await run.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(AbortReason.UserRequest, reason);
        var job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal((JobStatus.Aborted, false), (job.Status, job.AbortRequested));
    }

    [Fact]
    public async Task Periodic_ticks_are_deduplicated_and_never_go_back()
    {
        await using var app = NewApp(out _);
        var task = app.Task<SumArgs>("tick", _ => { });
        JobToDefer Tick(long t) => task.BuildJob($$"""{"a": 0, "b": 0, "timestamp": {{t}}}""", null);
        Assert.NotNull(await app.Connector.DeferPeriodicJobAsync(Tick(100), "", 100, default));
        Assert.Null(await app.Connector.DeferPeriodicJobAsync(Tick(100), "", 100, default));
        Assert.NotNull(await app.Connector.DeferPeriodicJobAsync(Tick(160), "", 160, default));
        Assert.Null(await app.Connector.DeferPeriodicJobAsync(Tick(130), "", 130, default));
        Assert.NotNull(await app.Connector.DeferPeriodicJobAsync(Tick(130), "other-id", 130, default));
        Assert.Equal(160, await app.Connector.GetLastPeriodicTickAsync("tick", "", default));
        Assert.Equal(3, (await app.Jobs.ListAsync(new JobFilter { Task = "tick" })).Count);
    }

    [Fact]
    public async Task Stalled_jobs_of_a_silent_worker_are_listed_and_rescued()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("stalls", _ => { });
        var id = await task.DeferAsync(new SumArgs(1, 1));
        var dead = await app.Connector.RegisterWorkerAsync(new WorkerRegistration("dead", "host", 1, null, 1), default);
        Assert.Single(await app.Connector.FetchJobsAsync(null, dead, 10, default));
        Assert.Empty(await app.Jobs.ListStalledJobsAsync(TimeSpan.FromMinutes(1)));

        await PassAsync(TimeSpan.FromSeconds(1.1));
        var threshold = TimeSpan.FromSeconds(1);
        Assert.Equal([id], (await app.Jobs.ListStalledJobsAsync(threshold)).Select(j => j.Id));
        Assert.Equal([id], (await app.Jobs.RescueStalledJobsAsync(threshold)).Select(j => j.Id));
        var job = (await app.Jobs.GetAsync(id))!;
        Assert.Equal((JobStatus.Todo, 1), (job.Status, job.Attempts));
        Assert.Equal(JobStatus.Succeeded, Assert.Single(await harness.RunDueJobsAsync()).Status);

        // The heartbeat of a live worker keeps its jobs out of the list; pruning clears the worker.
        var live = await app.Connector.RegisterWorkerAsync(new WorkerRegistration("live", "host", 2, null, 1), default);
        await task.DeferAsync(new SumArgs(2, 2));
        Assert.Single(await app.Connector.FetchJobsAsync(null, live, 10, default));
        await PassAsync(TimeSpan.FromSeconds(1.1));
        Assert.True(await app.Connector.UpdateHeartbeatAsync(live, default));
        Assert.Empty(await app.Jobs.ListStalledJobsAsync(threshold));
        Assert.Contains(dead, await app.Connector.PruneStalledWorkersAsync(threshold, default));
        Assert.False(await app.Connector.UpdateHeartbeatAsync(dead, default));
    }

    [Fact]
    public async Task A_workers_running_jobs_that_it_does_not_hold_are_found_as_a_claim_returns_them()
    {
        // What a worker looks for after a claim whose answer was lost (Worker.AdoptOrphanedJobsAsync).
        await using var app = NewApp(out _);
        var task = app.Task<SumArgs>("orphans", _ => { });
        var low = await task.DeferAsync(new SumArgs(1, 1));
        var high = await task.DeferAsync(new SumArgs(2, 2), new DeferOptions { Priority = 5 });
        var held = await task.DeferAsync(new SumArgs(3, 3), new DeferOptions { Priority = 9 });
        var waiting = await task.DeferAsync(new SumArgs(4, 4));
        var me = await app.Connector.RegisterWorkerAsync(new WorkerRegistration("me", "host", 1, null, 4), default);
        var other = await app.Connector.RegisterWorkerAsync(new WorkerRegistration("other", "host", 2, null, 4), default);
        Assert.Equal([held, high, low], (await app.Connector.FetchJobsAsync(null, me, 3, default)).Select(j => j.Id));
        Assert.Equal([waiting], (await app.Connector.FetchJobsAsync(null, other, 3, default)).Select(j => j.Id));

        var orphans = await app.Connector.FetchOrphanedJobsAsync(me, [held], default);
        Assert.Equal([high, low], orphans.Select(j => j.Id));
        Assert.All(orphans, j => Assert.Equal((JobStatus.Doing, (long?)me, "orphans"), (j.Status, j.WorkerId, j.TaskName)));
        Assert.Equal("""{"a": 2, "b": 2}""", orphans[0].ArgsJson);
        Assert.Empty(await app.Connector.FetchOrphanedJobsAsync(me, [held, high, low], default));
        Assert.Equal([waiting], (await app.Connector.FetchOrphanedJobsAsync(other, [], default)).Select(j => j.Id));
    }

    [Fact]
    public async Task Listings_count_per_queue_task_and_lock_and_page_jobs()
    {
        await using var app = NewApp(out var harness);
        var t1 = app.Task<SumArgs>("t1", _ => { }, queue: "q1");
        var t2 = app.Task<SumArgs>("t2", _ => throw new InvalidOperationException(), queue: "q2");
        var ids = await t1.DeferManyAsync([new SumArgs(1, 1), new SumArgs(2, 2)], new DeferOptions { Lock = "L" });
        await t2.DeferAsync(new SumArgs(3, 3));
        await harness.RunDueJobsAsync(["q2"]);
        Assert.Equal([new JobCounts("q1", 2, 2, 0, 0, 0, 0, 0), new JobCounts("q2", 1, 0, 0, 0, 1, 0, 0)], await app.Jobs.ListQueuesAsync());
        Assert.Equal([new JobCounts("t1", 2, 2, 0, 0, 0, 0, 0), new JobCounts("t2", 1, 0, 0, 0, 1, 0, 0)], await app.Jobs.ListTasksAsync());
        Assert.Equal([new JobCounts("L", 2, 2, 0, 0, 0, 0, 0)], await app.Jobs.ListLocksAsync());
        var page1 = await app.Jobs.ListAsync(page: new JobPage(Limit: 2));
        var page2 = await app.Jobs.ListAsync(page: new JobPage(Limit: 2, After: page1[^1].Id));
        Assert.Equal(3, page1.Count + page2.Count);
        Assert.Equal(ids, (await app.Jobs.ListAsync(new JobFilter { Lock = "L" })).Select(j => j.Id));
    }

    [Fact]
    public async Task Old_finished_jobs_are_deleted_and_waiting_ones_are_kept()
    {
        await using var app = NewApp(out var harness);
        var task = app.Task<SumArgs>("cleanup", _ => { });
        var done = await task.DeferAsync(new SumArgs(1, 1));
        await harness.RunDueJobsAsync();
        var waiting = await task.DeferAsync(new SumArgs(2, 2));
        await PassAsync(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, await app.Jobs.DeleteOldJobsAsync(maxHours: 0));
        Assert.Null(await app.Jobs.GetAsync(done));
        Assert.NotNull(await app.Jobs.GetAsync(waiting));
    }

    [Fact]
    public async Task Arguments_are_stored_as_jsonb_prints_them()
    {
        await using var app = NewApp(out _);
        var id = await app.DeferAsync("raw", """{"zeta":1,"a":{"y":[1,2],"x":"é\n"},"a":2,"mid":null}""");
        Assert.Equal("""{"a": 2, "mid": null, "zeta": 1}""", (await app.Jobs.GetAsync(id))!.ArgsJson);
    }
}

public sealed class PostgresBehaviourTests(DatabaseFixture db) : BehaviourSuite, IClassFixture<DatabaseFixture>
{
    protected override App CreateApp() => db.CreateApp();

    protected override Task PassAsync(TimeSpan time) => Task.Delay(time);

    protected override TimeProvider Clock => TimeProvider.System;

    public override Task InitializeAsync() => db.ResetAsync();
}

/// <summary>The same suite on the lean table layout (<see cref="SchemaLayout.Lean"/>).</summary>
public sealed class PostgresLeanBehaviourTests(LeanDatabaseFixture db) : BehaviourSuite, IClassFixture<LeanDatabaseFixture>
{
    protected override App CreateApp() => db.CreateApp();

    protected override Task PassAsync(TimeSpan time) => Task.Delay(time);

    protected override TimeProvider Clock => TimeProvider.System;

    public override Task InitializeAsync() => db.ResetAsync();
}

public sealed class InMemoryBehaviourTests : BehaviourSuite
{
    private readonly ManualTimeProvider _clock = new();
    private readonly InMemoryConnector _connector;

    public InMemoryBehaviourTests() => _connector = new InMemoryConnector(_clock);

    protected override App CreateApp() => new(_connector, new AppOptions { TimeProvider = _clock });

    protected override Task PassAsync(TimeSpan time)
    {
        _clock.Advance(time);
        return Task.CompletedTask;
    }

    protected override TimeProvider Clock => _clock;

    public override Task InitializeAsync() => Task.CompletedTask;
}
