using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using Procrastinate.Hosting.Internal;

namespace Procrastinate.Hosting.Health;

/// <summary>
/// Healthy when every worker hosted in this process runs and its row in <c>procrastinate_workers</c>
/// has a heartbeat newer than its <see cref="WorkerOptions.StalledWorkerTimeout"/>, by the database
/// clock. With no hosted worker in the process, the check is healthy.
/// </summary>
internal sealed class WorkerHealthCheck(ProcrastinateWorkerService? service) : IHealthCheck
{
    private const string HeartbeatAgesSql =
        "SELECT id, now() - last_heartbeat FROM procrastinate_workers WHERE id = ANY($1)";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (service is null || service.Workers.Count == 0)
            return HealthCheckResult.Healthy("No Procrastinate worker is hosted in this process.");

        var app = service.App;
        var problems = new List<string>();
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var registered = new List<WorkerState>();
        var live = app.Workers;
        foreach (var worker in service.Workers)
        {
            var status = worker.Status;
            data[worker.DisplayName] = status.State.ToString();
            var problem = status.State switch
            {
                HostedWorkerState.NotStarted => "has not started",
                HostedWorkerState.Retrying => $"cannot run and will try again: {status.Error?.Message}",
                HostedWorkerState.Faulted => $"failed: {status.Error?.Message}",
                HostedWorkerState.Stopped => "is stopped",
                _ => null,
            };
            if (problem is null)
            {
                // The core worker publishes its state once it is registered.
                if (live.FirstOrDefault(s => ReferenceEquals(s.Options, status.Options)) is { Id: > 0 } state)
                    registered.Add(state);
                else
                    problem = "is starting (not registered in procrastinate_workers yet)";
            }
            if (problem is not null)
                problems.Add($"Worker '{worker.DisplayName}' {problem}.");
        }

        if (registered.Count > 0)
        {
            try
            {
                var ages = app.Connector is NpgsqlConnector connector
                    ? await ReadHeartbeatAgesAsync(connector.DataSource, [.. registered.Select(s => s.Id)], cancellationToken).ConfigureAwait(false)
                    : registered.ToDictionary(s => s.Id, s => app.Options.TimeProvider.GetUtcNow() - s.LastHeartbeat);
                foreach (var state in registered)
                {
                    if (!ages.TryGetValue(state.Id, out var age))
                        problems.Add($"Worker '{state.Name}' (id {state.Id}) has no row in procrastinate_workers.");
                    else if (age >= state.Options.StalledWorkerTimeout)
                        problems.Add(string.Create(CultureInfo.InvariantCulture,
                            $"Worker '{state.Name}' (id {state.Id}) last heartbeat is {age.TotalSeconds:0.#} s old (limit {state.Options.StalledWorkerTimeout.TotalSeconds:0.#} s)."));
                }
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, $"The worker heartbeats cannot be read: {e.Message}", e, data);
            }
        }

        return problems.Count == 0
            ? HealthCheckResult.Healthy($"{registered.Count} Procrastinate worker(s) running, with a fresh heartbeat.", data)
            : new HealthCheckResult(context.Registration.FailureStatus, string.Join(" ", problems), data: data);
    }

    private static async Task<Dictionary<long, TimeSpan>> ReadHeartbeatAgesAsync(NpgsqlDataSource dataSource, long[] ids, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(HeartbeatAgesSql);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var ages = new Dictionary<long, TimeSpan>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            ages[reader.GetInt64(0)] = reader.GetFieldValue<TimeSpan>(1);
        return ages;
    }
}
