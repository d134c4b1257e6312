using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Telemetry;

public sealed class TelemetryTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static WorkerOptions OneShot => new() { Wait = false, HandleSignals = false, ListenNotify = false };

    [Fact]
    public async Task Defer_makes_a_producer_span_and_each_run_a_consumer_span_linked_to_it()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == ProcrastinateTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => spans.Enqueue(a),
        };
        ActivitySource.AddActivityListener(listener);

        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("traced", _ => { }, queue: "tq");
        var id = await task.DeferAsync(new SumArgs(1, 2));
        var failing = app.Task<SumArgs>("traced_fail", _ => throw new InvalidOperationException("nope"), queue: "tq");
        var failedId = await failing.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(OneShot with { Queues = ["tq"] });

        var mine = spans.Where(s => s.GetTagItem("messaging.destination.name") as string == "tq").ToList();
        var send = Assert.Single(mine, s => s.Kind == ActivityKind.Producer && (string?)s.GetTagItem("messaging.message.id") == id.ToString());
        Assert.Equal("send tq", send.DisplayName);
        Assert.Equal("traced", send.GetTagItem("procrastinate.task.name"));
        var process = Assert.Single(mine, s => s.Kind == ActivityKind.Consumer && (string?)s.GetTagItem("messaging.message.id") == id.ToString());
        Assert.Equal("process tq", process.DisplayName);
        Assert.Equal("succeeded", process.GetTagItem("procrastinate.job.status"));
        var link = Assert.Single(process.Links);
        Assert.Equal(send.TraceId, link.Context.TraceId);
        Assert.Equal(send.SpanId, link.Context.SpanId);

        var failedRun = Assert.Single(mine, s => s.Kind == ActivityKind.Consumer && (string?)s.GetTagItem("messaging.message.id") == failedId.ToString());
        Assert.Equal(ActivityStatusCode.Error, failedRun.Status);
        Assert.Equal("failed", failedRun.GetTagItem("procrastinate.job.status"));

        // The context is stored beside the job, not in its arguments.
        Assert.Equal(send.Id, await db.ScalarAsync<string>("SELECT traceparent FROM procrastinate_dotnet_job_trace WHERE job_id = $1", id));
        Assert.Equal("""{"a": 1, "b": 2}""", await db.ScalarAsync<string>("SELECT args::text FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Without_a_listener_no_trace_context_is_stored_unless_an_ambient_activity_exists()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("untraced", _ => { });
        var plain = await task.DeferAsync(new SumArgs(1, 1));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_job_trace WHERE job_id = $1", plain));

        using var ambient = new Activity("web request").SetIdFormat(ActivityIdFormat.W3C).Start();
        var inRequest = await task.DeferAsync(new SumArgs(1, 1));
        Assert.Equal(ambient.Id, await db.ScalarAsync<string>("SELECT traceparent FROM procrastinate_dotnet_job_trace WHERE job_id = $1", inRequest));
    }

    [Fact]
    public async Task Counters_histogram_and_gauges_report_the_jobs()
    {
        var measurements = new ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ProcrastinateTelemetry.MeterName)
                    l.EnableMeasurementEvents(instrument);
            },
        };
        void Record(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var dict = new Dictionary<string, object?>();
            foreach (var t in tags) dict[t.Key] = t.Value;
            measurements.Enqueue((i.Name, v, dict));
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        await using var app = db.CreateApp();
        var inJob = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ok = app.Task<SumArgs>("metered", async a => { if (a.A == 0) { inJob.TrySetResult(); await release.Task; } }, queue: "mq");
        var flaky = app.Task<SumArgs>("metered_retry", _ => throw new InvalidOperationException(), queue: "mq", retry: RetryStrategy.Times(1));
        await ok.DeferManyAsync([new SumArgs(0, 0), new SumArgs(1, 1)]);
        await flaky.DeferAsync(new SumArgs(1, 1));

        var run = app.RunWorkerAsync(OneShot with { Queues = ["mq"], FetchJobPollingInterval = TimeSpan.FromMilliseconds(200) });
        await inJob.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // While a job runs: the running gauge sees it, the depth gauge sees the waiting ones.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            listener.RecordObservableInstruments();
            await Task.Delay(50);
        }
        while (!measurements.Any(m => m.Name == "procrastinate.queue.depth" && (string?)m.Tags["messaging.destination.name"] == "mq") && DateTime.UtcNow < deadline);
        release.SetResult();
        await run;

        double Sum(string name, string? status = null) => measurements
            .Where(m => m.Name == name && m.Tags.GetValueOrDefault("messaging.destination.name") as string == "mq"
                && (status is null || m.Tags.GetValueOrDefault("procrastinate.job.status") as string == status))
            .Sum(m => m.Value);
        Assert.Equal(3, Sum("procrastinate.jobs.deferred"));
        Assert.Equal(4, Sum("procrastinate.jobs.started"));             // 2 ok + the flaky one twice
        Assert.Equal(2, Sum("procrastinate.jobs.completed", "succeeded"));
        Assert.Equal(1, Sum("procrastinate.jobs.completed", "retried"));
        Assert.Equal(1, Sum("procrastinate.jobs.completed", "failed"));
        Assert.Equal(1, Sum("procrastinate.jobs.retried"));
        Assert.Equal(4, measurements.Count(m => m.Name == "procrastinate.job.duration" && m.Tags.GetValueOrDefault("messaging.destination.name") as string == "mq"));
        Assert.Contains(measurements, m => m.Name == "procrastinate.jobs.running" && m.Value >= 1);
        Assert.Contains(measurements, m => m.Name == "procrastinate.queue.depth" && (string?)m.Tags["messaging.destination.name"] == "mq");
    }
}
