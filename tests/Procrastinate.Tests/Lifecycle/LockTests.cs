using System.Collections.Concurrent;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

public sealed record LockedArgs(string Key, int Seq);

public sealed class LockTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Four_workers_never_run_two_jobs_of_one_lock_at_once_and_keep_their_order()
    {
        var spans = new ConcurrentBag<(string Lock, int Seq, long Start, long End)>();
        var running = new ConcurrentDictionary<string, int>();
        var overlaps = 0;
        var apps = Enumerable.Range(0, 4).Select(_ => db.CreateApp()).ToList();
        foreach (var app in apps)
        {
            app.Task<SumArgs>("free", _ => { });
            app.Task<LockedArgs>("locked", async (a, ctx) =>
            {
                if (running.AddOrUpdate(a.Key, 1, (_, n) => n + 1) > 1)
                    Interlocked.Increment(ref overlaps);
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                await Task.Delay(Random.Shared.Next(1, 15));
                spans.Add((a.Key, a.Seq, start, System.Diagnostics.Stopwatch.GetTimestamp()));
                running.AddOrUpdate(a.Key, 0, (_, n) => n - 1);
            });
        }
        var locks = new[] { "L1", "L2", "L3" };
        const int perLock = 25;
        foreach (var seq in Enumerable.Range(0, perLock))
            foreach (var l in locks)
                await apps[0].DeferAsync("locked", $$"""{"key": "{{l}}", "seq": {{seq}}}""", new DeferOptions { Lock = l });
        // Unlocked jobs in between, so the workers are busy with more than the locks.
        await ((JobTask<SumArgs>)apps[0].FindTask("free")!).DeferManyAsync(Enumerable.Range(0, 50).Select(i => new SumArgs(i, i)));

        await Task.WhenAll(apps.Select(app => app.RunWorkerAsync(new WorkerOptions
        {
            Concurrency = 3, Wait = false, HandleSignals = false, ListenNotify = false,
        })));

        var statuses = await db.QueryAsync("SELECT task_name || ':' || status::text || ':' || coalesce(lock, '-') AS s, count(*) AS n FROM procrastinate_jobs GROUP BY 1 ORDER BY 1");
        Assert.True(perLock * locks.Length == spans.Count && overlaps == 0, $"overlaps {overlaps}, spans {spans.Count}: " + string.Join(", ", statuses.Select(r => $"{r["s"]}={r["n"]}")));
        foreach (var l in locks)
        {
            var ordered = spans.Where(s => s.Lock == l).OrderBy(s => s.Start).ToList();
            Assert.Equal(Enumerable.Range(0, perLock), ordered.Select(s => s.Seq));
            for (var i = 1; i < ordered.Count; i++)
                Assert.True(ordered[i].Start >= ordered[i - 1].End, $"lock {l}: job {ordered[i].Seq} started before {ordered[i - 1].Seq} ended");
        }
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"));
        foreach (var app in apps)
            await app.DisposeAsync();
    }

    [Fact]
    public async Task A_lock_head_with_higher_priority_runs_first_and_a_future_head_blocks_the_lock()
    {
        await using var app = db.CreateApp();
        var order = new ConcurrentQueue<int>();
        var task = app.Task<SumArgs>("heads", a => order.Enqueue(a.A), @lock: "H");
        await task.DeferAsync(new SumArgs(1, 0));
        await task.DeferAsync(new SumArgs(2, 0), new DeferOptions { Priority = 10 });
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false, Concurrency = 2 });
        Assert.Equal([2, 1], order);

        // A head scheduled in the future blocks later jobs of its lock (documented Procrastinate behaviour).
        await task.DeferAsync(new SumArgs(3, 0), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
        var blocked = await task.DeferAsync(new SumArgs(4, 0));
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false });
        Assert.Equal("todo", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", blocked));
    }

    [Fact]
    public async Task A_queueing_lock_race_between_concurrent_defers_leaves_exactly_one_waiting_job()
    {
        var apps = Enumerable.Range(0, 8).Select(_ => db.CreateApp()).ToList();
        var tasks = apps.Select(app => app.Task<SumArgs>("unique", _ => { }, queueingLock: "race")).ToList();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = await Task.WhenAll(tasks.Select(async (t, i) =>
        {
            await start.Task;
            try
            {
                return (Id: (long?)await t.DeferAsync(new SumArgs(i, i)), Conflict: (AlreadyEnqueuedException?)null);
            }
            catch (AlreadyEnqueuedException e)
            {
                return (Id: null, Conflict: e);
            }
        }).Select(t => { start.TrySetResult(); return t; }));

        var winners = results.Where(r => r.Id is not null).ToList();
        Assert.Single(winners);
        Assert.All(results.Where(r => r.Conflict is not null), r => Assert.Equal("race", r.Conflict!.QueueingLock));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = 'race' AND status = 'todo'"));
        foreach (var app in apps)
            await app.DisposeAsync();
    }

    [Fact]
    public async Task A_running_job_does_not_hold_its_queueing_lock()
    {
        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("qlock", async _ => { inJob.TrySetResult(); await release.Task; }, queueingLock: "q");
        await task.DeferAsync(new SumArgs(1, 1));
        var run = app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, ListenNotify = false, Queues = ["default"] });
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var second = await task.DeferAsync(new SumArgs(2, 2), new DeferOptions { Queue = "later" });
        await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => task.DeferAsync(new SumArgs(3, 3)));
        release.SetResult();
        await run;
        Assert.Equal("todo", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", second));
    }

    [Fact]
    public async Task A_released_lock_wakes_the_worker_that_waits_for_it()
    {
        await using var app = db.CreateApp();
        var second = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstEnded = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task Body(SumArgs a)
        {
            if (a.A == 1)
            {
                await Task.Delay(300);
                firstEnded.TrySetResult(DateTimeOffset.UtcNow);
            }
            else
            {
                second.TrySetResult(DateTimeOffset.UtcNow);
            }
        }
        var task = app.Task<SumArgs>("wake_lock", Body, @lock: "W");
        using var cts = new CancellationTokenSource();
        // Two workers with a long poll: the second job must start on the notification sent when the lock is released.
        await using var other = db.CreateApp();
        other.Task<SumArgs>("wake_lock", Body, @lock: "W");
        var runs = new[]
        {
            app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(60), Concurrency = 2 }, cts.Token),
            other.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromSeconds(60) }, cts.Token),
        };
        await Task.Delay(700);
        await task.DeferManyAsync([new SumArgs(1, 0), new SumArgs(2, 0)]);
        var secondStarted = await second.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await cts.CancelAsync();
        await Task.WhenAll(runs);
        var released = await firstEnded.Task;
        Assert.True(secondStarted - released < TimeSpan.FromSeconds(3), $"second started {secondStarted - released} after the lock was released");
    }
}
