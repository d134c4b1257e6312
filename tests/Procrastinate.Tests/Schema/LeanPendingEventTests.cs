using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// On the lean layout a job's 'deferred' event and a run's 'started' event are written when the
/// job leaves that state; until then they wait in the job row, with the event ids taken when they
/// happened (Layouts/lean_triggers.sql, revision 4). Readers see the same events, in the same
/// order, as on the compatible layout.
/// </summary>
public sealed class LeanPendingEventTests
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
        var (cs, app, ds, workerId) = await LeanAsync("lean_pending");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));

            var claimed = Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 10, CancellationToken.None));
            Assert.Equal(id, claimed.Id);
            // Nothing written for the defer or the claim but the job row.
            Assert.Empty(await StoredEvents(ds, id));
            var deferredId = await Scalar<long>(ds, $"SELECT dotnet_deferred_event_id FROM procrastinate_jobs WHERE id = {id}");
            var reserved = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            var startedAt = await Scalar<DateTime>(ds, $"SELECT dotnet_started_at FROM procrastinate_jobs WHERE id = {id}");

            // Readers see them, with the ids and times taken when they happened.
            var running = await app.Jobs.ListEventsAsync(id);
            Assert.Equal([JobEventType.Deferred, JobEventType.Started], running.Select(e => e.Type!.Value));
            Assert.Equal([deferredId, reserved], running.Select(e => e.Id));
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
            Assert.Equal([deferredId, reserved], stored.Take(2).Select(e => e.Id));
            Assert.Equal(0L, await Scalar<long>(ds, $"SELECT count(dotnet_deferred_event_id) FROM procrastinate_jobs WHERE id = {id}"));
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
    public async Task Statements_that_do_not_set_the_columns_get_them_from_the_row_triggers_once_per_run()
    {
        // Claims and completions of an earlier version of the library, or Python's functions,
        // set only the status.
        var (cs, app, ds, workerId) = await LeanAsync("lean_pending_trigger");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));

            await Scalar<int>(ds, $"WITH u AS (UPDATE procrastinate_jobs SET status = 'doing', worker_id = {workerId} WHERE id = {id} RETURNING 1) SELECT count(*)::int FROM u");
            var first = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");
            Assert.Empty(await StoredEvents(ds, id));
            Assert.Equal([JobEventType.Deferred, JobEventType.Started], (await app.Jobs.ListEventsAsync(id)).Select(e => e.Type!.Value));

            // A status change that does not say the 'deferred' event is written: the row trigger does.
            await Scalar<object>(ds, $"SELECT procrastinate_retry_job_v2({id}, now(), NULL, NULL, NULL)::text");
            Assert.Equal(0L, await Scalar<long>(ds, $"SELECT count(dotnet_deferred_event_id) FROM procrastinate_jobs WHERE id = {id}"));
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
    public async Task A_defer_writes_no_event_and_the_deferred_event_is_written_when_the_job_leaves_its_wait()
    {
        var (cs, app, ds, workerId) = await LeanAsync("lean_pending_defer");
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var ids = await task.DeferManyAsync([new(1, 1), new(2, 2), new(3, 3)]);
            var scheduled = await task.DeferAsync(new Defer.SumArgs(4, 4), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
            Assert.Equal(0L, await Scalar<long>(ds, $"SELECT count(*) FROM procrastinate_events WHERE job_id = ANY(ARRAY[{string.Join(',', ids)}])"));
            // A scheduled job's events are written at once: 'scheduled' comes before 'deferred'.
            Assert.Equal(["scheduled", "deferred"], (await StoredEvents(ds, scheduled)).Select(e => e.Type));
            Assert.Equal([JobEventType.Deferred], (await app.Jobs.ListEventsAsync(ids[0])).Select(e => e.Type!.Value));

            // Cancelled while waiting: 'deferred', then 'cancelled'.
            Assert.True(await app.Jobs.CancelAsync(ids[0]));
            Assert.Equal(["deferred", "cancelled"], (await StoredEvents(ds, ids[0])).Select(e => e.Type));

            // Run and deleted at its end: no event was ever written for it.
            var claimed = (await app.Connector.FetchJobsAsync(null, workerId, 2, CancellationToken.None)).OrderBy(j => j.Id).ToList();
            Assert.Equal(ids.Skip(1), claimed.Select(j => j.Id));
            await app.Connector.FinishJobsAsync(
                [new JobOutcome(claimed[0], JobStatus.Succeeded, DeleteJob: true, null, null, TimeSpan.Zero),
                 new JobOutcome(claimed[1], JobStatus.Failed, DeleteJob: false, null, null, TimeSpan.Zero)],
                workerId, CancellationToken.None);
            Assert.Null(await app.Jobs.GetAsync(ids[1]));
            Assert.Equal(0L, await Scalar<long>(ds, $"SELECT count(*) FROM procrastinate_events WHERE job_id = {ids[1]}"));
            // Run and kept: its three events, in order; nothing waits in the row any more.
            var stored = await StoredEvents(ds, ids[2]);
            Assert.Equal(["deferred", "started", "failed"], stored.Select(e => e.Type));
            Assert.Equal(stored.Select(e => e.Id).Order(), stored.Select(e => e.Id));
            Assert.Equal(stored.Select(e => e.Id), (await app.Jobs.ListEventsAsync(ids[2])).Select(e => e.Id));
            Assert.Equal(0L, await Scalar<long>(ds, $"SELECT count(*) FROM procrastinate_dotnet_pending_events(ARRAY[{ids[2]}::bigint])"));
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
        var (cs, app, ds, workerId) = await LeanAsync("lean_pending_rescue");
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
    public async Task Converting_back_writes_the_waiting_events_and_claims_and_completions_go_on()
    {
        var (cs, app, ds, workerId) = await LeanAsync("lean_pending_back");
        await using var finisher = new App(new NpgsqlConnector(cs));
        try
        {
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));
            var other = await task.DeferAsync(new Defer.SumArgs(3, 4));
            var waiting = await task.DeferAsync(new Defer.SumArgs(5, 6), new DeferOptions { Queue = "later" });
            // Two connectors that found the lean columns: one claimed, the other claimed too.
            Assert.Equal(id, Assert.Single(await app.Connector.FetchJobsAsync(["default"], workerId, 1, CancellationToken.None)).Id);
            var otherJob = Assert.Single(await finisher.Connector.FetchJobsAsync(["default"], workerId, 1, CancellationToken.None));
            Assert.Equal(other, otherJob.Id);
            var reserved = await Scalar<long>(ds, $"SELECT dotnet_started_event_id FROM procrastinate_jobs WHERE id = {id}");

            // Converted by another process while they still take the lean layout for granted.
            await using (var admin = new App(new NpgsqlConnector(cs)))
                await admin.Schema.ApplyAsync(SchemaLayout.Compatible);
            Assert.Equal(0L, await Scalar<long>(ds,
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'procrastinate_jobs'::regclass AND attname LIKE 'dotnet_%' AND NOT attisdropped"));
            // The waiting events became rows, with their ids.
            Assert.Equal([("deferred", false), ("started", true)],
                (await StoredEvents(ds, id)).Select(e => (e.Type, e.Id == reserved)));
            Assert.Equal(["deferred"], (await StoredEvents(ds, waiting)).Select(e => e.Type));

            // The next claim of one and the completion of the other fail on the missing columns,
            // look again, and go on.
            Assert.Equal(waiting, Assert.Single(await app.Connector.FetchJobsAsync(null, workerId, 1, CancellationToken.None)).Id);
            Assert.Equal([other], await finisher.Connector.FinishJobsAsync(
                [new JobOutcome(otherJob, JobStatus.Succeeded, DeleteJob: false, null, null, TimeSpan.Zero)], workerId, CancellationToken.None));
            Assert.Equal(["deferred", "started", "succeeded"], (await StoredEvents(ds, other)).Select(e => e.Type));
            Assert.Equal(["deferred", "started"], (await StoredEvents(ds, waiting)).Select(e => e.Type));
        }
        finally
        {
            await app.DisposeAsync();
            await ds.DisposeAsync();
            await TestCluster.DropDatabaseAsync(cs);
        }
    }
}
