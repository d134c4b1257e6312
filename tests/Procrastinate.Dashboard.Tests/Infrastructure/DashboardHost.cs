using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Procrastinate.Dashboard.Tests.Infrastructure;

/// <summary>
/// An ASP.NET Core app on a real Kestrel port of 127.0.0.1 with the dashboard mounted at /procrastinate.
/// Users: the <c>test-user</c> cookie names one, whose role is its name ("operator", "viewer").
/// Policies: "DashboardViewers" (any signed-in user), "DashboardOperators" (role operator) and
/// "DashboardNoDeletes" (role operator, any action but delete).
/// </summary>
public sealed class DashboardHost : IAsyncDisposable
{
    public const string ViewersPolicy = "DashboardViewers";
    public const string OperatorsPolicy = "DashboardOperators";
    public const string NoDeletesPolicy = "DashboardNoDeletes";
    public const string UserCookie = "test-user";

    private readonly WebApplication _web;

    private DashboardHost(WebApplication web, string baseUrl)
    {
        _web = web;
        BaseUrl = baseUrl;
    }

    /// <summary>The server's root, such as http://127.0.0.1:41234.</summary>
    public string BaseUrl { get; }

    /// <summary>The dashboard's root URL.</summary>
    public string Dashboard => BaseUrl + "/procrastinate";

    public IServiceProvider Services => _web.Services;

    /// <summary>Starts a host whose app connects to <paramref name="connectionString"/>, registered with AddProcrastinate.</summary>
    public static async Task<DashboardHost> StartAsync(string connectionString, Action<DashboardOptions>? configure = null,
        Action<Procrastinate.Hosting.ProcrastinateBuilder>? procrastinate = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("DASHBOARD_TEST_LOGS") == "1")
            builder.Logging.AddConsole();
        builder.Services.AddProcrastinate(connectionString, p => procrastinate?.Invoke(p));
        builder.Services.AddAuthentication(CookieUserHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, CookieUserHandler>(CookieUserHandler.SchemeName, null);
        builder.Services.AddAuthorization(o =>
        {
            o.AddPolicy(ViewersPolicy, p => p.RequireAuthenticatedUser());
            o.AddPolicy(OperatorsPolicy, p => p.RequireRole("operator"));
            // Resource-based: operators may do anything but delete.
            o.AddPolicy(NoDeletesPolicy, p => p.RequireRole("operator")
                .RequireAssertion(c => c.Resource is DashboardActionResource { Action: not DashboardAction.Delete }));
        });
        var web = builder.Build();
        web.MapGet("/", () => "host app");
        web.MapProcrastinateDashboard("/procrastinate", configure);
        await web.StartAsync();
        return new DashboardHost(web, web.Urls.First().TrimEnd('/'));
    }

    public async ValueTask DisposeAsync()
    {
        await _web.StopAsync();
        await _web.DisposeAsync();
    }

    /// <summary>Signs the user in through the <c>test-user</c> cookie (their role is their name).</summary>
    private sealed class CookieUserHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "TestCookieUser";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!Request.Cookies.TryGetValue(UserCookie, out var user) || string.IsNullOrEmpty(user))
                return Task.FromResult(AuthenticateResult.NoResult());
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user), new Claim(ClaimTypes.Role, user)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }

        protected override Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Task.CompletedTask;
        }
    }
}
