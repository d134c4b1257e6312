using System.Globalization;

namespace Procrastinate.Dashboard.Internal;

/// <summary>The page around every page's content: head, header with navigation, footer.</summary>
internal static class Layout
{
    private static readonly (string Key, string Path, string Label)[] Navigation =
    [
        ("overview", "/", "Overview"),
        ("jobs", "/jobs", "Jobs"),
        ("queues", "/queues", "Queues"),
        ("tasks", "/tasks", "Tasks"),
        ("locks", "/locks", "Locks"),
        ("periodic", "/periodic", "Periodic"),
        ("stalled", "/stalled", "Stalled"),
        ("workers", "/workers", "Workers"),
    ];

    public static Html Render(DashboardRequest request, string page, string heading, Html content)
    {
        var options = request.Dashboard.Options;
        var refreshMs = ((long)options.RefreshInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        var nav = Navigation.Select(n => n.Key == page
            ? Html.Of($"""<a href="{request.Url(n.Path)}" aria-current="page">{n.Label}</a>""")
            : Html.Of($"""<a href="{request.Url(n.Path)}">{n.Label}</a>"""));
        var mode = request.Dashboard.ActionsEnabled ? "actions allowed by policy" : "read-only";
        return Html.Of($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="robots" content="noindex">
            <title>{heading} · {options.Title}</title>
            <link rel="icon" type="image/svg+xml" href="{request.Url("/assets/favicon.svg", ("v", Assets.Version))}">
            <link rel="stylesheet" href="{request.Url("/assets/dashboard.css", ("v", Assets.Version))}">
            <script src="{request.Url("/assets/dashboard.js", ("v", Assets.Version))}" defer></script>
            </head>
            <body data-refresh-ms="{refreshMs}">
            <header class="top">
              <a class="brand" href="{request.Url("/")}"><img src="{request.Url("/assets/favicon.svg", ("v", Assets.Version))}" alt="" width="22" height="22"><span>{options.Title}</span></a>
              <nav aria-label="Dashboard">{nav}</nav>
              <div class="live" id="live" hidden>
                <span class="live-dot" aria-hidden="true"></span><span id="live-label">Live</span>
                <button type="button" id="live-toggle" class="link-button">Pause</button>
              </div>
            </header>
            <main id="main">
            <h1>{heading}</h1>
            {content}
            </main>
            <footer>Procrastinate for .NET · {mode} · rendered {Format.Clock(request.Now)} UTC</footer>
            </body>
            </html>
            """);
    }
}
