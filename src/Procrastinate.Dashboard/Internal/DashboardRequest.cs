using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace Procrastinate.Dashboard.Internal;

/// <summary>One request to the dashboard: its links, its clock, and how pages are written.</summary>
internal sealed class DashboardRequest(Dashboard dashboard, HttpContext context)
{
    private DateTimeOffset? _now;

    public Dashboard Dashboard { get; } = dashboard;

    public HttpContext Context { get; } = context;

    public App App => Dashboard.App;

    /// <summary>The dashboard's root URL path (the host's path base, then the mount path).</summary>
    public string Base { get; } = context.Request.PathBase + dashboard.Prefix;

    /// <summary>Now, by the app's clock, fixed for the request.</summary>
    public DateTimeOffset Now => _now ??= Dashboard.Time.GetUtcNow();

    /// <summary>A page's URL under the dashboard, with the query values that are set (null and empty ones are left out).</summary>
    public string Url(string path, params (string Key, string? Value)[] query)
    {
        var builder = new StringBuilder(Base).Append(path.Length == 0 ? "/" : path);
        var separator = '?';
        foreach (var (key, value) in query)
        {
            if (string.IsNullOrEmpty(value))
                continue;
            builder.Append(separator).Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
            separator = '&';
        }
        return builder.ToString();
    }

    public string JobUrl(long id) => Url("/jobs/" + id.ToString(CultureInfo.InvariantCulture));

    public string? Query(string key) =>
        Context.Request.Query.TryGetValue(key, out var values) && values.Count > 0 && !string.IsNullOrWhiteSpace(values[0]) ? values[0]!.Trim() : null;

    public long? RouteId() =>
        long.TryParse(Context.Request.RouteValues["id"] as string, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : null;

    /// <summary>Writes a whole page: the layout around <paramref name="content"/>.</summary>
    public Task WritePageAsync(string page, string heading, Html content, int statusCode = StatusCodes.Status200OK) =>
        WriteHtmlAsync(Layout.Render(this, page, heading, content), statusCode);

    public Task WriteErrorAsync(int statusCode, string heading, string message, string? backUrl = null) =>
        WritePageAsync("", heading, Html.Of($"""
            <section class="panel error-panel" role="alert">
              <p class="error-code">{statusCode} · {ReasonPhrases.GetReasonPhrase(statusCode)}</p>
              <p>{message}</p>
              <p><a class="button" href="{backUrl ?? Url("/")}">Back to the dashboard</a></p>
            </section>
            """), statusCode);

    public async Task WriteHtmlAsync(Html html, int statusCode = StatusCodes.Status200OK)
    {
        var response = Context.Response;
        response.StatusCode = statusCode;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        if (HttpMethods.IsHead(Context.Request.Method))
            return;
        await response.WriteAsync(html.ToString(), Context.RequestAborted).ConfigureAwait(false);
    }

    public void Redirect(string url)
    {
        // 303: after a POST the browser follows with a GET.
        Context.Response.StatusCode = StatusCodes.Status303SeeOther;
        Context.Response.Headers.Location = url;
    }
}
