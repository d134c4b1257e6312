using System.Globalization;

namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>Running jobs whose worker stopped heartbeating, and the rescue action.</summary>
internal static class StalledPage
{
    public static async Task RenderAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var threshold = request.Dashboard.Options.StalledThreshold;
        var stalled = await request.App.Jobs.ListStalledJobsAsync(threshold, cancellationToken: cancellationToken).ConfigureAwait(false);
        var rescued = request.Query("rescued") is { } r && int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? Html.Of($"""<p class="notice ok" role="status">{Format.Number(n)} stalled job(s) rescued.</p>""")
            : Html.Empty;
        var rescue = stalled.Count > 0 && request.Dashboard.ActionsEnabled
            && await request.Dashboard.CanAsync(request.Context, new DashboardActionResource(DashboardAction.Rescue, null)).ConfigureAwait(false)
            ? Html.Of($"""<div class="actions"><a class="button danger" href="{request.Url("/stalled/rescue")}" data-action="rescue">Rescue stalled jobs…</a></div>""")
            : Html.Empty;
        Html body;
        if (stalled.Count == 0)
        {
            body = Html.Raw("""<p class="empty-state">No stalled job.</p>""");
        }
        else
        {
            var rows = stalled.Select(job => Html.Of($"""
                <tr data-job-id="{job.Id}">
                  <td><a href="{request.JobUrl(job.Id)}">#{job.Id}</a></td>
                  <td><code>{job.TaskName}</code></td>
                  <td><code>{job.Queue}</code></td>
                  <td class="num">{job.Attempts}</td>
                  <td>{(job.WorkerId is { } w ? Html.Of($"#{w}") : Html.Raw("""<span class="muted">gone</span>"""))}</td>
                  <td class="args"><code>{Format.ArgsPreview(job.ArgsJson)}</code></td>
                </tr>
                """));
            body = Html.Of($"""
                <table class="grid-table">
                  <thead><tr><th>Id</th><th>Task</th><th>Queue</th><th class="num">Attempts</th><th>Worker</th><th>Arguments</th></tr></thead>
                  <tbody>{rows}</tbody>
                </table>
                """);
        }
        var content = Html.Of($"""
            {rescued}
            <p class="lead">Running jobs whose worker has not heartbeaten for {Format.Duration(threshold)}, or is gone. Workers rescue them on their own when configured to; you can also rescue them here.</p>
            {rescue}
            <section class="panel flush" data-live="stalled">{body}</section>
            """);
        await request.WritePageAsync("stalled", "Stalled jobs", content).ConfigureAwait(false);
    }
}
