using System.Globalization;

namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>One job: its fields, arguments, attempts and event timeline, and the actions the user may take.</summary>
internal static class JobDetailsPage
{
    private static readonly Dictionary<string, string> Done = new(StringComparer.Ordinal)
    {
        ["retry"] = "Retried: the job is back to todo with one more attempt.",
        ["cancel"] = "Cancelled.",
        ["abort"] = "Abort requested: the worker stops the job at its next abort check.",
    };

    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        if (request.RouteId() is not { } id
            || await request.App.Jobs.GetDetailsAsync(id, cancellationToken).ConfigureAwait(false) is not { } details)
        {
            await request.WriteErrorAsync(404, "No such job", "This job does not exist (it may have been deleted).", request.Url("/jobs")).ConfigureAwait(false);
            return;
        }
        var job = details.Job;
        var flash = request.Query("done") is { } done && Done.TryGetValue(done, out var message)
            ? Html.Of($"""<p class="notice ok" role="status">{message}</p>""")
            : Html.Empty;
        var actions = await ActionButtonsAsync(request, job).ConfigureAwait(false);
        var task = request.App.FindTask(job.TaskName);
        var content = Html.Of($"""
            {flash}
            <div data-live="job">
            <section class="job-head">
              <p class="job-title"><span class="task-name">{job.TaskName}</span> {Format.StatusBadge(job.Status)}</p>
              {actions}
            </section>
            <div class="columns">
            <section class="panel">
              <h2>Job</h2>
              <dl class="fields">
                <dt>Id</dt><dd>{job.Id}</dd>
                <dt>Task</dt><dd><a href="{request.Url("/jobs", ("task", job.TaskName))}"><code>{job.TaskName}</code></a>{TaskNote(task)}</dd>
                <dt>Queue</dt><dd><a href="{request.Url("/jobs", ("queue", job.Queue))}"><code>{job.Queue}</code></a></dd>
                <dt>Status</dt><dd>{Format.StatusBadge(job.Status)}{AbortNote(job)}</dd>
                <dt>Priority</dt><dd>{job.Priority}</dd>
                <dt>Attempts</dt><dd>{Attempts(job, details.Events)}</dd>
                <dt>Scheduled</dt><dd>{Format.Time(job.ScheduledAt, request.Now)}</dd>
                <dt>Lock</dt><dd>{LockLink(request, job.Lock, "lock")}</dd>
                <dt>Queueing lock</dt><dd>{LockLink(request, job.QueueingLock, "queueing_lock")}</dd>
                <dt>Worker</dt><dd>{WorkerLink(request, job.WorkerId)}</dd>
                <dt>Trace</dt><dd>{Format.Optional(job.TraceParent)}</dd>
              </dl>
              <h2>Arguments</h2>
              <pre class="args-block" id="job-args">{Format.ArgsPretty(job.ArgsJson)}</pre>
            </section>
            <section class="panel">
              <h2>Timeline</h2>
              {Timeline(request, details.Events)}
            </section>
            </div>
            </div>
            """);
        await request.WritePageAsync("jobs", $"Job #{job.Id}", content).ConfigureAwait(false);
    }

    /// <summary>The actions that apply to the job's status and that the actions policy allows, as links to their confirmation pages.</summary>
    private static async Task<Html> ActionButtonsAsync(DashboardRequest request, Job job)
    {
        if (!request.Dashboard.ActionsEnabled)
            return Html.Raw("""<p class="muted small">Read-only dashboard.</p>""");
        var buttons = new List<Html>();
        foreach (var action in ActionPages.ApplicableActions(job.Status))
        {
            if (!await request.Dashboard.CanAsync(request.Context, new DashboardActionResource(action, job)).ConfigureAwait(false))
                continue;
            var name = ActionPages.Name(action);
            var style = action is DashboardAction.Delete or DashboardAction.Abort ? "button danger" : "button";
            buttons.Add(Html.Of($"""<a class="{style}" href="{request.Url($"/jobs/{job.Id}/{name}")}" data-action="{name}">{ActionPages.Verb(action)}</a>"""));
        }
        return buttons.Count == 0
            ? Html.Raw("""<p class="muted small">No action available to you for this job.</p>""")
            : Html.Of($"""<div class="actions">{buttons}</div>""");
    }

    private static Html TaskNote(JobTask? task) => task is null
        ? Html.Raw(""" <span class="muted small">(not registered in this app)</span>""")
        : Html.Empty;

    private static Html AbortNote(Job job) => job.AbortRequested
        ? Html.Raw(""" <span class="badge s-aborted">abort requested</span>""")
        : Html.Empty;

    private static Html Attempts(Job job, IReadOnlyList<JobEvent> events)
    {
        var started = events.Count(e => e.Type == JobEventType.Started);
        var retries = events.Count(e => e.Type is JobEventType.DeferredForRetry or JobEventType.Retried);
        return Html.Of($"""{job.Attempts} <span class="muted small">(runs started: {started}, retries: {retries})</span>""");
    }

    private static Html LockLink(DashboardRequest request, string? value, string key) => value is null
        ? Html.Raw("""<span class="muted">—</span>""")
        : Html.Of($"""<a href="{request.Url("/jobs", (key, value))}"><code>{value}</code></a>""");

    private static Html WorkerLink(DashboardRequest request, long? workerId) => workerId is { } w
        ? Html.Of($"""<a href="{request.Url("/jobs", ("worker", w.ToString(CultureInfo.InvariantCulture)))}">#{w}</a>""")
        : Html.Raw("""<span class="muted">—</span>""");

    internal static Html Timeline(DashboardRequest request, IReadOnlyList<JobEvent> events)
    {
        if (events.Count == 0)
            return Html.Raw("""<p class="empty-state">No event recorded.</p>""");
        var items = new List<Html>();
        DateTimeOffset? runStart = null;
        DateTimeOffset? previous = null;
        var attempt = 0;
        foreach (var e in events.OrderBy(e => e.Id))
        {
            var type = e.Type?.ToDbString() ?? "unknown";
            if (e.Type == JobEventType.Started)
            {
                attempt++;
                runStart = e.At;
            }
            var runTime = e.Type is JobEventType.Succeeded or JobEventType.Failed or JobEventType.DeferredForRetry or JobEventType.Aborted
                && runStart is { } s && e.At is { } end
                ? Html.Of($"""<span class="muted small">ran {Format.Duration(end - s)}</span>""")
                : Html.Empty;
            var gap = e.Type != JobEventType.Scheduled && previous is { } p && e.At is { } at && at > p
                ? Html.Of($"""<span class="muted small">+{Format.Duration(at - p)}</span>""")
                : Html.Empty;
            var when = e.At is { } t ? Html.Of($"""<time datetime="{t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)}">{Format.Absolute(t)}</time>""") : Html.Raw("—");
            items.Add(Html.Of($"""
                <li class="ev ev-{type}">
                  <span class="ev-dot" aria-hidden="true"></span>
                  <span class="ev-label">{Describe(e.Type, attempt)}</span>
                  <span class="ev-time">{when} {gap} {runTime}</span>
                </li>
                """));
            if (e.Type != JobEventType.Scheduled && e.At is { } moment)
                previous = moment;
        }
        return Html.Of($"""<ol class="timeline">{items}</ol>""");
    }

    private static string Describe(JobEventType? type, int attempt) => type switch
    {
        JobEventType.Deferred => "Deferred",
        JobEventType.Scheduled => "Scheduled to run at",
        JobEventType.Started => $"Started (attempt {attempt})",
        JobEventType.DeferredForRetry => "Failed, retry scheduled",
        JobEventType.Failed => "Failed",
        JobEventType.Succeeded => "Succeeded",
        JobEventType.Cancelled => "Cancelled",
        JobEventType.AbortRequested => "Abort requested",
        JobEventType.Aborted => "Aborted",
        JobEventType.Retried => "Retried by hand",
        _ => "Unknown event",
    };
}
