using Microsoft.Extensions.Diagnostics.HealthChecks;
using Procrastinate;
using Procrastinate.Hosting.Health;
using Procrastinate.Hosting.Internal;
using HealthStatus = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds Procrastinate's health checks to <c>services.AddHealthChecks()</c>.</summary>
public static class ProcrastinateHealthChecksBuilderExtensions
{
    /// <summary>The default name of the database check.</summary>
    public const string DatabaseCheckName = "procrastinate_database";

    /// <summary>The default name of the worker check.</summary>
    public const string WorkerCheckName = "procrastinate_workers";

    /// <summary>
    /// Adds both checks: <see cref="AddProcrastinateDatabaseCheck"/> and <see cref="AddProcrastinateWorkerCheck"/>.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="failureStatus">The status reported on failure; <see cref="HealthStatus.Unhealthy"/> when null.</param>
    /// <param name="tags">Tags of both checks (to split liveness and readiness, say).</param>
    /// <param name="timeout">How long each check may take; no limit when null.</param>
    public static IHealthChecksBuilder AddProcrastinateHealthChecks(this IHealthChecksBuilder builder,
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null) =>
        builder
            .AddProcrastinateDatabaseCheck(DatabaseCheckName, failureStatus, tags, timeout)
            .AddProcrastinateWorkerCheck(WorkerCheckName, failureStatus, tags, timeout);

    /// <summary>
    /// Adds a check that the database is reachable and holds a Procrastinate schema this version can
    /// use (<c>app.Health.CheckDatabaseAsync()</c>, over <c>app.Schema.CheckAsync()</c>); on failure its
    /// description says what is missing. Needs <c>AddProcrastinate</c>.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">The status reported on failure; <see cref="HealthStatus.Unhealthy"/> when null.</param>
    /// <param name="tags">The check's tags.</param>
    /// <param name="timeout">How long the check may take; no limit when null.</param>
    public static IHealthChecksBuilder AddProcrastinateDatabaseCheck(this IHealthChecksBuilder builder, string name = DatabaseCheckName,
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(name,
            sp => new DatabaseHealthCheck(sp.GetRequiredService<App>()), failureStatus, tags, timeout));
    }

    /// <summary>
    /// Adds a check that each worker hosted by <c>AddProcrastinateWorker</c> is running and that its row
    /// in <c>procrastinate_workers</c> has a heartbeat newer than its <c>StalledWorkerTimeout</c>.
    /// Healthy when the process hosts no worker.
    /// </summary>
    /// <inheritdoc cref="AddProcrastinateDatabaseCheck"/>
    public static IHealthChecksBuilder AddProcrastinateWorkerCheck(this IHealthChecksBuilder builder, string name = WorkerCheckName,
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(name,
            sp => new WorkerHealthCheck(sp.GetService<ProcrastinateWorkerService>()), failureStatus, tags, timeout));
    }
}
