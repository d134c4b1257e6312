namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>The periodic schedules of the app's tasks: cron, next run, and the last tick deferred.</summary>
internal static class PeriodicPage
{
    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var schedules = request.App.Tasks.SelectMany(t => t.Schedules).ToList();
        var last = await request.Dashboard.Queries.GetLastPeriodicDefersAsync(cancellationToken).ConfigureAwait(false);
        Html body;
        if (schedules.Count == 0)
        {
            body = Html.Raw("""<p class="empty-state">The app serving this dashboard registers no periodic task (<code>task.Periodic("*/5 * * * *")</code>). Schedules of other processes are not known here.</p>""");
        }
        else
        {
            var rows = schedules
                .Select(s => (Schedule: s, Next: s.NextTick(request.Now)))
                .OrderBy(s => s.Next)
                .Select(s =>
                {
                    var schedule = s.Schedule;
                    last.TryGetValue((schedule.Task.Name, schedule.PeriodicId), out var defer);
                    var lastRun = defer is null
                        ? Html.Raw("""<span class="muted">never</span>""")
                        : defer.JobId is { } jobId
                            ? Html.Of($"""<a href="{request.JobUrl(jobId)}">{Format.Time(defer.At, request.Now)}</a>""")
                            : Format.Time(defer.At, request.Now);
                    var zone = schedule.Cron.TimeZone == TimeZoneInfo.Utc ? "UTC" : schedule.Cron.TimeZone.Id;
                    var queue = schedule.Options?.Queue ?? schedule.Task.Queue;
                    return Html.Of($"""
                        <tr>
                          <td><a href="{request.Url("/jobs", ("task", schedule.Task.Name))}"><code>{schedule.Task.Name}</code></a></td>
                          <td>{Format.Optional(schedule.PeriodicId.Length == 0 ? null : schedule.PeriodicId)}</td>
                          <td><code>{schedule.Cron.Expression}</code></td>
                          <td>{zone}</td>
                          <td><code>{queue}</code></td>
                          <td>{Format.Time(s.Next, request.Now)} <span class="muted small">{Format.Absolute(s.Next)}</span></td>
                          <td>{lastRun}</td>
                        </tr>
                        """);
                });
            body = Html.Of($"""
                <table class="grid-table">
                  <thead><tr><th>Task</th><th>Periodic id</th><th>Cron</th><th>Time zone</th><th>Queue</th><th>Next run</th><th>Last deferred</th></tr></thead>
                  <tbody>{rows}</tbody>
                </table>
                """);
        }
        var content = Html.Of($"""
            <p class="lead">Schedules registered in this app. A worker with periodic tasks defers each tick once, however many workers run.</p>
            <section class="panel flush" data-live="periodic">{body}</section>
            """);
        await request.WritePageAsync("periodic", "Periodic tasks", content).ConfigureAwait(false);
    }
}
