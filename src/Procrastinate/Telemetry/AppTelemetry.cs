using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Procrastinate.Internal;

/// <summary>The instruments of one app (one <see cref="Meter"/> per app, so gauges see its workers).</summary>
internal sealed class AppTelemetry : IDisposable
{
    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, long> _queueDepth = new(StringComparer.Ordinal);

    public AppTelemetry(App app, IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(ProcrastinateTelemetry.MeterName) ?? new Meter(ProcrastinateTelemetry.MeterName);
        Deferred = _meter.CreateCounter<long>("procrastinate.jobs.deferred", "{job}", "Jobs deferred.");
        Started = _meter.CreateCounter<long>("procrastinate.jobs.started", "{job}", "Job runs started.");
        Completed = _meter.CreateCounter<long>("procrastinate.jobs.completed", "{job}", "Job runs ended, by status.");
        Retried = _meter.CreateCounter<long>("procrastinate.jobs.retried", "{job}", "Job runs that ended in a retry.");
        Duration = _meter.CreateHistogram<double>("procrastinate.job.duration", "s", "Duration of job runs.");
        _meter.CreateObservableGauge("procrastinate.jobs.running", () => (long)app.Workers.Sum(w => w.RunningJobs), "{job}", "Jobs running in this process.");
        QueueDepth = _meter.CreateObservableGauge("procrastinate.queue.depth",
            () => _queueDepth.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("messaging.destination.name", kv.Key))),
            "{job}", "Jobs waiting (todo) per queue, as last sampled by a worker.");
    }

    public Counter<long> Deferred { get; }
    public Counter<long> Started { get; }
    public Counter<long> Completed { get; }
    public Counter<long> Retried { get; }
    public Histogram<double> Duration { get; }
    public ObservableGauge<long> QueueDepth { get; }

    public void SetQueueDepth(string queue, long depth) => _queueDepth[queue] = depth;

    public static TagList Tags(string task, string queue) => new()
    {
        { "procrastinate.task.name", task },
        { "messaging.destination.name", queue },
    };

    public void Dispose() => _meter.Dispose();
}
