using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// On the lean layout a run's 'started' event is written when the run ends; until then it waits
/// in the job row, with the event id its claim took (Layouts/lean_triggers.sql, revision 4).
/// Readers see the same events, in the same order, as on the compatible layout.
/// </summary>
public sealed class LeanStartedEventTests
{
    private static async Task<T> Scalar<T>(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>The job's event rows as stored (type, id), in id order.</summary>
    private static async Task<List<(string Type, long Id)>> StoredEvents(NpgsqlDataSource ds, long jobId)
    {
        var events = new List<(string, long)>();
        await using var cmd = ds.CreateCommand($"SELECT type::text, id FROM procrastinate_events WHERE job_id = {jobId} ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            events.Add((reader.GetString(0), reader.GetInt64(1)));
        return events;
    }

    private static async Task<(string Cs, App App, NpgsqlDataSource Ds, long WorkerId)> LeanAsync(string name)
    {
        var cs = await TestCluster.CreateDatabaseAsync(name, withSchema: true);
        var app = new App(new NpgsqlConnector(cs));
        await app.Schema.ApplyAsync(SchemaLayout.Lean);
        var ds = NpgsqlDataSource.Create(cs);
        var workerId = await Scalar<long>(ds, "SELECT worker_id FROM procrastinate_register_worker_v1()");
        return (cs, app, ds, workerId);
    }

    [Fact]
    public async Task A_claim_writes_no_event_and_the_run_s_started_event_keeps_its_place()
    {
        var (cs, app, ds, workerId) = await LeanAsync("lean_started");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));

            var claimed = Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 10, CancellationToken.None));
            Assert.Equal(id, claimed.Id);
            // Nothing written for the claim but the job row.
            Assert.Equal(["deferred"], (await StoredEvents(ds, id)).Select(e => e.Type));
            var reserved = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            var startedAt = await Scalar<DateTime>(ds, $"SELECT dotnet_started_at FROM procrastinate_jobs WHERE id = {id}");

            // Readers see it, with the id and time the claim took.
            var running = await app.Jobs.ListEventsAsync(id);
            Assert.Equal([JobEventType.Deferred, JobEventType.Started], running.Select(e => e.Type!.Value));
            Assert.Equal(reserved, running[1].Id);
            Assert.Equal(startedAt, running[1].At!.Value.UtcDateTime);
            Assert.True(running[1].Id > running[0].Id);

            // An abort request while it runs comes after it, and the run's end writes it.
            Assert.True(await app.Jobs.AbortAsync(id));
            var written = await app.Connector.FinishJobsAsync(
                [new JobOutcome(claimed, JobStatus.Succeeded, DeleteJob: false, Retry: null, Exception: null, TimeSpan.Zero)],
                workerId, CancellationToken.None);
            Assert.Equal([id], written);
            var stored = await StoredEvents(ds, id);
            Assert.Equal(["deferred", "started", "abort_requested", "succeeded"], stored.Select(e => e.Type));
            Assert.Equal(reserved, stored[1].Id);
            Assert.Equal(stored.Select(e => e.Id).Order(), stored.Select(e => e.Id));
            Assert.Equal(stored.Select(e => e.Id), (await app.Jobs.ListEventsAsync(id)).Select(e => e.Id));
        }
        finally
        {
            await app.DisposeAsync();
            await ds.DisposeAsync();
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task A_claim_that_does_not_take_the_event_gets_it_from_the_row_trigger_once_per_run()
    {
        // Claims of an earlier version of the library, or Python's function, set only the status.
        var (cs, app, ds, workerId) = await LeanAsync("lean_started_trigger");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));

            await Scalar<int>(ds, $"WITH u AS (UPDATE procrastinate_jobs SET status = 'doing', worker_id = {workerId} WHERE id = {id} RETURNING 1) SELECT count(*)::int FROM u");
            var first = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            Assert.Equal(["deferred"], (await StoredEvents(ds, id)).Select(e => e.Type));
            Assert.Equal([JobEventType.Deferred, JobEventType.Started], (await app.Jobs.ListEventsAsync(id)).Select(e => e.Type!.Value));

            await Scalar<object>(ds, $"SELECT procrastinate_retry_job_v2({id}, now(), NULL, NULL, NULL)::text");
            Assert.Equal(id, await Scalar<long>(ds, $"SELECT id FROM procrastinate_fetch_job_v2(NULL, {workerId})"));
            var second = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            Assert.True(second > first);
            await Scalar<object>(ds, $"SELECT procrastinate_finish_job_v1({id}, 'succeeded', false)::text");

            var stored = await StoredEvents(ds, id);
            Assert.Equal(["deferred", "started", "scheduled", "deferred_for_retry", "started", "succeeded"], stored.Select(e => e.Type));
            Assert.Equal([first, second], stored.Where(e => e.Type == "started").Select(e => e.Id));
            Assert.Equal(stored.Select(e => e.Id).Order(), stored.Select(e => e.Id));
        }
        finally
        {
            await app.DisposeAsync();
            await ds.DisposeAsync();
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Stalled_job_rescue_reads_the_start_of_a_run_still_going_from_the_row()
    {
        // A job whose worker was pruned while alive has worker_id NULL: only the time of its
        // 'started' event keeps it from being rescued at once (COMPAT.md W3).
        var (cs, app, ds, workerId) = await LeanAsync("lean_started_rescue");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));
            Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 1, CancellationToken.None));
            await Scalar<int>(ds, $"WITH u AS (UPDATE procrastinate_jobs SET worker_id = NULL WHERE id = {id} RETURNING 1) SELECT count(*)::int FROM u");

            Assert.Empty(await app.Jobs.RescueStalledJobsAsync(TimeSpan.FromMinutes(1)));
            Assert.Equal(JobStatus.Doing, (await app.Jobs.GetAsync(id))!.Status);

            await Scalar<int>(ds, $"WITH u AS (UPDATE procrastinate_jobs SET dotnet_started_at = now() - interval '2 minutes' WHERE id = {id} RETURNING 1) SELECT count(*)::int FROM u");
            Assert.Equal([id], (await app.Jobs.RescueStalledJobsAsync(TimeSpan.FromMinutes(1))).Select(j => j.Id));
            var stored = await StoredEvents(ds, id);
            Assert.Equal(["deferred", "started", "scheduled", "deferred_for_retry"], stored.Select(e => e.Type));
        }
        finally
        {
            await app.DisposeAsync();
            await ds.DisposeAsync();
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Converting_back_writes_the_started_events_of_running_jobs_and_claims_go_on()
    {
        var (cs, app, ds, workerId) = await LeanAsync("lean_started_back");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));
            Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 1, CancellationToken.None));
            var reserved = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            var other = await task.DeferAsync(new Defer.SumArgs(3, 4));

            // Converted by another process while this connector still takes the lean layout for granted.
            await using (var admin = new App(new NpgsqlConnector(cs)))
                await admin.Schema.ApplyAsync(SchemaLayout.Compatible);
            Assert.Equal(0L, await Scalar<long>(ds,
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'procrastinate_jobs'::regclass AND attname LIKE 'dotnet_started%' AND NOT attisdropped"));
            Assert.Equal([("deferred", true), ("started", true)],
                (await StoredEvents(ds, id)).Select(e => (e.Type, e.Type != "started" || e.Id == reserved)));

            // Its next claim fails on the missing column, looks again, and claims.
            Assert.Equal(other, Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 1, CancellationToken.None)).Id);
            await Scalar<object>(ds, $"SELECT procrastinate_finish_job_v1({id}, 'succeeded', false)::text");
            Assert.Equal(["deferred", "started", "succeeded"], (await StoredEvents(ds, id)).Select(e => e.Type));
            Assert.Equal(["deferred", "started"], (await StoredEvents(ds, other)).Select(e => e.Type));
        }
        finally
        {
            await app.DisposeAsync();
            await ds.DisposeAsync();
            await TestCluster.DropDatabaseAsync(cs);
        }
    }
}
