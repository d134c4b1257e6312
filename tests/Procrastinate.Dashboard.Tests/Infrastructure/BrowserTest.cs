using Microsoft.Playwright;

namespace Procrastinate.Dashboard.Tests.Infrastructure;

/// <summary>Helpers of the browser tests that run on a database of their own.</summary>
public abstract class BrowserTest(BrowserFixture browser, DatabaseFixture db) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _disposables = [];

    protected BrowserFixture Browser => browser;

    protected DatabaseFixture Db => db;

    public Task InitializeAsync() => db.ResetAsync();

    public async Task DisposeAsync()
    {
        foreach (var disposable in Enumerable.Reverse(_disposables))
            await disposable.DisposeAsync();
    }

    protected async Task<DashboardHost> StartHostAsync(Action<DashboardOptions>? configure = null)
    {
        var host = await DashboardHost.StartAsync(db.ConnectionString, configure, p => p.ConfigureApp((app, _) => DemoTasks.Register(app)));
        _disposables.Add(host);
        return host;
    }

    protected async Task<BrowserSession> SessionAsync(DashboardHost host, string? user = null)
    {
        var session = await browser.NewSessionAsync();
        _disposables.Add(session);
        if (user is not null)
            await SignInAsync(session, host, user);
        return session;
    }

    protected static Task SignInAsync(BrowserSession session, DashboardHost host, string user) =>
        session.Context.AddCookiesAsync([new Cookie { Name = DashboardHost.UserCookie, Value = user, Url = host.BaseUrl }]);

    /// <summary>A failed job of images.resize: deferred, run, and failed by a worker.</summary>
    protected static async Task<long> FailedJobAsync(App app)
    {
        var id = await app.DeferAsync("images.resize", """{"path": "huge.jpg", "width": 9000}""");
        await DemoTasks.RunWorkerOnceAsync(app, "images");
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(id));
        return id;
    }
}
