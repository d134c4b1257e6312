using Microsoft.Playwright;

namespace Procrastinate.Dashboard.Tests;

/// <summary>Every page, in Chromium, over a database that looks like an application's; screenshots of each.</summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardPagesTests(BrowserFixture browser, DemoDashboardFixture demo) : IClassFixture<DemoDashboardFixture>
{
    public static TheoryData<string, string, string, string[]> Pages => new()
    {
        { "overview", "", "Overview", ["Throughput and failures", "payments", "notifications", "succeeded"] },
        { "jobs", "/jobs", "Jobs", ["emails.send_welcome", "payments.capture", "Older →"] },
        { "queues", "/queues", "Queues", ["emails", "images", "payments", "reports"] },
        { "tasks", "/tasks", "Tasks", ["images.resize", "Registered in this app", "maintenance.remove_expired_sessions"] },
        { "locks", "/locks", "Locks", ["reports", "order-4242"] },
        { "periodic", "/periodic", "Periodic tasks", ["*/5 * * * *", "0 7 * * mon-fri", "Europe/Paris", "weekdays"] },
        { "stalled", "/stalled", "Stalled jobs", ["4242", "Rescue stalled jobs"] },
        { "workers", "/workers", "Workers", ["notifications", "alive", "stale"] },
    };

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task Each_page_loads_with_its_content_no_script_error_and_no_outside_request(string name, string path, string heading, string[] texts)
    {
        await using var session = await browser.NewSessionAsync();
        await SignInAsync(session, "operator");
        var response = await session.Page.GotoAsync(demo.Host.Dashboard + path);

        Assert.Equal(200, response!.Status);
        Assert.Equal(heading, await session.Page.InnerTextAsync("h1"));
        var body = await session.Page.InnerTextAsync("main");
        foreach (var text in texts)
            Assert.Contains(text, body);
        // The script ran under the strict content security policy: the live indicator shows.
        await Assertions.Expect(session.Page.Locator("#live")).ToBeVisibleAsync();
        var file = await Screenshots.SaveAsync(session.Page, name);
        if (name == "overview")
            Screenshots.Publish(file, "dashboard-overview.png");

        Assert.Empty(session.Errors);
        Assert.All(session.Requests, url => Assert.StartsWith(demo.Host.BaseUrl + "/", url));
    }

    [Fact]
    public async Task The_periodic_page_links_the_last_tick_deferred()
    {
        var defers = await demo.Database.QueryAsync("SELECT task_name, periodic_id, defer_timestamp, job_id FROM procrastinate_periodic_defers");
        await using var session = await browser.NewSessionAsync();
        await SignInAsync(session, "viewer");
        await session.Page.GotoAsync(demo.Host.Dashboard + "/periodic");

        var row = session.Page.Locator("tr", new() { HasText = "maintenance.remove_expired_sessions" });
        var links = row.Locator("td:last-child a");
        var link = await links.CountAsync() == 1 ? await links.GetAttributeAsync("href") : null;
        Assert.True(link is not null, string.Join("; ", defers.Select(d => string.Join(",", d.Values))) + " | " + await row.InnerTextAsync());
        Assert.Matches("/procrastinate/jobs/[0-9]+$", link);
    }

    [Fact]
    public async Task The_overview_draws_throughput_bars_and_counts_per_status()
    {
        await using var session = await browser.NewSessionAsync();
        await SignInAsync(session, "viewer");
        await session.Page.GotoAsync(demo.Host.Dashboard);

        var failed = await Database("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'");
        Assert.Equal(failed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
            await session.Page.InnerTextAsync("[data-live=status-cards] [data-count=failed]"));
        Assert.Equal(60, await session.Page.Locator("svg.chart .bar-ok").CountAsync());
        var title = await session.Page.Locator("svg.chart").GetAttributeAsync("aria-label");
        Assert.Matches(@"^[1-9]\d* succeeded, [1-9]\d* failed", title);

        await session.Page.ClickAsync("text=24h");
        Assert.Equal(48, await session.Page.Locator("svg.chart .bar-ok").CountAsync());
    }

    [Fact]
    public async Task A_job_page_shows_its_fields_arguments_attempts_and_timeline()
    {
        await using var session = await browser.NewSessionAsync();
        await SignInAsync(session, "viewer");
        await session.Page.GotoAsync(demo.Host.Dashboard + "/jobs?status=failed&task=payments.capture");
        await session.Page.ClickAsync($"tr[data-job-id='{demo.FailedJobId}'] a");

        Assert.EndsWith($"/procrastinate/jobs/{demo.FailedJobId}", session.Page.Url);
        Assert.Equal($"Job #{demo.FailedJobId}", await session.Page.InnerTextAsync("h1"));
        Assert.Contains("\"order_id\":", await session.Page.InnerTextAsync("#job-args"));
        var timeline = await session.Page.Locator(".timeline .ev-label").AllInnerTextsAsync();
        Assert.Equal(["Deferred", "Started (attempt 1)", "Failed", "Scheduled to run at", "Retried by hand", "Started (attempt 2)", "Failed"], timeline);
        var fields = await session.Page.InnerTextAsync("dl.fields");
        Assert.Contains("(runs started: 2, retries: 1)", fields);
        // A viewer is offered no action.
        Assert.Equal(0, await session.Page.Locator("[data-action]").CountAsync());

        await SignInAsync(session, "operator");
        await session.Page.ReloadAsync();
        Assert.Equal(["retry", "delete"], await session.Page.Locator("[data-action]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.action)"));
        var file = await Screenshots.SaveAsync(session.Page, "job");
        Screenshots.Publish(file, "dashboard-job.png");
        Assert.Empty(session.Errors);
    }

    [Fact]
    public async Task Arguments_holding_markup_are_shown_as_text_and_never_run()
    {
        await using var session = await browser.NewSessionAsync();
        await SignInAsync(session, "viewer");
        await session.Page.GotoAsync(demo.Host.Dashboard + "/jobs?task=emails.send_welcome");
        var preview = await session.Page.InnerTextAsync($"tr[data-job-id='{demo.MarkupJobId}'] td.args");
        Assert.Contains("<script>window.__pwned = 1</script>", preview);

        await session.Page.GotoAsync($"{demo.Host.Dashboard}/jobs/{demo.MarkupJobId}");
        var args = await session.Page.InnerTextAsync("#job-args");
        Assert.Contains("\"to\": \"<script>window.__pwned = 1</script><img src=x onerror=\\\"window.__pwned = 2\\\">\"", args);
        Assert.Contains("\"template\": \"</pre><b>bold</b>\"", args);
        Assert.Equal(0, await session.Page.Locator("#job-args *").CountAsync());
        Assert.Equal(0, await session.Page.Locator("main b, main img, main script").CountAsync());
        Assert.Null(await session.Page.EvaluateAsync<int?>("() => window.__pwned ?? null"));
        Assert.Empty(session.Errors);
    }

    private Task SignInAsync(BrowserSession session, string user) =>
        session.Context.AddCookiesAsync([new Cookie { Name = DashboardHost.UserCookie, Value = user, Url = demo.Host.BaseUrl }]);

    private Task<long> Database(string sql) => demo.Database.ScalarAsync<long>(sql);
}
