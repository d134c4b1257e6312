using System.Collections.Concurrent;
using System.Diagnostics;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// The way from a notification to a job's start in an idle worker: the claim is sent from the
/// thread that read the notification (the shared listener's), without waking another thread
/// first, and the job it brings starts before the worker's next round trip is sent.
/// </summary>
public sealed class WakeUpTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_notified_worker_claims_on_the_listeners_thread_and_starts_the_job_before_its_next_round_trip()
    {
        await using var app = db.CreateApp();
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("woken_by_notification", _ => ran.TrySetResult());
        // Npgsql starts an activity for each command on the thread that sends it: the call stack
        // there says where a command came from. Its tags, set by the time it stops, say which
        // database it went to: other tests' workers run meanwhile, on databases of their own.
        var database = new Npgsql.NpgsqlConnectionStringBuilder(db.ConnectionString).Database;
        var sent = new ConcurrentQueue<(DateTime At, string Stack)>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = activity => activity.SetCustomProperty("stack", new StackTrace().ToString()),
            ActivityStopped = activity =>
            {
                if (activity.GetCustomProperty("stack") is string stack && activity.GetTagItem("db.namespace") as string == database
                    && (stack.Contains("FetchLoopAsync", StringComparison.Ordinal) || stack.Contains("PollDelayAsync", StringComparison.Ordinal)))
                    sent.Enqueue((activity.StartTimeUtc, stack));
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var cts = new CancellationTokenSource();
        // Polling far away: only the notification can bring the job in time.
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromMinutes(5) }, cts.Token);
        var deadline = Stopwatch.StartNew();
        while (app.Workers.FirstOrDefault() is not { IsListening: true, Id: > 0 } && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        // Let the worker's first turns (a claim at start, another once listening, each followed
        // by a look at the next scheduled job) end: the notification must find it waiting.
        deadline.Restart();
        int seen;
        do
        {
            seen = sent.Count;
            await Task.Delay(300);
        }
        while ((sent.Count != seen || !sent.Any(s => s.Stack.Contains("PollDelayAsync", StringComparison.Ordinal)))
            && deadline.Elapsed < TimeSpan.FromSeconds(15));
        var deferredAt = DateTime.UtcNow;
        await task.DeferAsync(new SumArgs(1, 0));
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // The first claim after the defer came from the listener's thread, and came back with the job: the
        // executor queued for it runs first; the idle worker's look at the next scheduled job
        // goes through the pool after it (possibly after the job), not on from the claim's
        // return (AsyncSignal waking the fetch loop there).
        List<string> order;
        int claim, look;
        deadline.Restart();
        do
        {
            await Task.Delay(20);
            order = [.. sent.Where(s => s.At >= deferredAt).OrderBy(s => s.At).Select(s => s.Stack)];
            claim = order.FindIndex(stack => stack.Contains("FetchJobsAsync", StringComparison.Ordinal));
            look = claim < 0 ? -1 : order.FindIndex(claim + 1, stack => stack.Contains("PollDelayAsync", StringComparison.Ordinal));
        }
        while (look < 0 && deadline.Elapsed < TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;
        Assert.True(claim >= 0, "no claim was sent after the defer");
        Assert.True(order[claim].Contains("SharedListener", StringComparison.Ordinal), "the claim was not sent from the listener's thread:\n" + order[claim]);
        Assert.True(look > claim, "the worker did not look at the next scheduled job after the claim");
        Assert.DoesNotContain("AsyncSignal", order[look], StringComparison.Ordinal);
    }
}
