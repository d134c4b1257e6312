using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;
using CheckStatus = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus;

namespace Procrastinate.Hosting.Tests;

internal static class Health
{
    /// <summary>Nothing listens on port 1: connections are refused at once.</summary>
    public const string Unreachable = "Host=127.0.0.1;Port=1;Timeout=5;Pooling=false";

    public static IHost Build(ITestOutputHelper output, string connectionString, Action<IServiceCollection>? configure = null,
        Action<IHealthChecksBuilder>? checks = null) =>
        TestHosts.Build(output, b =>
        {
            b.Services.AddProcrastinate(connectionString);
            var builder = b.Services.AddHealthChecks();
            if (checks is null)
                builder.AddProcrastinateHealthChecks();
            else
                checks(builder);
            configure?.Invoke(b.Services);
        });

    public static async Task<HealthReportEntry> CheckAsync(IHost host, string name)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Name == name);
        return report.Entries[name];
    }
}

public sealed class HealthCheckTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    private const string Database = ProcrastinateHealthChecksBuilderExtensions.DatabaseCheckName;
    private const string Workers = ProcrastinateHealthChecksBuilderExtensions.WorkerCheckName;

    [Fact]
    public async Task The_database_check_is_healthy_when_the_schema_is_installed()
    {
        using var host = Health.Build(output, db.ConnectionString);

        var entry = await Health.CheckAsync(host, Database);

        Assert.Equal(CheckStatus.Healthy, entry.Status);
    }

    [Fact]
    public async Task The_database_check_is_unhealthy_when_the_database_cannot_be_reached()
    {
        using var host = Health.Build(output, Health.Unreachable);

        var entry = await Health.CheckAsync(host, Database);

        Assert.Equal(CheckStatus.Unhealthy, entry.Status);
        Assert.Contains("cannot be reached", entry.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_failure_status_and_tags_are_those_given()
    {
        using var host = Health.Build(output, Health.Unreachable,
            checks: b => b.AddProcrastinateHealthChecks(CheckStatus.Degraded, ["ready"]));

        var entry = await Health.CheckAsync(host, Database);

        Assert.Equal(CheckStatus.Degraded, entry.Status);
        Assert.Contains("ready", entry.Tags);
    }

    [Fact]
    public async Task The_worker_check_is_healthy_when_no_worker_is_hosted()
    {
        using var host = Health.Build(output, db.ConnectionString);

        var entry = await Health.CheckAsync(host, Workers);

        Assert.Equal(CheckStatus.Healthy, entry.Status);
        Assert.Contains("No Procrastinate worker", entry.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_check_follows_the_hosted_worker_from_start_to_stop()
    {
        using var host = Health.Build(output, db.ConnectionString, s => s.AddProcrastinateWorker("lifecycle", o => o.Queues = ["lifecycle"]));

        var notStarted = await Health.CheckAsync(host, Workers);
        Assert.Equal(CheckStatus.Unhealthy, notStarted.Status);
        Assert.Contains("'lifecycle' has not started", notStarted.Description, StringComparison.Ordinal);

        await host.StartAsync();
        try
        {
            var running = await Eventually.WaitAsync(() => Health.CheckAsync(host, Workers), e => e.Status == CheckStatus.Healthy, "a healthy worker");
            Assert.Equal("Running", running.Data["lifecycle"]);
        }
        finally
        {
            await host.StopAsync();
        }

        var stopped = await Health.CheckAsync(host, Workers);
        Assert.Equal(CheckStatus.Unhealthy, stopped.Status);
        Assert.Contains("'lifecycle' is stopped", stopped.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_check_is_unhealthy_when_the_heartbeat_in_the_database_is_stale()
    {
        using var host = Health.Build(output, db.ConnectionString, s => s.AddProcrastinateWorker("stale", o => o.Queues = ["stale"]));
        await host.StartAsync();
        try
        {
            await Eventually.WaitAsync(() => Health.CheckAsync(host, Workers), e => e.Status == CheckStatus.Healthy, "a healthy worker");

            // Age the row (again, should a heartbeat land between the update and the check).
            var entry = await Eventually.WaitAsync(async () =>
            {
                await db.ExecAsync("""
                    UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'
                    WHERE id IN (SELECT worker_id FROM procrastinate_dotnet_workers WHERE name = 'stale')
                    """);
                return await Health.CheckAsync(host, Workers);
            }, e => e.Status == CheckStatus.Unhealthy, "an unhealthy worker");

            Assert.Contains("last heartbeat is", entry.Description, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task A_hosted_worker_that_cannot_reach_the_database_retries_and_is_reported_unhealthy()
    {
        using var host = Health.Build(output, Health.Unreachable, s => s.AddProcrastinateWorker("unreachable"));
        await host.StartAsync();
        try
        {
            var entry = await Eventually.WaitAsync(() => Health.CheckAsync(host, Workers),
                e => e.Status == CheckStatus.Unhealthy && e.Description!.Contains("cannot run", StringComparison.Ordinal), "a retrying worker");
            Assert.Equal("Retrying", entry.Data["unreachable"]);
        }
        finally
        {
            await host.StopAsync().WaitAsync(Eventually.DefaultTimeout);
        }
    }
}

public sealed class SchemaHealthCheckTests(EmptyDatabaseFixture db, ITestOutputHelper output) : IClassFixture<EmptyDatabaseFixture>
{
    [Fact]
    public async Task The_database_check_is_unhealthy_without_the_schema_and_healthy_once_it_is_applied()
    {
        using var host = Health.Build(output, db.ConnectionString);

        var missing = await Health.CheckAsync(host, ProcrastinateHealthChecksBuilderExtensions.DatabaseCheckName);
        Assert.Equal(CheckStatus.Unhealthy, missing.Status);
        Assert.Contains("not installed", missing.Description, StringComparison.Ordinal);

        await host.Services.GetRequiredService<App>().Schema.ApplyAsync();

        var installed = await Health.CheckAsync(host, ProcrastinateHealthChecksBuilderExtensions.DatabaseCheckName);
        Assert.Equal(CheckStatus.Healthy, installed.Status);
    }
}

public sealed class UnusableSchemaWorkerTests(EmptyDatabaseFixture db, ITestOutputHelper output) : IClassFixture<EmptyDatabaseFixture>
{
    [Fact]
    public async Task A_hosted_worker_on_a_database_without_the_schema_fails_and_stops_the_host()
    {
        using var host = Health.Build(output, db.ConnectionString, s => s.AddProcrastinateWorker("no_schema"));
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());

        await host.StartAsync();
        await stopping.Task.WaitAsync(Eventually.DefaultTimeout);
        await host.StopAsync().WaitAsync(Eventually.DefaultTimeout);

        var entry = await Health.CheckAsync(host, ProcrastinateHealthChecksBuilderExtensions.WorkerCheckName);
        Assert.Equal(CheckStatus.Unhealthy, entry.Status);
        Assert.Equal("Faulted", entry.Data["no_schema"]);
        Assert.Contains("'no_schema' failed", entry.Description, StringComparison.Ordinal);
    }
}
