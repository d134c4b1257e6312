namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>Job counts per status, per queue, per task or per lock, each row linking to its jobs.</summary>
internal static class CountsPage
{
    public static async Task RenderQueuesAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var rows = await request.App.Jobs.ListQueuesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await WriteAsync(request, "queues", "Queues", "Queue", "queue", rows, Html.Empty).ConfigureAwait(false);
    }

    public static async Task RenderTasksAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var rows = await request.App.Jobs.ListTasksAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await WriteAsync(request, "tasks", "Tasks", "Task", "task", rows, RegisteredTasks(request)).ConfigureAwait(false);
    }

    public static async Task RenderLocksAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var rows = await request.App.Jobs.ListLocksAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var note = Html.Raw("""<p class="lead">Jobs sharing a lock run one at a time. Jobs without a lock are not listed.</p>""");
        await WriteAsync(request, "locks", "Locks", "Lock", "lock", rows, Html.Empty, note).ConfigureAwait(false);
    }

    private static Task WriteAsync(DashboardRequest request, string page, string heading, string column, string filterKey,
        IReadOnlyList<JobCounts> rows, Html after, Html? before = null)
    {
        var table = rows.Count == 0
            ? Html.Of($"""<p class="empty-state">No {heading.ToLowerInvariant()} with jobs.</p>""")
            : Html.Of($"""
                <table class="grid-table counts">
                  <thead><tr><th>{column}</th>{Format.Statuses.Select(s => Html.Of($"""<th class="num">{s.ToDbString()}</th>"""))}<th class="num">Total</th><th>Statuses</th></tr></thead>
                  <tbody>{rows.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => Row(request, filterKey, r))}</tbody>
                </table>
                """);
        var content = Html.Of($"""
            {before ?? Html.Empty}
            <section class="panel flush" data-live="{page}">{table}</section>
            {after}
            """);
        return request.WritePageAsync(page, heading, content);
    }

    private static Html Row(DashboardRequest request, string filterKey, JobCounts row)
    {
        var cells = Charts.Counts(row).Select(c => c.Count == 0
            ? Html.Raw("""<td class="num muted">0</td>""")
            : Html.Of($"""<td class="num"><a href="{request.Url("/jobs", (filterKey, row.Name), ("status", c.Status.ToDbString()))}">{Format.Number(c.Count)}</a></td>"""));
        return Html.Of($"""
            <tr>
              <td><a href="{request.Url("/jobs", (filterKey, row.Name))}"><code>{row.Name}</code></a></td>
              {cells}
              <td class="num"><strong>{Format.Number(row.JobsCount)}</strong></td>
              <td class="dist-cell">{Charts.Distribution(row)}</td>
            </tr>
            """);
    }

    private static Html RegisteredTasks(DashboardRequest request)
    {
        var tasks = request.App.Tasks;
        if (tasks.Count == 0)
            return Html.Raw("""<section class="panel"><h2>Registered in this app</h2><p class="empty-state">The app serving this dashboard registers no task; jobs of other processes are still listed above.</p></section>""");
        var rows = tasks.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => Html.Of($"""
            <tr>
              <td><a href="{request.Url("/jobs", ("task", t.Name))}"><code>{t.Name}</code></a>{Aliases(t)}</td>
              <td><code>{t.Queue}</code></td>
              <td class="num">{t.Priority}</td>
              <td>{Format.Optional(t.Lock)}</td>
              <td>{Format.Optional(t.QueueingLock)}</td>
              <td>{Retry(t.Retry)}</td>
              <td class="num">{t.Schedules.Count}</td>
            </tr>
            """));
        return Html.Of($"""
            <section class="panel flush">
              <h2 class="pad">Registered in this app</h2>
              <table class="grid-table">
                <thead><tr><th>Task</th><th>Default queue</th><th class="num">Priority</th><th>Lock</th><th>Queueing lock</th><th>Retry</th><th class="num">Schedules</th></tr></thead>
                <tbody>{rows}</tbody>
              </table>
            </section>
            """);
    }

    private static Html Aliases(JobTask task) => task.Aliases.Count == 0
        ? Html.Empty
        : Html.Of($"""<br><span class="muted small">aliases: {string.Join(", ", task.Aliases)}</span>""");

    private static string Retry(RetryStrategy retry)
    {
        if (retry.GetType() != typeof(RetryStrategy))
            return "custom";
        if (retry.MaxAttempts < 0)
            return "none";
        var attempts = retry.MaxAttempts is { } max ? $"up to {max} time(s)" : "forever";
        var waits = new List<string>();
        if (retry.Wait > TimeSpan.Zero) waits.Add($"wait {Format.Duration(retry.Wait)}");
        if (retry.LinearWait > TimeSpan.Zero) waits.Add($"linear {Format.Duration(retry.LinearWait)}");
        if (retry.ExponentialWait > TimeSpan.Zero) waits.Add($"exponential {Format.Duration(retry.ExponentialWait)}");
        return waits.Count == 0 ? attempts : $"{attempts}, {string.Join(", ", waits)}";
    }
}
