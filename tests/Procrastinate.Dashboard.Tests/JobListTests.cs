using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Procrastinate.Dashboard.Tests;

/// <summary>The job list in Chromium: filters, paging, and live refresh without reloading.</summary>
[Collection(BrowserCollection.Name)]
public sealed partial class JobListTests(BrowserFixture browser, DatabaseFixture db) : BrowserTest(browser, db), IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task The_filter_form_narrows_the_list_by_status_and_queue()
    {
        var host = await StartHostAsync();
        var app = host.Services.GetRequiredService<App>();
        await app.DeferAsync("images.resize", """{"path": "a.jpg", "width": 9000}""");
        await app.DeferAsync("images.resize", """{"path": "b.jpg", "width": 100}""");
        await app.DeferAsync("emails.send_welcome", """{"to": "ada@example.com"}""", new DeferOptions { Queue = "images" });
        await DemoTasks.RunWorkerOnceAsync(app);
        await app.DeferAsync("images.resize", """{"path": "c.jpg", "width": 100}""");
        await app.DeferAsync("emails.send_welcome", """{"to": "grace@example.com"}""");
        var session = await SessionAsync(host);
        var page = session.Page;

        await page.GotoAsync(host.Dashboard + "/jobs");
        Assert.Equal(5, await page.Locator("tr[data-job-id]").CountAsync());
        await page.SelectOptionAsync("select[name=status]", "succeeded");
        await page.FillAsync("input[name=queue]", "images");
        await page.ClickAsync("form.filters button[type=submit]");

        Assert.Matches("status=succeeded", page.Url);
        Assert.Matches("queue=images", page.Url);
        var rows = page.Locator("tr[data-job-id]");
        Assert.Equal(2, await rows.CountAsync());
        Assert.All(await page.Locator("tr[data-job-id] .badge").AllInnerTextsAsync(), s => Assert.Equal("succeeded", s));
        Assert.All(await page.Locator("tr[data-job-id] td:nth-child(3)").AllInnerTextsAsync(), q => Assert.Equal("images", q));
        // The status tabs count the jobs of the queue, and keep the other filters.
        Assert.Equal("1", await page.InnerTextAsync("nav.tabs a.t-failed .count"));
        await page.ClickAsync("nav.tabs a.t-failed");
        Assert.Equal(["images.resize"], await page.Locator("tr[data-job-id] .task-name").AllInnerTextsAsync());
        Assert.Matches("queue=images", page.Url);
        // A task filter from the URL, and a wrong value reported rather than failing.
        await page.GotoAsync(host.Dashboard + "/jobs?task=emails.send_welcome&status=nonsense");
        Assert.Equal(2, await rows.CountAsync());
        Assert.Contains("status 'nonsense' is not one of", await page.InnerTextAsync(".notice.warn"));
        Assert.Empty(session.Errors);
    }

    [Fact]
    public async Task Paging_goes_through_every_job_newest_first_and_back()
    {
        var host = await StartHostAsync();
        var app = host.Services.GetRequiredService<App>();
        var ids = new List<long>();
        for (var i = 0; i < 23; i++)
            ids.Add(await app.DeferAsync("emails.send_welcome", $$"""{"to": "user{{i}}@example.com"}"""));
        ids.Reverse();
        var session = await SessionAsync(host);
        var page = session.Page;

        await page.GotoAsync(host.Dashboard + "/jobs?limit=10");
        Assert.Equal(ids[..10], await ShownIdsAsync(page));
        await page.ClickAsync("a[rel=next]");
        Assert.Equal(ids[10..20], await ShownIdsAsync(page));
        await page.ClickAsync("a[rel=next]");
        Assert.Equal(ids[20..], await ShownIdsAsync(page));
        Assert.Equal(0, await page.Locator("a[rel=next]").CountAsync());
        await page.ClickAsync("a[rel=prev]");
        Assert.Equal(ids[10..20], await ShownIdsAsync(page));
        await page.ClickAsync("a[rel=prev]");
        Assert.Equal(ids[..10], await ShownIdsAsync(page));
        Assert.Equal(0, await page.Locator("a[rel=prev]").CountAsync());
        Assert.Empty(session.Errors);
    }

    [Fact]
    public async Task Counts_and_the_job_list_refresh_without_reloading_the_page()
    {
        var host = await StartHostAsync(o => o.RefreshInterval = TimeSpan.FromSeconds(1));
        var app = host.Services.GetRequiredService<App>();
        await app.DeferAsync("emails.send_welcome", """{"to": "ada@example.com"}""");
        var session = await SessionAsync(host);
        var page = session.Page;

        await page.GotoAsync(host.Dashboard + "/jobs");
        await page.EvaluateAsync("() => { window.__sameDocument = true; }");
        Assert.Equal("1", await page.InnerTextAsync("nav.tabs a.t-todo .count"));
        var id = await app.DeferAsync("emails.send_welcome", """{"to": "grace@example.com"}""");

        await Assertions.Expect(page.Locator($"tr[data-job-id='{id}']")).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Assertions.Expect(page.Locator("nav.tabs a.t-todo .count")).ToHaveTextAsync("2");
        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"));

        await page.GotoAsync(host.Dashboard);
        await page.EvaluateAsync("() => { window.__sameDocument = true; }");
        Assert.Equal("2", await page.InnerTextAsync("[data-count=todo]"));
        await app.DeferAsync("emails.send_welcome", """{"to": "alan@example.com"}""");
        await Assertions.Expect(page.Locator("[data-count=todo]")).ToHaveTextAsync("3", new() { Timeout = 15_000 });
        await Assertions.Expect(page.Locator("#live-label")).ToHaveTextAsync(LiveLabel());
        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"));
        Assert.Empty(session.Errors);
    }

    private static async Task<List<long>> ShownIdsAsync(IPage page) =>
        [.. (await page.Locator("tr[data-job-id]").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.jobId)")).Select(long.Parse)];

    [GeneratedRegex("^Live · ")]
    private static partial Regex LiveLabel();
}
