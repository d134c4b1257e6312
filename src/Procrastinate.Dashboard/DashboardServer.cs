using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Procrastinate.Dashboard.Internal;

namespace Procrastinate.Dashboard;

/// <summary>
/// The dashboard on a web server of its own, for <c>procrastinate dashboard</c> or any program without
/// ASP.NET Core: it listens on 127.0.0.1 by default and asks for a token.
/// </summary>
/// <example>
/// <code>
/// await DashboardServer.RunAsync(app, new DashboardServerOptions { Port = 5380 }, cancellationToken);
/// // Procrastinate dashboard (read-only): http://127.0.0.1:5380/?token=...
/// </code>
/// </example>
public sealed class DashboardServer : IAsyncDisposable
{
    private readonly WebApplication _web;

    private DashboardServer(WebApplication web, Uri url, string token, bool tokenGenerated)
    {
        _web = web;
        Url = url;
        Token = token;
        TokenGenerated = tokenGenerated;
    }

    /// <summary>The dashboard's address, such as <c>http://127.0.0.1:5380/</c>.</summary>
    public Uri Url { get; }

    /// <summary>The token requests must present.</summary>
    public string Token { get; }

    /// <summary>The address with the token in its query: opening it once signs the browser in.</summary>
    public Uri SignInUrl => new(Url, "?token=" + Uri.EscapeDataString(Token));

    /// <summary>True when the token was generated rather than given.</summary>
    public bool TokenGenerated { get; }

    /// <summary>
    /// Starts the dashboard of <paramref name="app"/> and returns once it listens. It does not handle
    /// Ctrl+C or SIGTERM: stop it with <see cref="StopAsync"/> or by disposing it. The app is not disposed.
    /// </summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="IOException">The address is in use.</exception>
    public static Task<DashboardServer> StartAsync(App app, DashboardServerOptions? options = null, CancellationToken cancellationToken = default) =>
        StartCoreAsync(app, options ?? new DashboardServerOptions(), handleSignals: false, cancellationToken);

    /// <summary>
    /// Runs the dashboard of <paramref name="app"/> until Ctrl+C, SIGTERM or <paramref name="cancellationToken"/>:
    /// prints its address to <see cref="DashboardServerOptions.Output"/> (with the token when it was generated,
    /// so that the line opens a signed-in page), then serves. The app is not disposed.
    /// </summary>
    /// <inheritdoc cref="StartAsync" path="/exception"/>
    public static async Task RunAsync(App app, DashboardServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new DashboardServerOptions();
        var server = await StartCoreAsync(app, options, handleSignals: true, cancellationToken).ConfigureAwait(false);
        await using (server.ConfigureAwait(false))
        {
            var output = options.Output ?? Console.Out;
            var mode = options.AllowActions ? "actions allowed to token holders" : "read-only";
            await output.WriteLineAsync($"Procrastinate dashboard ({mode}) on {server.Url}").ConfigureAwait(false);
            await output.WriteLineAsync(server.TokenGenerated
                ? $"Open {server.SignInUrl} (the token changes at each start; set one with --token or PROCRASTINATE_DASHBOARD_TOKEN)."
                : $"Open {server.Url}?token=<your token>, or send 'Authorization: Bearer <your token>'.").ConfigureAwait(false);
            if (!IsLoopback(options.Host))
                await output.WriteLineAsync($"Warning: listening on {options.Host} over plain HTTP: anyone on the path can read the token. Put a TLS proxy in front.").ConfigureAwait(false);
            await output.WriteLineAsync("Press Ctrl+C to stop.").ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await server._web.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }
    }

    private static async Task<DashboardServer> StartCoreAsync(App app, DashboardServerOptions options, bool handleSignals, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(app);
        options.Validate();
        var generated = options.Token is null;
        var token = options.Token?.Trim() ?? GenerateToken();

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(DashboardServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        // The server is configured here only: not by an appsettings.json or ASPNETCORE_URLS around it.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(options.LoggerFactory ?? app.Options.LoggerFactory);
        if (!handleSignals)
            builder.Services.AddSingleton<IHostLifetime, NoSignalsLifetime>();
        else
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (string.Equals(options.Host, "localhost", StringComparison.OrdinalIgnoreCase))
                kestrel.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var address))
                kestrel.Listen(address, options.Port);
            else
                throw new ArgumentException($"Host must be an IP address or localhost, not '{options.Host}'.", nameof(options));
        });

        builder.Services.AddSingleton(new TokenAuthentication.Secret(token));
        builder.Services.AddAuthentication(TokenAuthentication.Scheme)
            .AddScheme<AuthenticationSchemeOptions, TokenAuthentication.Handler>(TokenAuthentication.Scheme, null);
        builder.Services.AddAuthorization(o => o.AddPolicy(TokenAuthentication.Policy, p => p
            .AddAuthenticationSchemes(TokenAuthentication.Scheme)
            .RequireAuthenticatedUser()));

        var web = builder.Build();
        web.UseMiddleware<TokenAuthentication.QueryTokenMiddleware>();
        web.UseAuthentication();
        web.UseAuthorization();
        web.MapProcrastinateDashboard("/", o =>
        {
            o.App = app;
            o.Title = options.Title;
            o.RefreshInterval = options.RefreshInterval;
            o.AuthorizationPolicy = TokenAuthentication.Policy;
            o.ActionsPolicy = options.AllowActions ? TokenAuthentication.Policy : null;
        });
        try
        {
            await web.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await web.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var bound = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var url = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        return new DashboardServer(web, url, token, generated);
    }

    /// <summary>Stops the server: open requests get a moment to end.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _web.StopAsync(cancellationToken);

    /// <summary>Stops the server and releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        await _web.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _web.DisposeAsync().ConfigureAwait(false);
    }

    private static string GenerateToken() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));

    /// <summary>A host lifetime that leaves Ctrl+C and SIGTERM to the program that started the server.</summary>
    private sealed class NoSignalsLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
