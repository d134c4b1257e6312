namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>The overview: jobs per status and per queue, throughput and failures over time, workers and their heartbeats.</summary>
internal static class OverviewPage
{
    private static readonly (string Key, TimeSpan Window, TimeSpan Bucket, string Label)[] Ranges =
    [
        ("1h", TimeSpan.FromHours(1), TimeSpan.FromMinutes(1), "Last hour, per minute"),
        ("6h", TimeSpan.FromHours(6), TimeSpan.FromMinutes(5), "Last 6 hours, per 5 minutes"),
        ("24h", TimeSpan.FromHours(24), TimeSpan.FromMinutes(30), "Last 24 hours, per 30 minutes"),
    ];

    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var jobs = request.App.Jobs;
        var range = Ranges.FirstOrDefault(r => r.Key == request.Query("range"));
        if (range.Key is null)
            range = Ranges[0];

        var queues = await jobs.ListQueuesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var workers = await jobs.ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        var stalled = await jobs.ListStalledJobsAsync(request.Dashboard.Options.StalledThreshold, cancellationToken: cancellationToken).ConfigureAwait(false);
        var throughput = await request.Dashboard.Queries.GetThroughputAsync(range.Window, range.Bucket, cancellationToken).ConfigureAwait(false);

        var totals = Totals(queues);
        var cards = Format.Statuses.Select(s => Html.Of($"""
            <a class="card s-{s.ToDbString()}" href="{request.Url("/jobs", ("status", s.ToDbString()))}">
              <span class="card-label">{s.ToDbString()}</span>
              <span class="card-value" data-count="{s.ToDbString()}">{Format.Number(Count(totals, s))}</span>
            </a>
            """));

        var content = Html.Of($"""
            <section class="cards" data-live="status-cards" aria-label="Jobs per status">
            {cards}
            <a class="card s-stalled" href="{request.Url("/stalled")}">
              <span class="card-label">stalled</span>
              <span class="card-value" data-count="stalled">{Format.Number(stalled.Count)}</span>
            </a>
            </section>
            <section class="panel" data-live="throughput">
              <div class="panel-head">
                <h2>Throughput and failures</h2>
                <nav class="tabs small" aria-label="Period">{Ranges.Select(r => RangeLink(request, r.Key, r.Key == range.Key))}</nav>
              </div>
              {ThroughputPanel(throughput, range.Label)}
            </section>
            <div class="columns">
            <section class="panel" data-live="queues">
              <div class="panel-head"><h2>Queues</h2><a href="{request.Url("/queues")}">All queues</a></div>
              {QueuesTable(request, queues)}
            </section>
            <section class="panel" data-live="workers">
              <div class="panel-head"><h2>Workers</h2><a href="{request.Url("/workers")}">All workers</a></div>
              {WorkersPage.Table(request, workers, compact: true)}
            </section>
            </div>
            """);
        await request.WritePageAsync("overview", "Overview", content).ConfigureAwait(false);
    }

    private static Html RangeLink(DashboardRequest request, string key, bool current) => current
        ? Html.Of($"""<a href="{request.Url("/", ("range", key))}" aria-current="true">{key}</a>""")
        : Html.Of($"""<a href="{request.Url("/", ("range", key))}">{key}</a>""");

    private static Html ThroughputPanel(Throughput? throughput, string label)
    {
        if (throughput is null)
            return Html.Raw("""<p class="muted">Charts need the PostgreSQL connector.</p>""");
        var succeeded = throughput.Buckets.Sum(b => b.Succeeded);
        var failed = throughput.Buckets.Sum(b => b.Failed);
        var deferred = throughput.Buckets.Sum(b => b.Deferred);
        var finished = succeeded + failed;
        var failureRate = finished == 0 ? "0 %" : (failed * 100.0 / finished).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) + " %";
        var truncated = throughput.Truncated
            ? Html.Of($"""<p class="muted small">Only the latest {Format.Number(DashboardQueries.MaxEventsScanned)} events were counted; older bars may be low.</p>""")
            : Html.Empty;
        return Html.Of($"""
            <p class="chart-summary">{label}: <strong class="t-ok">{Format.Number(succeeded)}</strong> succeeded,
              <strong class="t-fail">{Format.Number(failed)}</strong> failed ({failureRate}),
              <strong class="t-deferred">{Format.Number(deferred)}</strong> deferred.</p>
            {Charts.Throughput(throughput)}
            <p class="legend"><span class="key k-ok"></span>succeeded <span class="key k-fail"></span>failed <span class="key k-deferred"></span>deferred</p>
            {truncated}
            """);
    }

    internal static Html QueuesTable(DashboardRequest request, IReadOnlyList<JobCounts> queues)
    {
        if (queues.Count == 0)
            return Html.Raw("""<p class="empty-state">No jobs yet.</p>""");
        var rows = queues.OrderBy(q => q.Name, StringComparer.Ordinal).Select(q => Html.Of($"""
            <tr>
              <td><a href="{request.Url("/jobs", ("queue", q.Name))}"><code>{q.Name}</code></a></td>
              <td class="num">{Format.Number(q.Todo)}</td>
              <td class="num">{Format.Number(q.Doing)}</td>
              <td class="num">{Format.Number(q.Failed)}</td>
              <td class="num">{Format.Number(q.JobsCount)}</td>
              <td class="dist-cell">{Charts.Distribution(q)}</td>
            </tr>
            """));
        return Html.Of($"""
            <table class="grid-table">
              <thead><tr><th>Queue</th><th class="num">Todo</th><th class="num">Doing</th><th class="num">Failed</th><th class="num">Total</th><th>Statuses</th></tr></thead>
              <tbody>{rows}</tbody>
            </table>
            """);
    }

    internal static JobCounts Totals(IEnumerable<JobCounts> groups) =>
        groups.Aggregate(new JobCounts("", 0, 0, 0, 0, 0, 0, 0), (t, q) => new JobCounts("",
            t.JobsCount + q.JobsCount, t.Todo + q.Todo, t.Doing + q.Doing, t.Succeeded + q.Succeeded,
            t.Failed + q.Failed, t.Cancelled + q.Cancelled, t.Aborted + q.Aborted));

    internal static long Count(JobCounts counts, JobStatus status) => status switch
    {
        JobStatus.Todo => counts.Todo,
        JobStatus.Doing => counts.Doing,
        JobStatus.Succeeded => counts.Succeeded,
        JobStatus.Failed => counts.Failed,
        JobStatus.Cancelled => counts.Cancelled,
        JobStatus.Aborted => counts.Aborted,
        _ => 0,
    };
}
