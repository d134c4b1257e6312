using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Procrastinate.Hosting.Health;

/// <summary>
/// Healthy when the database is reachable and holds a Procrastinate schema this version can use
/// (<see cref="HealthChecks.CheckDatabaseAsync"/>, which reads <c>app.Schema.CheckAsync()</c>);
/// otherwise its description says what is wrong and how to fix it.
/// </summary>
internal sealed class DatabaseHealthCheck(App app) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var status = await app.Health.CheckDatabaseAsync(cancellationToken).ConfigureAwait(false);
        return status.IsHealthy
            ? HealthCheckResult.Healthy(status.Description)
            : new HealthCheckResult(context.Registration.FailureStatus, status.Description);
    }
}
