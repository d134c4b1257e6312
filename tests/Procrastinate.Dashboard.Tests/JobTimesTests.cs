using Npgsql;
using Procrastinate.Dashboard.Internal;

namespace Procrastinate.Dashboard.Tests;

/// <summary>The job list's times on the lean layout, where a job's 'deferred' and 'started' events wait in its row.</summary>
public sealed class JobTimesTests
{
    [Fact]
    public async Task A_running_job_s_times_come_from_its_row_on_the_lean_layout()
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
            // Neither event is a row yet: both wait in the job row.
            await using var read = ds.CreateCommand($"SELECT dotnet_deferred_at, dotnet_started_at FROM procrastinate_jobs WHERE id = {id} AND NOT EXISTS (SELECT FROM procrastinate_events)");
            await using var reader = await read.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
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
