using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace Procrastinate.Dashboard.Tests;

/// <summary>The dashboard on a server of its own: 127.0.0.1, a token, read-only unless told otherwise.</summary>
[Collection(BrowserCollection.Name)]
public sealed partial class StandaloneTests(BrowserFixture browser, DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Without_its_token_the_standalone_dashboard_answers_401()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("emails.send_welcome", """{"to": "ada@example.com"}""");
        await using var server = await DashboardServer.StartAsync(app, new DashboardServerOptions { Port = 0 });
        Assert.Equal("127.0.0.1", server.Url.Host);
        Assert.True(server.TokenGenerated);
        Assert.True(server.Token.Length >= 40);
        await using var session = await browser.NewSessionAsync();
        var page = session.Page;

        var response = await page.GotoAsync(server.Url.ToString());
        Assert.Equal(401, response!.Status);
        Assert.Contains("needs its token", await page.InnerTextAsync("body"));
        Assert.Equal(401, (await page.GotoAsync(server.Url + "jobs?token=not-the-token-at-all"))!.Status);
        Assert.Equal(401, (await page.GotoAsync(server.Url + "assets/dashboard.css"))!.Status);

        // The token once in the address: a cookie, and the token leaves the address bar.
        response = await page.GotoAsync(server.Url + $"jobs?token={Uri.EscapeDataString(server.Token)}&status=todo");
        Assert.Equal(200, response!.Status);
        Assert.Equal(server.Url + "jobs?status=todo", page.Url);
        Assert.Equal(1, await page.Locator($"tr[data-job-id='{id}']").CountAsync());
        Assert.Equal(200, (await page.GotoAsync(server.Url.ToString()))!.Status);
        Assert.Equal("Overview", await page.InnerTextAsync("h1"));
        var cookie = (await session.Context.CookiesAsync()).Single(c => c.Name == ".Procrastinate.Dashboard.Token");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(Microsoft.Playwright.SameSiteAttribute.Strict, cookie.SameSite);
        await Screenshots.SaveAsync(page, "standalone-overview");

        // Read-only by default.
        Assert.Equal(403, (await page.GotoAsync(server.Url + $"jobs/{id}/cancel"))!.Status);
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
        // The refusals above show as failed loads; no script failed.
        Assert.All(session.Errors, e => Assert.StartsWith("Failed to load resource", e));
    }

    [Fact]
    public async Task Scripts_present_the_token_as_a_bearer_token()
    {
        await using var app = db.CreateApp();
        const string token = "a-token-chosen-by-the-operator-42";
        await using var server = await DashboardServer.StartAsync(app, new DashboardServerOptions { Port = 0, Token = token });
        Assert.False(server.TokenGenerated);
        using var http = new HttpClient { BaseAddress = server.Url };

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/stats")).StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "api/stats") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "wrong-token-wrong-token") } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        using var right = new HttpRequestMessage(HttpMethod.Get, "api/stats") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token) } };
        var response = await http.SendAsync(right);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"statuses\":{\"todo\":0", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task With_actions_allowed_the_token_holder_retries_a_job()
    {
        await using var app = db.CreateApp();
        DemoTasks.Register(app);
        var id = await app.DeferAsync("images.resize", """{"path": "huge.jpg", "width": 9000}""");
        await DemoTasks.RunWorkerOnceAsync(app, "images");
        await using var server = await DashboardServer.StartAsync(app, new DashboardServerOptions { Port = 0, AllowActions = true });
        await using var session = await browser.NewSessionAsync();
        var page = session.Page;

        await page.GotoAsync(server.SignInUrl + "");
        await page.GotoAsync(server.Url + $"jobs/{id}");
        await page.ClickAsync("[data-action=retry]");
        await page.ClickAsync("#confirm-action");

        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
    }

    [Fact]
    public async Task RunAsync_prints_the_sign_in_address_and_stops_when_cancelled()
    {
        await using var app = db.CreateApp();
        var output = new StringWriter();
        using var stop = new CancellationTokenSource();
        var run = DashboardServer.RunAsync(app, new DashboardServerOptions { Port = 0, Output = TextWriter.Synchronized(output) }, stop.Token);

        Match? line = null;
        await DemoDashboardFixture.WaitUntilAsync(() => Task.FromResult((line = SignInLine().Match(output.ToString())).Success));
        Assert.Contains("Procrastinate dashboard (read-only) on http://127.0.0.1:", output.ToString());
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var response = await http.GetAsync(line!.Groups[1].Value);
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Contains(".Procrastinate.Dashboard.Token=", response.Headers.GetValues("Set-Cookie").Single());

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Bad_options_are_refused_before_anything_listens()
    {
        await using var app = db.CreateApp();
        await Assert.ThrowsAsync<ArgumentException>(() => DashboardServer.StartAsync(app, new DashboardServerOptions { Token = "short" }));
        await Assert.ThrowsAsync<ArgumentException>(() => DashboardServer.StartAsync(app, new DashboardServerOptions { Port = 70000 }));
        await Assert.ThrowsAsync<ArgumentException>(() => DashboardServer.StartAsync(app, new DashboardServerOptions { Port = 0, Host = "example.com" }));
    }

    [GeneratedRegex(@"Open (http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+) ")]
    private static partial Regex SignInLine();
}
