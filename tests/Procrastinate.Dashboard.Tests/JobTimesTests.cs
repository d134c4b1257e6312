using Npgsql;
using Procrastinate.Dashboard.Internal;

namespace Procrastinate.Dashboard.Tests;

/// <summary>The job list's times on the lean layout, where a running job's 'started' event is in its row.</summary>
public sealed class JobTimesTests
{
    [Fact]
    public async Task A_running_job_s_latest_event_is_its_start_on_the_lean_layout()
    {
        var cs = await TestCluster.CreateDatabaseAsync("dash_times_lean", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            await app.Schema.ApplyAsync(SchemaLayout.Lean);
            var id = await app.Task<NoArgs>("noop", _ => { }).DeferAsync(new NoArgs(1));
            await using var ds = NpgsqlDataSource.Create(cs);
            await using (var late = ds.CreateCommand($"UPDATE procrastinate_jobs SET status = 'doing', dotnet_started_event_id = nextval('procrastinate_events_id_seq'), dotnet_started_at = now() + interval '1 hour' WHERE id = {id}"))
                await late.ExecuteNonQueryAsync();
            await using var read = ds.CreateCommand($"SELECT (SELECT at FROM procrastinate_events WHERE job_id = {id}), (SELECT dotnet_started_at FROM procrastinate_jobs WHERE id = {id})");
            await using var reader = await read.ExecuteReaderAsync();
            await reader.ReadAsync();
            var (deferredAt, startedAt) = (reader.GetFieldValue<DateTimeOffset>(0), reader.GetFieldValue<DateTimeOffset>(1));

            var times = await new DashboardQueries(app).GetJobTimesAsync([id], CancellationToken.None);
            Assert.Equal(new JobTimes(deferredAt, startedAt), times[id]);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }
}

internal sealed record NoArgs(int N);
