using System.Diagnostics;
using Microsoft.Playwright;

namespace Procrastinate.Dashboard.Tests.Infrastructure;

/// <summary>
/// Headless Chromium from Debian (installed once by install-chromium.sh), driven by Microsoft.Playwright
/// with its executable path set: Playwright's own browser download is never used.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var executable = await InstallChromiumAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>A fresh browser context (its own cookies), 1360 px wide, that records script errors and every request it makes.</summary>
    public async Task<BrowserSession> NewSessionAsync()
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1360, Height = 900 }, ColorScheme = ColorScheme.Light });
        var session = new BrowserSession(context);
        context.Request += (_, request) => session.Requests.Add(request.Url);
        var page = await context.NewPageAsync();
        page.Console += (_, message) => { if (message.Type == "error") session.Errors.Add(message.Text); };
        page.PageError += (_, error) => session.Errors.Add(error);
        session.Page = page;
        return session;
    }

    private static async Task<string> InstallChromiumAsync()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "install-chromium.sh");
        var psi = new ProcessStartInfo("bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"install-chromium.sh failed: {await stderr}");
        return (await stdout).Trim().Split('\n')[^1];
    }
}

/// <summary>One browser context and its page, with what went wrong in it.</summary>
public sealed class BrowserSession(IBrowserContext context) : IAsyncDisposable
{
    public IBrowserContext Context { get; } = context;

    public IPage Page { get; set; } = null!;

    public List<string> Errors { get; } = [];

    public List<string> Requests { get; } = [];

    public ValueTask DisposeAsync() => Context.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    /// <summary>The browser tests share one Chromium and run one at a time.</summary>
    public const string Name = "Browser";
}
