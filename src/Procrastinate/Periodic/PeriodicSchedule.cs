using System.Text.Json.Nodes;
using Procrastinate.Internal;

namespace Procrastinate;

/// <summary>
/// One cron schedule of a task. Each tick is deferred once, however many workers run (the
/// database deduplicates on task name, periodic id and tick), with the tick's Unix time in
/// the <c>timestamp</c> argument, as Procrastinate does.
/// </summary>
public sealed class PeriodicSchedule
{
    private readonly JsonObject _args;

    internal PeriodicSchedule(JobTask task, CronExpression cron, string periodicId, JsonObject args, DeferOptions? options)
    {
        Task = task;
        Cron = cron;
        PeriodicId = periodicId;
        _args = args;
        Options = options;
    }

    /// <summary>The task deferred at each tick.</summary>
    public JobTask Task { get; }

    /// <summary>When it runs.</summary>
    public CronExpression Cron { get; }

    /// <summary>Tells several schedules of one task apart (empty by default, as in Procrastinate).</summary>
    public string PeriodicId { get; }

    /// <summary>Queue, priority, lock and queueing lock of the deferred jobs (scheduling options do not apply).</summary>
    public DeferOptions? Options { get; }

    /// <summary>The arguments of the job for <paramref name="tick"/>: the configured ones with <c>timestamp</c> set to the tick.</summary>
    public string ArgsFor(DateTimeOffset tick)
    {
        var args = (JsonObject)_args.DeepClone();
        args["timestamp"] = tick.ToUnixTimeSeconds();
        return args.ToJsonString();
    }

    /// <summary>The next tick strictly after <paramref name="after"/>.</summary>
    public DateTimeOffset NextTick(DateTimeOffset after) => Cron.GetNextOccurrence(after);

    internal JobToDefer BuildJob(DateTimeOffset tick) => Task.BuildJob(ArgsFor(tick), Options);

    /// <inheritdoc />
    public override string ToString() => $"{Task.Name}[{PeriodicId}] {Cron}";
}
