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
        // there says where the claim came from. Other tests' commands may show up too.
        var sent = new ConcurrentQueue<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = _ =>
            {
                var stack = new StackTrace().ToString();
                if (stack.Contains("FetchLoopAsync", StringComparison.Ordinal) || stack.Contains("PollDelayAsync", StringComparison.Ordinal))
                    sent.Enqueue(stack);
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var cts = new CancellationTokenSource();
        // Polling far away: only the notification can bring the job in time.
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromMinutes(5) }, cts.Token);
        var deadline = Stopwatch.StartNew();
        while (app.Workers.FirstOrDefault() is not { IsListening: true, Id: > 0 } && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20);
        // The worker's first claim (at start, from no notification) is behind it: wait for the
        // loop to settle, then start counting.
        await Task.Delay(300);
        sent.Clear();
        await task.DeferAsync(new SumArgs(1, 0));
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();
        await run;
        var order = sent.ToList();
        var claim = order.FindIndex(stack => stack.Contains("FetchJobsAsync", StringComparison.Ordinal));
        Assert.True(claim >= 0, "no claim was sent after the defer");
        Assert.Contains("SharedListener", order[claim], StringComparison.Ordinal);
        // The claim came back with the job: the executor queued for it runs first; the idle
        // worker's look at the next scheduled job goes through the pool after it, not on from
        // the claim's return (AsyncSignal waking the fetch loop there).
        var look = order.FindIndex(claim + 1, stack => stack.Contains("PollDelayAsync", StringComparison.Ordinal));
        Assert.True(look > claim, "the worker did not look at the next scheduled job after the claim");
        Assert.DoesNotContain("AsyncSignal", order[look], StringComparison.Ordinal);
    }
}
