using System.Net;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Procrastinate.Dashboard.Internal.Pages;

namespace Procrastinate.Dashboard.Internal;

/// <summary>One mounted dashboard: its app, settings and services, and its endpoints.</summary>
internal sealed class Dashboard
{
    /// <summary>The header live refresh sends: the page is rendered as usual, and the script swaps its live regions in.</summary>
    public const string LiveHeader = "X-Procrastinate-Live";

    private readonly IAuthorizationPolicyProvider? _policyProvider;
    private readonly IPolicyEvaluator? _policyEvaluator;

    private Dashboard(App app, DashboardOptions options, string prefix, IAntiforgery antiforgery,
        IAuthorizationPolicyProvider? policyProvider, IPolicyEvaluator? policyEvaluator, ILogger logger)
    {
        App = app;
        Options = options;
        Prefix = prefix;
        Antiforgery = antiforgery;
        _policyProvider = policyProvider;
        _policyEvaluator = policyEvaluator;
        Logger = logger;
        Queries = new DashboardQueries(app);
    }

    public App App { get; }

    public DashboardOptions Options { get; }

    /// <summary>The mount path, without a trailing slash ("" at the root).</summary>
    public string Prefix { get; }

    public IAntiforgery Antiforgery { get; }

    public ILogger Logger { get; }

    public DashboardQueries Queries { get; }

    public bool ActionsEnabled => Options.ActionsPolicy is not null;

    public TimeProvider Time => App.Options.TimeProvider;

    public static RouteGroupBuilder Map(IEndpointRouteBuilder endpoints, string pattern, DashboardOptions options)
    {
        options.Validate();
        var services = endpoints.ServiceProvider;
        var app = options.App ?? services.GetService<App>() ?? throw new InvalidOperationException(
            "The Procrastinate dashboard needs an App: register one with services.AddProcrastinate(...) (Procrastinate.Hosting), or set DashboardOptions.App.");
        IAuthorizationPolicyProvider? policyProvider = null;
        IPolicyEvaluator? policyEvaluator = null;
        if (options.AuthorizationPolicy is not null || options.ActionsPolicy is not null)
        {
            policyProvider = services.GetService<IAuthorizationPolicyProvider>();
            policyEvaluator = services.GetService<IPolicyEvaluator>();
            if (policyProvider is null || policyEvaluator is null)
                throw new InvalidOperationException(
                    "DashboardOptions names an authorization policy, but authorization is not set up: call " +
                    "builder.Services.AddAuthorization(o => o.AddPolicy(...)) and define the policy.");
        }

        var prefix = NormalizePrefix(pattern);
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger("Procrastinate.Dashboard") ?? NullLogger.Instance;
        var dashboard = new Dashboard(app, options, prefix, DashboardAntiforgery.Create(services), policyProvider, policyEvaluator, logger);
        var group = endpoints.MapGroup(pattern);
        dashboard.MapEndpoints(group);
        group.WithDisplayName(e => $"Procrastinate dashboard {e.DisplayName}").ExcludeFromDescription();
        if (options.AuthorizationPolicy is { } policy)
            group.RequireAuthorization(policy);
        return group;
    }

    private static string NormalizePrefix(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Contains('{', StringComparison.Ordinal))
            throw new ArgumentException("The dashboard's pattern must be a plain path such as \"/procrastinate\", without route parameters.", nameof(pattern));
        var trimmed = pattern.Trim().TrimEnd('/');
        return trimmed.Length == 0 ? "" : trimmed.StartsWith('/') ? trimmed : "/" + trimmed;
    }

    private void MapEndpoints(RouteGroupBuilder group)
    {
        // "/" also matches the mount path without its trailing slash.
        Get(group, "/", OverviewPage.RenderAsync);
        Get(group, "/jobs", JobsPage.RenderAsync);
        Get(group, "/jobs/{id:long}", JobDetailsPage.RenderAsync);
        // One route per action rather than a regex constraint, which slim hosts do not register.
        foreach (var action in (DashboardAction[])[DashboardAction.Retry, DashboardAction.Cancel, DashboardAction.Abort, DashboardAction.Delete])
        {
            var name = ActionPages.Name(action);
            Get(group, $"/jobs/{{id:long}}/{name}", (request, ct) => ActionPages.ConfirmJobActionAsync(request, action, ct));
            Post(group, $"/jobs/{{id:long}}/{name}", (request, ct) => ActionPages.PerformJobActionAsync(request, action, ct));
        }
        Get(group, "/queues", CountsPage.RenderQueuesAsync);
        Get(group, "/tasks", CountsPage.RenderTasksAsync);
        Get(group, "/locks", CountsPage.RenderLocksAsync);
        Get(group, "/periodic", PeriodicPage.RenderAsync);
        Get(group, "/stalled", StalledPage.RenderAsync);
        Get(group, "/stalled/rescue", ActionPages.ConfirmRescueAsync);
        Post(group, "/stalled/rescue", ActionPages.PerformRescueAsync);
        Get(group, "/workers", WorkersPage.RenderAsync);
        Get(group, "/api/stats", StatsApi.WriteAsync);
        Get(group, "/assets/{name}", (request, _) => Assets.WriteAsync(request));
    }

    private void Get(RouteGroupBuilder group, string pattern, Func<DashboardRequest, CancellationToken, Task> handler) =>
        group.MapMethods(pattern, [HttpMethods.Get, HttpMethods.Head], context => HandleAsync(context, handler));

    private void Post(RouteGroupBuilder group, string pattern, Func<DashboardRequest, CancellationToken, Task> handler) =>
        group.MapMethods(pattern, [HttpMethods.Post], context => HandleAsync(context, handler));

    /// <summary>Every request: security headers, the local-only rule, then the page; database failures become an error page.</summary>
    private async Task HandleAsync(HttpContext context, Func<DashboardRequest, CancellationToken, Task> handler)
    {
        var request = new DashboardRequest(this, context);
        SetSecurityHeaders(context.Response);
        if (!IsAllowedWithoutPolicy(context))
        {
            Log.RemoteRefused(Logger, context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
            await request.WriteErrorAsync(StatusCodes.Status403Forbidden, "Local requests only",
                "This dashboard has no authorization policy, so it answers only requests from this machine. " +
                "Set DashboardOptions.AuthorizationPolicy (or add .RequireAuthorization(...) to MapProcrastinateDashboard) to open it to others.").ConfigureAwait(false);
            return;
        }
        var cancellationToken = context.RequestAborted;
        try
        {
            await handler(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && !cancellationToken.IsCancellationRequested
            && e is NpgsqlException or TimeoutException or IOException or PostgresException)
        {
            Log.PageFailed(Logger, context.Request.Path, e);
            await request.WriteErrorAsync(StatusCodes.Status503ServiceUnavailable, "The database cannot be read",
                $"{e.GetType().Name}: {e.Message}").ConfigureAwait(false);
        }
    }

    private static void SetSecurityHeaders(HttpResponse response)
    {
        var headers = response.Headers;
        // Everything comes from the dashboard's own origin: no inline script, no CDN, no framing.
        headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        headers.XFrameOptions = "DENY";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "same-origin";
    }

    /// <summary>
    /// Without a policy of the options or authorization metadata added by the host, only requests from
    /// this machine pass: a loopback peer that is not a proxy forwarding someone else's request.
    /// </summary>
    internal static bool IsAllowedWithoutPolicy(HttpContext context)
    {
        var metadata = context.GetEndpoint()?.Metadata;
        if (metadata?.GetMetadata<IAuthorizeData>() is not null || metadata?.GetMetadata<IAllowAnonymous>() is not null)
            return true;
        return IsLocal(context);
    }

    internal static bool IsLocal(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is null)
            return false;
        if (remote.IsIPv4MappedToIPv6)
            remote = remote.MapToIPv4();
        if (!IPAddress.IsLoopback(remote))
            return false;
        var headers = context.Request.Headers;
        return !headers.ContainsKey("X-Forwarded-For") && !headers.ContainsKey("Forwarded");
    }

    /// <summary>Whether the user may perform <paramref name="resource"/>: actions are on and the actions policy allows it.</summary>
    public async Task<bool> CanAsync(HttpContext context, DashboardActionResource resource)
    {
        if (Options.ActionsPolicy is not { } name)
            return false;
        var policy = await _policyProvider!.GetPolicyAsync(name).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"The authorization policy '{name}' (DashboardOptions.ActionsPolicy) is not defined.");
        var authentication = await _policyEvaluator!.AuthenticateAsync(policy, context).ConfigureAwait(false);
        var result = await _policyEvaluator.AuthorizeAsync(policy, authentication, context, resource).ConfigureAwait(false);
        return result.Succeeded;
    }
}
