using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Procrastinate;

/// <summary>
/// Names to subscribe to with OpenTelemetry (<c>AddSource</c>, <c>AddMeter</c>) or with
/// <see cref="ActivityListener"/> and <see cref="MeterListener"/>.
/// </summary>
/// <remarks>
/// Spans: a producer span <c>send {queue}</c> per defer call and a consumer span
/// <c>process {queue}</c> per job run, linked to the producer span (its W3C context is stored
/// with the job). Metrics: counters <c>procrastinate.jobs.deferred</c>, <c>.started</c>,
/// <c>.completed</c> (tag <c>procrastinate.job.status</c>) and <c>.retried</c>; histogram
/// <c>procrastinate.job.duration</c> (seconds); gauges <c>procrastinate.jobs.running</c> and
/// <c>procrastinate.queue.depth</c> (waiting jobs per served queue, sampled by workers).
/// </remarks>
public static class ProcrastinateTelemetry
{
    /// <summary>The <see cref="ActivitySource"/> name.</summary>
    public const string ActivitySourceName = "Procrastinate";

    /// <summary>The <see cref="Meter"/> name.</summary>
    public const string MeterName = "Procrastinate";

    internal static readonly ActivitySource Source = new(ActivitySourceName,
        typeof(ProcrastinateTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);
}
