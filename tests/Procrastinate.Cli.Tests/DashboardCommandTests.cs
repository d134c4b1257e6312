using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>procrastinate dashboard</c>: the standalone dashboard, behind a token, on 127.0.0.1.</summary>
public sealed partial class DashboardCommandTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    [GeneratedRegex(@"on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex Address();

    [Fact]
    public async Task Serves_the_dashboard_behind_its_token_and_stops_on_SIGTERM()
    {
        const string token = "a-long-enough-test-token-0123456789";
        await using var server = CliProcess.Start(ConnectionString, new CliRun("dashboard", "--port", "0", "--token", token));
        string? url = null;
        await Eventually.TrueAsync(() => Task.FromResult((url = Address().Match(server.Stdout) is { Success: true } m ? m.Groups[1].Value : null) is not null),
            TimeSpan.FromSeconds(60), () => $"no address printed\n{server.Stdout}\n{server.Stderr}");

        using var http = new HttpClient { BaseAddress = new Uri(url! + "/") };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("")).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var page = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Overview", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(token, server.Stdout, StringComparison.Ordinal); // a given token is not echoed

        server.Signal(CliProcess.SIGTERM);
        var exit = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, $"exit {exit}\n{server.Stderr}");
    }

    [Fact]
    public async Task A_short_token_is_a_usage_error()
    {
        AssertError(await RunAsync("dashboard", "--token", "short"), 2, "Token must have at least 16 characters");
    }
}
