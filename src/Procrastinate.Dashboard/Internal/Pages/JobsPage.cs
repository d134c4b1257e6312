using System.Globalization;

namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>The job list: filters, counts per status for those filters, newest first, one page at a time.</summary>
internal static class JobsPage
{
    private static readonly int[] PageSizes = [25, 50, 100, 250];

    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var filter = ReadFilter(request, errors);
        var limit = ReadLong(request, "limit", errors) is { } l ? (int)Math.Clamp(l, 1, 1000) : request.Dashboard.Options.PageSize;
        var after = ReadLong(request, "after", errors);
        var before = after is null ? ReadLong(request, "before", errors) : null;

        var jobs = request.App.Jobs;
        List<Job> page;
        bool hasOlder, hasNewer;
        if (before is { } newerThan)
        {
            // The page of newer jobs: the oldest ones above the cursor, shown newest first.
            var found = await jobs.ListAsync(filter, new JobPage(limit + 1, newerThan, NewestFirst: false), cancellationToken).ConfigureAwait(false);
            hasNewer = found.Count > limit;
            page = [.. found.Take(limit).Reverse()];
            hasOlder = true;
        }
        else
        {
            var found = await jobs.ListAsync(filter, new JobPage(limit + 1, after, NewestFirst: true), cancellationToken).ConfigureAwait(false);
            hasOlder = found.Count > limit;
            page = [.. found.Take(limit)];
            hasNewer = after is not null;
        }
        var times = await request.Dashboard.Queries.GetJobTimesAsync([.. page.Select(j => j.Id)], cancellationToken).ConfigureAwait(false);

        // Counts per status, for the filters the counting query supports.
        var countable = filter.Id is null && filter.QueueingLock is null && filter.WorkerId is null;
        JobCounts? counts = countable
            ? OverviewPage.Totals(await jobs.ListQueuesAsync(filter with { Status = null }, cancellationToken).ConfigureAwait(false))
            : null;

        var firstPage = after is null && before is null;
        var query = FilterQuery(request, filter, limit);
        var errorNote = errors.Count == 0 ? Html.Empty
            : Html.Of($"""<p class="notice warn" role="alert">Ignored: {string.Join("; ", errors)}.</p>""");
        var deleted = request.Query("deleted") is { } d && long.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out var deletedId)
            ? Html.Of($"""<p class="notice ok" role="status">Job #{deletedId} deleted.</p>""")
            : Html.Empty;
        var content = Html.Of($"""
            {deleted}{errorNote}
            {FilterForm(request, filter, limit)}
            <nav class="tabs" aria-label="Status" data-live="status-tabs">{StatusTabs(request, filter, limit, counts)}</nav>
            <section class="panel flush">
            <table class="grid-table jobs" id="jobs-table">
              <thead><tr><th>Id</th><th>Task</th><th>Queue</th><th>Status</th><th class="num">Priority</th><th class="num">Attempts</th><th>Lock</th><th>Deferred</th><th>Last event</th><th>Arguments</th></tr></thead>
              {Rows(request, page, times, firstPage)}
            </table>
            </section>
            {Pager(request, query, page, hasNewer, hasOlder, firstPage)}
            """);
        await request.WritePageAsync("jobs", "Jobs", content).ConfigureAwait(false);
    }

    internal static JobFilter ReadFilter(DashboardRequest request, List<string> errors)
    {
        JobStatus? status = null;
        if (request.Query("status") is { } s)
        {
            try
            {
                status = JobStatusExtensions.ParseDbString(s.ToLowerInvariant());
            }
            catch (ArgumentException)
            {
                errors.Add($"status '{s}' is not one of todo, doing, succeeded, failed, cancelled, aborted");
            }
        }
        return new JobFilter
        {
            Id = ReadLong(request, "id", errors),
            Status = status,
            Queue = request.Query("queue"),
            Task = request.Query("task"),
            Lock = request.Query("lock"),
            QueueingLock = request.Query("queueing_lock"),
            WorkerId = ReadLong(request, "worker", errors),
        };
    }

    private static long? ReadLong(DashboardRequest request, string key, List<string> errors)
    {
        if (request.Query(key) is not { } text)
            return null;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            return value;
        errors.Add($"{key} '{text}' is not a whole number");
        return null;
    }

    private static (string, string?)[] FilterQuery(DashboardRequest request, JobFilter filter, int limit) =>
    [
        ("id", filter.Id?.ToString(CultureInfo.InvariantCulture)), ("status", filter.Status?.ToDbString()),
        ("queue", filter.Queue), ("task", filter.Task), ("lock", filter.Lock), ("queueing_lock", filter.QueueingLock),
        ("worker", filter.WorkerId?.ToString(CultureInfo.InvariantCulture)),
        ("limit", limit == request.Dashboard.Options.PageSize ? null : limit.ToString(CultureInfo.InvariantCulture)),
    ];

    private static Html FilterForm(DashboardRequest request, JobFilter filter, int limit)
    {
        var statusOptions = Format.Statuses.Select(s => filter.Status == s
            ? Html.Of($"""<option value="{s.ToDbString()}" selected>{s.ToDbString()}</option>""")
            : Html.Of($"""<option value="{s.ToDbString()}">{s.ToDbString()}</option>"""));
        var sizes = PageSizes.Append(request.Dashboard.Options.PageSize).Append(limit).Distinct().Order().Select(n => n == limit
            ? Html.Of($"""<option value="{n}" selected>{n}</option>""")
            : Html.Of($"""<option value="{n}">{n}</option>"""));
        var tasks = request.App.Tasks;
        var taskNames = tasks.Select(t => t.Name).Distinct().Order(StringComparer.Ordinal).Select(n => Html.Of($"""<option value="{n}"></option>"""));
        var queueNames = tasks.Select(t => t.Queue).Distinct().Order(StringComparer.Ordinal).Select(n => Html.Of($"""<option value="{n}"></option>"""));
        return Html.Of($"""
            <form class="filters" method="get" action="{request.Url("/jobs")}" role="search">
              <label>Id<input name="id" inputmode="numeric" value="{filter.Id}" size="8"></label>
              <label>Status<select name="status"><option value="">any</option>{statusOptions}</select></label>
              <label>Queue<input name="queue" value="{filter.Queue}" list="queue-names" autocomplete="off"></label>
              <label>Task<input name="task" value="{filter.Task}" list="task-names" autocomplete="off"></label>
              <label>Lock<input name="lock" value="{filter.Lock}" autocomplete="off"></label>
              <label>Queueing lock<input name="queueing_lock" value="{filter.QueueingLock}" autocomplete="off"></label>
              <label>Worker<input name="worker" inputmode="numeric" value="{filter.WorkerId}" size="6"></label>
              <label>Per page<select name="limit">{sizes}</select></label>
              <div class="filter-buttons"><button type="submit" class="button primary">Filter</button><a class="button" href="{request.Url("/jobs")}">Clear</a></div>
              <datalist id="task-names">{taskNames}</datalist>
              <datalist id="queue-names">{queueNames}</datalist>
            </form>
            """);
    }

    private static Html StatusTabs(DashboardRequest request, JobFilter filter, int limit, JobCounts? counts)
    {
        var tabs = new List<Html>();
        var all = FilterQuery(request, filter with { Status = null }, limit);
        tabs.Add(Tab(request.Url("/jobs", all), "all", counts?.JobsCount, filter.Status is null));
        foreach (var status in Format.Statuses)
        {
            var query = FilterQuery(request, filter with { Status = status }, limit);
            tabs.Add(Tab(request.Url("/jobs", query), status.ToDbString(), counts is null ? null : OverviewPage.Count(counts, status), filter.Status == status));
        }
        return Html.Join(tabs);

        static Html Tab(string url, string label, long? count, bool current)
        {
            var number = count is { } n ? Html.Of($"""<span class="count" data-count="{label}">{Format.Number(n)}</span>""") : Html.Empty;
            return current
                ? Html.Of($"""<a href="{url}" class="t-{label}" aria-current="true">{label}{number}</a>""")
                : Html.Of($"""<a href="{url}" class="t-{label}">{label}{number}</a>""");
        }
    }

    private static Html Rows(DashboardRequest request, IReadOnlyList<Job> page, IReadOnlyDictionary<long, JobTimes> times, bool live)
    {
        var rows = page.Select(job =>
        {
            times.TryGetValue(job.Id, out var t);
            var scheduled = job.Status == JobStatus.Todo && job.ScheduledAt is { } at && at > request.Now
                ? Html.Of($"""<span class="muted small" title="{Format.Absolute(at)}">scheduled {Format.Relative(at, request.Now)}</span>""")
                : Html.Empty;
            return Html.Of($"""
                <tr data-job-id="{job.Id}">
                  <td><a href="{request.JobUrl(job.Id)}">#{job.Id}</a></td>
                  <td><a href="{request.JobUrl(job.Id)}" class="task-name">{job.TaskName}</a></td>
                  <td><code>{job.Queue}</code></td>
                  <td>{Format.StatusBadge(job.Status)} {scheduled}</td>
                  <td class="num">{job.Priority}</td>
                  <td class="num">{job.Attempts}</td>
                  <td>{Format.Optional(job.Lock)}</td>
                  <td>{Format.Time(t?.DeferredAt, request.Now)}</td>
                  <td>{Format.Time(t?.LastEventAt, request.Now)}</td>
                  <td class="args"><code>{Format.ArgsPreview(job.ArgsJson)}</code></td>
                </tr>
                """);
        }).ToList();
        var body = rows.Count == 0
            ? Html.Raw("""<tr><td colspan="10" class="empty-state">No job matches these filters.</td></tr>""")
            : Html.Join(rows);
        return live ? Html.Of($"""<tbody data-live="job-rows">{body}</tbody>""") : Html.Of($"<tbody>{body}</tbody>");
    }

    private static Html Pager(DashboardRequest request, (string, string?)[] query, List<Job> page, bool hasNewer, bool hasOlder, bool firstPage)
    {
        if (page.Count == 0 && firstPage)
            return Html.Empty;
        var newest = firstPage ? Html.Raw("""<span class="button disabled">Newest</span>""")
            : Html.Of($"""<a class="button" href="{request.Url("/jobs", query)}" rel="first">Newest</a>""");
        var newer = hasNewer && page.Count > 0
            ? Html.Of($"""<a class="button" href="{request.Url("/jobs", [.. query, ("before", page[0].Id.ToString(CultureInfo.InvariantCulture))])}" rel="prev">← Newer</a>""")
            : Html.Raw("""<span class="button disabled">← Newer</span>""");
        var older = hasOlder && page.Count > 0
            ? Html.Of($"""<a class="button" href="{request.Url("/jobs", [.. query, ("after", page[^1].Id.ToString(CultureInfo.InvariantCulture))])}" rel="next">Older →</a>""")
            : Html.Raw("""<span class="button disabled">Older →</span>""");
        var range = page.Count == 0 ? "no jobs" : $"#{page[0].Id} to #{page[^1].Id}";
        return Html.Of($"""<nav class="pager" aria-label="Pages">{newest}{newer}<span class="muted">{range}</span>{older}</nav>""");
    }
}
