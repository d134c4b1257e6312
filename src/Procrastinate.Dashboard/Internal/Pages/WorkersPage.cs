using System.Globalization;

namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>The rows of <c>procrastinate_workers</c>: who runs, where, and how fresh their heartbeat is.</summary>
internal static class WorkersPage
{
    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var workers = await request.App.Jobs.ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        var threshold = request.Dashboard.Options.StalledThreshold;
        var content = Html.Of($"""
            <p class="lead">Workers registered in the database. A heartbeat older than {Format.Duration(threshold)} marks a worker as stale; its running jobs show on the <a href="{request.Url("/stalled")}">stalled</a> page.</p>
            <section class="panel" data-live="workers">{Table(request, workers, compact: false)}</section>
            """);
        await request.WritePageAsync("workers", "Workers", content).ConfigureAwait(false);
    }

    public static Html Table(DashboardRequest request, IReadOnlyList<WorkerRow> workers, bool compact)
    {
        if (workers.Count == 0)
            return Html.Raw("""<p class="empty-state">No worker is registered.</p>""");
        var threshold = request.Dashboard.Options.StalledThreshold;
        var rows = workers.OrderBy(w => w.Id).Select(w =>
        {
            var stale = request.Now - w.LastHeartbeat > threshold;
            var state = stale
                ? Html.Raw("""<span class="badge s-failed">stale</span>""")
                : Html.Raw("""<span class="badge s-succeeded">alive</span>""");
            var queues = w.Queues is { Count: > 0 } q ? string.Join(", ", q) : "all queues";
            var running = Html.Of($"""<a href="{request.Url("/jobs", ("worker", w.Id.ToString(CultureInfo.InvariantCulture)), ("status", "doing"))}">{Format.Number(w.RunningJobs)}</a>""");
            var concurrency = w.Concurrency is { } c ? Html.Of($" / {c}") : Html.Empty;
            return compact
                ? Html.Of($"""
                    <tr><td>{w.Id}</td><td>{w.Name ?? "—"}</td><td class="num">{running}{concurrency}</td><td>{Format.Time(w.LastHeartbeat, request.Now)}</td><td>{state}</td></tr>
                    """)
                : Html.Of($"""
                    <tr><td>{w.Id}</td><td>{w.Name ?? "—"}</td><td>{w.Host ?? "—"}</td><td class="num">{w.ProcessId?.ToString(CultureInfo.InvariantCulture) ?? "—"}</td>
                    <td>{queues}</td><td class="num">{running}{concurrency}</td><td>{Format.Time(w.StartedAt, request.Now)}</td>
                    <td>{Format.Time(w.LastHeartbeat, request.Now)}</td><td>{state}</td></tr>
                    """);
        });
        var head = compact
            ? Html.Raw("<tr><th>Id</th><th>Name</th><th class=\"num\">Running</th><th>Heartbeat</th><th>State</th></tr>")
            : Html.Raw("<tr><th>Id</th><th>Name</th><th>Host</th><th class=\"num\">PID</th><th>Queues</th><th class=\"num\">Running</th><th>Started</th><th>Heartbeat</th><th>State</th></tr>");
        return Html.Of($"""
            <table class="grid-table">
              <thead>{head}</thead>
              <tbody>{rows}</tbody>
            </table>
            """);
    }
}
