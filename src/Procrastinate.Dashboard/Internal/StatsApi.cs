using System.Text.Json;
using Procrastinate.Dashboard.Internal.Pages;

namespace Procrastinate.Dashboard.Internal;

/// <summary><c>GET api/stats</c>: the overview's numbers as JSON, for scripts and monitors behind the same policy.</summary>
internal static class StatsApi
{
    public static async Task WriteAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        var jobs = request.App.Jobs;
        var queues = await jobs.ListQueuesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var workers = await jobs.ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        var stalled = await jobs.ListStalledJobsAsync(request.Dashboard.Options.StalledThreshold, cancellationToken: cancellationToken).ConfigureAwait(false);
        var totals = OverviewPage.Totals(queues);

        var response = request.Context.Response;
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(response.Body);
        json.WriteStartObject();
        json.WriteString("at", request.Now);
        json.WriteStartObject("statuses");
        foreach (var status in Format.Statuses)
            json.WriteNumber(status.ToDbString(), OverviewPage.Count(totals, status));
        json.WriteEndObject();
        json.WriteNumber("total", totals.JobsCount);
        json.WriteNumber("stalled", stalled.Count);
        json.WriteNumber("workers", workers.Count);
        json.WriteStartArray("queues");
        foreach (var queue in queues.OrderBy(q => q.Name, StringComparer.Ordinal))
        {
            json.WriteStartObject();
            json.WriteString("name", queue.Name);
            json.WriteNumber("total", queue.JobsCount);
            foreach (var (status, count) in Charts.Counts(queue))
                json.WriteNumber(status.ToDbString(), count);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
