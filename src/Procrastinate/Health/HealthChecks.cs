namespace Procrastinate;

/// <summary>The result of a health check.</summary>
/// <param name="IsHealthy">True when everything checked is fine.</param>
/// <param name="Description">What was found, for people.</param>
public sealed record HealthResult(bool IsHealthy, string Description);

/// <summary>
/// Health checks usable from code, the command line and the host: the database is reachable,
/// the schema is installed at the level this version expects, and running workers heartbeat.
/// </summary>
public sealed class HealthChecks
{
    private readonly App _app;

    internal HealthChecks(App app) => _app = app;

    /// <summary>Checks that the database answers and that the schema is installed and up to date.</summary>
    public async Task<HealthResult> CheckDatabaseAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await _app.Connector.PingAsync(async: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
        {
            return new HealthResult(false, $"The database cannot be reached: {e.Message}");
        }
        if (_app.Connector is not NpgsqlConnector)
            return new HealthResult(true, "The connector is reachable.");
        var schema = await _app.Schema.CheckAsync(cancellationToken).ConfigureAwait(false);
        return schema switch
        {
            { Installed: false } => new HealthResult(false, "The database is reachable but the Procrastinate schema is not installed (apply it with app.Schema.ApplyAsync() or `procrastinate schema --apply`)."),
            { AtSupportedLevel: false } => new HealthResult(false, "The Procrastinate schema is older than 3.4; apply Procrastinate's migrations."),
            { UnknownMigrations.Count: > 0 } => new HealthResult(false, $"The schema is newer than this version of the library (unknown migrations: {string.Join(", ", schema.UnknownMigrations)})."),
            { PendingMigrations.Count: > 0 } => new HealthResult(false, $"The schema lacks .NET migrations: {string.Join(", ", schema.PendingMigrations)} (apply the schema)."),
            _ => new HealthResult(true, "The database is reachable and the schema is installed and up to date."),
        };
    }

    /// <summary>
    /// Checks the workers running in this process: each has written its heartbeat within its
    /// <see cref="WorkerOptions.StalledWorkerTimeout"/>. Unhealthy when <paramref name="requireWorker"/>
    /// is true and none runs.
    /// </summary>
    public HealthResult CheckWorkers(bool requireWorker = true)
    {
        var workers = _app.Workers;
        if (workers.Count == 0)
            return new HealthResult(!requireWorker, "No worker runs in this process.");
        var now = _app.Options.TimeProvider.GetUtcNow();
        var stale = workers.Where(w => now - w.LastHeartbeat > w.Options.StalledWorkerTimeout).ToList();
        return stale.Count == 0
            ? new HealthResult(true, $"{workers.Count} worker(s) heartbeating: {string.Join(", ", workers.Select(w => $"{w.Name} (id {w.Id}, {w.RunningJobs} running)"))}.")
            : new HealthResult(false, $"Worker(s) with a stale heartbeat: {string.Join(", ", stale.Select(w => $"{w.Name} (id {w.Id}, last {w.LastHeartbeat:O})"))}.");
    }
}
