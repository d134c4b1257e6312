using Microsoft.Extensions.Logging;

namespace Procrastinate.Internal.Workers;

/// <summary>
/// Defers the ticks of the app's cron schedules; runs in every worker (COMPAT.md 4.6). The
/// database deduplicates, so each tick is deferred once however many workers run.
/// </summary>
/// <remarks>
/// On the first pass, the ticks after the newest one deferred for the schedule (by any worker)
/// are caught up in increasing order; a schedule never deferred starts with its most recent
/// tick, as Procrastinate does. Later passes defer every tick after the last one handled, up to
/// now. Ticks older than <c>maxDelay</c> are skipped. Ticks already deferred are refused by the
/// database. The loop sleeps until the next tick plus 0.5 s.
/// </remarks>
internal sealed class PeriodicDeferrer(Connector store, IReadOnlyList<PeriodicSchedule> schedules, TimeSpan maxDelay, TimeProvider time, ILogger log)
{
    private static readonly TimeSpan WakeMargin = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ErrorRetry = TimeSpan.FromSeconds(5);
    private readonly Dictionary<PeriodicSchedule, DateTimeOffset> _lastHandled = [];

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var failed = false;
            var now = time.GetUtcNow();
            foreach (var schedule in schedules)
            {
                try
                {
                    await DeferDueTicksAsync(schedule, now, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
                {
                    // The ticks not handled stay due; the next pass tries them again (COMPAT.md W11).
                    failed = true;
                    Log.SideLoopError(log, "defer_periodic_job", $"Periodic schedule {schedule}", ErrorRetry, e);
                }
            }

            var wake = failed
                ? now + ErrorRetry
                : schedules.Min(s => s.NextTick(_lastHandled.GetValueOrDefault(s, now))) + WakeMargin;
            var delay = wake - time.GetUtcNow();
            if (delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task DeferDueTicksAsync(PeriodicSchedule schedule, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var oldestAllowed = now - maxDelay;
        DateTimeOffset from;
        if (_lastHandled.TryGetValue(schedule, out var last))
        {
            from = last;
        }
        else
        {
            // First pass: catch up from the newest tick any worker (in any language) deferred.
            // A schedule that never ran starts with its most recent tick, as Procrastinate does.
            var newest = await store.GetLastPeriodicTickAsync(schedule.Task.Name, schedule.PeriodicId, cancellationToken).ConfigureAwait(false);
            if (newest is { } seconds)
            {
                from = DateTimeOffset.FromUnixTimeSeconds(seconds);
            }
            else
            {
                var recent = schedule.Cron.GetOccurrences(oldestAllowed.AddTicks(-1), now).LastOrDefault();
                from = recent == default ? now : recent.AddTicks(-1);
            }
        }
        if (from < oldestAllowed.AddTicks(-1))
        {
            var skipped = schedule.Cron.GetOccurrences(from, oldestAllowed.AddTicks(-1)).Take(100_000).Count();
            if (skipped > 0)
                Log.PeriodicSkipped(log, "defer_periodic_job", skipped, schedule.ToString(), maxDelay);
            from = oldestAllowed.AddTicks(-1);
        }

        foreach (var tick in schedule.Cron.GetOccurrences(from, now))
        {
            try
            {
                var id = await store.DeferPeriodicJobAsync(schedule.BuildJob(tick), schedule.PeriodicId, tick.ToUnixTimeSeconds(), cancellationToken)
                    .ConfigureAwait(false);
                if (id is { } jobId)
                    Log.PeriodicDeferred(log, "defer_periodic_job", jobId, schedule.ToString(), tick);
                else
                    Log.PeriodicAlreadyDeferred(log, "defer_periodic_job", schedule.ToString(), tick);
            }
            catch (AlreadyEnqueuedException)
            {
                Log.PeriodicQueueingLockTaken(log, "defer_periodic_job", schedule.ToString(), tick);
            }
            _lastHandled[schedule] = tick;
        }
        if (!_lastHandled.ContainsKey(schedule))
            _lastHandled[schedule] = now;
    }
}
