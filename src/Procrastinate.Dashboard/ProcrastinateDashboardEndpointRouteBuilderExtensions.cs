using Microsoft.AspNetCore.Routing;
using Procrastinate.Dashboard;
using Procrastinate.Dashboard.Internal;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Mounts the Procrastinate dashboard in an ASP.NET Core app.</summary>
public static class ProcrastinateDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves the dashboard under <paramref name="pattern"/>: overview, jobs, a page per job, queues,
    /// tasks, locks, periodic tasks, stalled jobs and workers, refreshed live, with its stylesheet and
    /// script embedded. It shows the <see cref="Procrastinate.App"/> of <see cref="DashboardOptions.App"/>,
    /// else the one registered by <c>services.AddProcrastinate()</c>.
    /// </summary>
    /// <remarks>
    /// Read-only unless <see cref="DashboardOptions.ActionsPolicy"/> is set. Only local requests are
    /// answered unless <see cref="DashboardOptions.AuthorizationPolicy"/> is set or the host adds
    /// authorization to the returned builder (<c>.RequireAuthorization("Ops")</c>).
    /// </remarks>
    /// <example>
    /// <code>
    /// builder.Services.AddAuthorization(o =&gt;
    /// {
    ///     o.AddPolicy("JobsViewer", p =&gt; p.RequireRole("ops", "support"));
    ///     o.AddPolicy("JobsOperator", p =&gt; p.RequireRole("ops"));
    /// });
    /// app.MapProcrastinateDashboard("/procrastinate", o =&gt;
    /// {
    ///     o.AuthorizationPolicy = "JobsViewer";
    ///     o.ActionsPolicy = "JobsOperator";
    /// });
    /// </code>
    /// </example>
    /// <returns>The endpoints' group, for more conventions (authorization, host filtering, rate limiting).</returns>
    /// <exception cref="InvalidOperationException">No app is given or registered, or a policy is named but authorization is not set up.</exception>
    /// <exception cref="ArgumentException">The pattern has route parameters, or an option is out of range.</exception>
    public static IEndpointConventionBuilder MapProcrastinateDashboard(this IEndpointRouteBuilder endpoints,
        string pattern = "/procrastinate", Action<DashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = new DashboardOptions();
        configure?.Invoke(options);
        return Dashboard.Map(endpoints, pattern, options);
    }
}
