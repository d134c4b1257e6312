using Npgsql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// The lean table layout (<see cref="SchemaLayout.Lean"/>): installing it, converting both ways
/// with the stored jobs kept, and getting back exactly the Procrastinate-compatible catalog.
/// Its behaviour is the shared behaviour suite (<c>PostgresLeanBehaviourTests</c>).
/// </summary>
public sealed class LayoutTests
{
    private static async Task<T> Scalar<T>(string cs, string sql)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static Task<bool> HasIndex(string cs, string name) =>
        Scalar<bool>(cs, $"SELECT to_regclass('{name}') IS NOT NULL");

    private static async Task<string> TriggerNames(string cs) => await Scalar<string>(cs,
        "SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'procrastinate%'");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_database_gets_the_lean_layout_once_and_keeps_it(bool async)
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_new", withSchema: false);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var first = async ? await app.Schema.ApplyAsync(SchemaLayout.Lean) : app.Schema.Apply(SchemaLayout.Lean);
            Assert.True(first.InstalledBase);
            Assert.True(first.LayoutChanged);
            Assert.Equal(SchemaLayout.Lean, first.Layout);
            Assert.EndsWith("Converted to the lean layout.", first.ToString(), StringComparison.Ordinal);

            var status = await app.Schema.CheckAsync();
            Assert.True(status.IsUsable);
            Assert.Equal(SchemaLayout.Lean, status.Layout);
            Assert.Equal("procrastinate_jobs_notify_queue_job_aborted_v1,procrastinate_lean_jobs_deferred_now,procrastinate_lean_jobs_deferred_written,procrastinate_lean_jobs_deleted,procrastinate_lean_jobs_inserted,procrastinate_lean_jobs_later,procrastinate_lean_jobs_started,procrastinate_lean_jobs_updated,procrastinate_lean_workers_deleted",
                await TriggerNames(cs));
            // The foreign keys checked row by row are gone.
            Assert.Equal(0L, await Scalar<long>(cs,
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid IN ('procrastinate_jobs'::regclass, 'procrastinate_workers'::regclass) AND conrelid <> 'procrastinate_dotnet_workers'::regclass"));

            // Applying again without a layout keeps the lean one and changes nothing.
            var again = await app.Schema.ApplyAsync();
            Assert.False(again.Changed);
            Assert.Equal(SchemaLayout.Lean, again.Layout);
            Assert.Equal(SchemaLayout.Lean, (await app.Schema.CheckAsync()).Layout);
            Assert.False((await app.Schema.ApplyAsync(SchemaLayout.Lean)).Changed);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Converting_to_lean_and_back_keeps_the_jobs_and_restores_the_compatible_catalog()
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_roundtrip", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var before = await task.DeferAsync(new Defer.SumArgs(1, 2));
            Assert.Equal(SchemaLayout.Compatible, (await app.Schema.CheckAsync()).Layout);

            Assert.True(await HasIndex(cs, "procrastinate_dotnet_jobs_queue_claim_idx"));
            Assert.True(await HasIndex(cs, "procrastinate_dotnet_jobs_scheduled_idx"));
            var toLean = await app.Schema.ApplyAsync(SchemaLayout.Lean);
            Assert.True(toLean.LayoutChanged);
            Assert.False(toLean.InstalledBase);
            // The compatible layout's queue and scheduled indexes (migrations 0005 and 0006) give
            // way to the lean layout's.
            Assert.False(await HasIndex(cs, "procrastinate_dotnet_jobs_queue_claim_idx"));
            Assert.False(await HasIndex(cs, "procrastinate_dotnet_jobs_scheduled_idx"));
            Assert.True(await HasIndex(cs, "procrastinate_jobs_queue_claim_idx_lean"));
            var during = await task.DeferAsync(new Defer.SumArgs(3, 4));
            // A worker that ran jobs and is gone: in the lean layout its ended jobs keep its id.
            await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
            Assert.Equal(JobStatus.Succeeded, (await app.Jobs.GetAsync(before))!.Status);
            Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded],
                (await app.Jobs.ListEventsAsync(during)).Select(e => e.Type!.Value));
            Assert.NotNull((await app.Jobs.GetAsync(during))!.WorkerId);

            var back = await app.Schema.ApplyAsync(SchemaLayout.Compatible);
            Assert.True(back.LayoutChanged);
            Assert.Equal(SchemaLayout.Compatible, (await app.Schema.CheckAsync()).Layout);
            Assert.Equal(2L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_jobs"));
            Assert.Equal(6L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_events"));
            // The dangling worker id was cleared so that the foreign key holds again.
            Assert.Null((await app.Jobs.GetAsync(during))!.WorkerId);
            Assert.True(await HasIndex(cs, "procrastinate_dotnet_jobs_queue_claim_idx"));
            Assert.True(await HasIndex(cs, "procrastinate_dotnet_jobs_scheduled_idx"));
            Assert.False(await HasIndex(cs, "procrastinate_jobs_queue_claim_idx_lean"));

            // Exactly the contract's catalog again (COMPAT.md section 2).
            await using var ds = NpgsqlDataSource.Create(cs);
            var comparison = CatalogComparer.Compare(ExpectedCatalog.All, await CatalogReader.ReadAsync(ds));
            Assert.True(comparison.IsMatch, comparison.Describe());
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task The_lean_layout_notifies_once_per_queue_and_statement()
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_notify", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            await app.Schema.ApplyAsync(SchemaLayout.Lean);
            await using var ds = NpgsqlDataSource.Create(cs);
            await using var listener = await ds.OpenConnectionAsync();
            var received = new List<(string Channel, string Payload)>();
            listener.Notification += (_, e) => received.Add((e.Channel, e.Payload));
            await using (var listen = new NpgsqlCommand("LISTEN \"procrastinate_any_queue_v1\"; LISTEN \"procrastinate_queue_v1#b\"", listener))
                await listen.ExecuteNonQueryAsync();

            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var ids = await task.DeferManyAsync([new(1, 1), new(2, 2), new(3, 3)], new DeferOptions { Queue = "a" });
            var other = await task.DeferAsync(new Defer.SumArgs(4, 4), new DeferOptions { Queue = "b" });

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (received.Count < 3 && DateTime.UtcNow < deadline)
                await listener.WaitAsync(TimeSpan.FromMilliseconds(200));
            await listener.WaitAsync(TimeSpan.FromMilliseconds(300)); // nothing more arrives
            Assert.Equal(
            [
                ("procrastinate_any_queue_v1", $$"""{"type" : "job_inserted", "job_id" : {{ids.Min()}}}"""),
                ("procrastinate_queue_v1#b", $$"""{"type" : "job_inserted", "job_id" : {{other}}}"""),
                ("procrastinate_any_queue_v1", $$"""{"type" : "job_inserted", "job_id" : {{other}}}"""),
            ], received);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    /// <summary>
    /// Raw statements, each touching several jobs, in the shapes the lean triggers tell apart:
    /// plain status changes (their fast statement), and statements with a scheduled or
    /// abort-requested row among others (their general one). Ids are those of a fresh database.
    /// </summary>
    private static readonly string[] EventScript =
    [
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT 'q', 't', '{}' FROM generate_series(1, 6)",
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) VALUES ('q', 't', '{}', now() + interval '1 hour'), ('q', 't', '{}', NULL)",
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id IN (1, 2, 3, 4)",
        "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = 1",
        "UPDATE procrastinate_jobs SET abort_requested = (id = 2), status = CASE WHEN id = 3 THEN 'failed'::procrastinate_job_status ELSE status END WHERE id IN (2, 3)",
        "UPDATE procrastinate_jobs SET status = 'aborted', abort_requested = false WHERE id = 2",
        "UPDATE procrastinate_jobs SET status = 'todo', scheduled_at = now() + interval '1 minute' WHERE id = 4",
        "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = 3",
        "UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id IN (5, 6)",
        "UPDATE procrastinate_jobs SET priority = 5 WHERE id IN (7, 8)",
    ];

    private static async Task<List<string>> RunEventScript(string cs)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        foreach (var sql in EventScript)
        {
            await using var cmd = ds.CreateCommand(sql);
            await cmd.ExecuteNonQueryAsync();
        }
        var events = new List<string>();
        // As readers see them: the rows, and the events the lean layout keeps in job rows until
        // the job leaves that state (none on the compatible layout).
        await using var read = ds.CreateCommand("""
            SELECT job_id, type, at IS NULL
            FROM (SELECT id, job_id, type::text AS type, at FROM procrastinate_events
                  UNION ALL
                  SELECT id, job_id, type, at FROM procrastinate_dotnet_pending_events(ARRAY(SELECT id FROM procrastinate_jobs))) AS e
            ORDER BY job_id, id
            """);
        await using var reader = await read.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            events.Add($"{reader.GetInt64(0)} {reader.GetString(1)}{(reader.GetBoolean(2) ? " (no time)" : "")}");
        return events;
    }

    [Fact]
    public async Task The_lean_triggers_write_the_events_of_the_compatible_ones_for_every_kind_of_statement()
    {
        var compatible = await TestCluster.CreateDatabaseAsync("events_compat", withSchema: true);
        var lean = await TestCluster.CreateDatabaseAsync("events_lean", withSchema: true);
        try
        {
            await using (var app = new App(new NpgsqlConnector(lean)))
                await app.Schema.ApplyAsync(SchemaLayout.Lean);
            var expected = await RunEventScript(compatible);
            // The script reaches every event type the status and abort triggers write.
            Assert.Equal(
                ["abort_requested", "aborted", "cancelled", "deferred", "deferred_for_retry", "failed", "retried", "scheduled", "started", "succeeded"],
                expected.Select(e => e.Split(' ')[1]).Distinct().Order(StringComparer.Ordinal));
            Assert.Equal(expected, await RunEventScript(lean));
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(compatible);
            await TestCluster.DropDatabaseAsync(lean);
        }
    }

    [Fact]
    public async Task The_lean_triggers_plans_do_not_depend_on_the_size_of_the_first_statement_a_session_ran()
    {
        // PL/pgSQL plans a trigger's statements once per session, estimating the transition
        // tables at the size they had that first time. A first statement of no row or one row
        // (a worker's prune, a single completion) made the old-to-new row join a nested loop,
        // which later compared every row of a 1,000-job claim with every other (1,000,000 join
        // filter evaluations, 230 ms). The plans are read here with auto_explain.
        var cs = await TestCluster.CreateDatabaseAsync("lean_plans", withSchema: true);
        try
        {
            await using (var app = new App(new NpgsqlConnector(cs)))
                await app.Schema.ApplyAsync(SchemaLayout.Lean);
            await using var ds = NpgsqlDataSource.Create(cs);
            await using var connection = await ds.OpenConnectionAsync();
            async Task Run(string sql)
            {
                await using var cmd = new NpgsqlCommand(sql, connection);
                await cmd.ExecuteNonQueryAsync();
            }

            // The session's first statements: each trigger statement planned for 0 or 1 row.
            await Run("""
                INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('q', 't', '{}'), ('q', 't', '{}');
                UPDATE procrastinate_jobs SET attempts = attempts WHERE false;
                UPDATE procrastinate_jobs SET status = 'doing';
                UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = (SELECT min(id) FROM procrastinate_jobs);
                UPDATE procrastinate_jobs SET abort_requested = true WHERE status = 'doing';
                DELETE FROM procrastinate_jobs;
                INSERT INTO procrastinate_workers DEFAULT VALUES;
                DELETE FROM procrastinate_workers;
                INSERT INTO procrastinate_jobs (queue_name, task_name, args)
                SELECT 'q', 't', '{}' FROM generate_series(1, 400);
                INSERT INTO procrastinate_workers DEFAULT VALUES;
                """);
            var plans = new List<string>();
            connection.Notice += (_, e) => plans.Add(e.Notice.MessageText);
            await Run("""
                LOAD 'auto_explain';
                SET auto_explain.log_min_duration = 0;
                SET auto_explain.log_analyze = on;
                SET auto_explain.log_nested_statements = on;
                SET auto_explain.log_level = notice;
                SET client_min_messages = notice;
                """);
            // Then statements of hundreds of rows down each path of the update trigger (a claim,
            // which writes no event; runs that end, whose 'started' events are written then; abort
            // requests), and the deletes.
            await Run("UPDATE procrastinate_jobs SET status = 'doing', worker_id = (SELECT max(id) FROM procrastinate_workers)");
            await Run("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id % 2 = 0");
            await Run("UPDATE procrastinate_jobs SET abort_requested = true WHERE status = 'doing'");
            Assert.Equal("abort_requested:200,deferred:200,started:200,succeeded:200", await Scalar<string>(cs,
                "SELECT string_agg(type || ':' || n, ',' ORDER BY type::text) FROM (SELECT type, count(*) AS n FROM procrastinate_events GROUP BY type) AS c"));
            // The running jobs' 'deferred' and 'started' events wait in their rows.
            Assert.Equal(400L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_dotnet_pending_events(ARRAY(SELECT id FROM procrastinate_jobs))"));
            await Run("DELETE FROM procrastinate_workers");
            await Run("DELETE FROM procrastinate_jobs");
            await Run("RESET auto_explain.log_min_duration");

            var triggerPlans = plans.Where(p => p.Contains("_rows", StringComparison.Ordinal)).ToList();
            Assert.True(triggerPlans.Count >= 4, $"expected the plans of the trigger statements, got: {string.Join("\n---\n", plans)}");
            // Each statement over the transition tables touches each of their rows a bounded
            // number of times, whatever the estimates it was planned with.
            Assert.All(triggerPlans, p => Assert.DoesNotContain("Rows Removed by Join Filter", p, StringComparison.Ordinal));
            Assert.Equal(0L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_events"));
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Theory]
    [InlineData("dotnet_layout_lean_triggers_2")]
    [InlineData("dotnet_layout_lean_triggers_3")]
    [InlineData("dotnet_layout_lean_triggers_4")]
    [InlineData("dotnet_layout_lean_triggers_5")]
    public async Task Applying_the_schema_brings_the_trigger_functions_of_an_earlier_lean_conversion_up_to_date(string earlier)
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_upgrade", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var converted = await app.Schema.ApplyAsync(SchemaLayout.Lean);
            Assert.True(converted.LayoutChanged);
            Assert.Empty(converted.AppliedMigrations); // a fresh conversion has the current functions

            // A job scheduled for later, deferred before the downgrade below.
            var later = await Scalar<long>(cs,
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) VALUES ('default', 'sum', '{}', now() + interval '1 day') RETURNING id");
            var laterEvents = await Scalar<long>(cs, $"SELECT count(*) FROM procrastinate_events WHERE job_id = {later}");
            // As an earlier version left it: its revision row, other function bodies, neither the
            // columns of the started events (revision 4) nor migration 0004's function, nor the
            // mark of jobs scheduled for later (revision 5), and the claim indexes of revisions 1-4.
            await using var ds = NpgsqlDataSource.Create(cs);
            await using (var downgrade = ds.CreateCommand($"""
                DROP TRIGGER procrastinate_lean_jobs_later ON procrastinate_jobs;
                DROP FUNCTION procrastinate_lean_job_later();
                DROP FUNCTION procrastinate_lean_promote_due_jobs(integer);
                DROP FUNCTION procrastinate_lean_mark_later_jobs();
                ALTER TABLE procrastinate_jobs DROP COLUMN dotnet_later;
                CREATE INDEX procrastinate_jobs_priority_idx_v1 ON procrastinate_jobs (priority DESC, id ASC) WHERE status = 'todo';
                CREATE INDEX procrastinate_jobs_queue_idx_lean ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo';
                UPDATE {SchemaManager.LedgerTable} SET name = '{earlier}' WHERE name = '{SchemaManager.LeanTriggersMarker}';
                DELETE FROM {SchemaManager.LedgerTable} WHERE name IN ('0004_dotnet_pending_events', '0005_dotnet_queue_claim_index', '0006_dotnet_scheduled_index');
                DROP FUNCTION procrastinate_dotnet_pending_events(bigint[]);
                DROP TRIGGER procrastinate_lean_jobs_started ON procrastinate_jobs;
                DROP TRIGGER procrastinate_lean_jobs_deferred_now ON procrastinate_jobs;
                DROP TRIGGER procrastinate_lean_jobs_deferred_written ON procrastinate_jobs;
                DROP FUNCTION procrastinate_lean_job_started();
                DROP FUNCTION procrastinate_lean_job_deferred_clear();
                ALTER TABLE procrastinate_jobs DROP COLUMN dotnet_started_event_id, DROP COLUMN dotnet_started_at,
                    DROP COLUMN dotnet_deferred_event_id, DROP COLUMN dotnet_deferred_at;
                CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$;
                CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$;
                CREATE OR REPLACE FUNCTION procrastinate_lean_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$;
                """))
                await downgrade.ExecuteNonQueryAsync();
            var before = await app.Schema.CheckAsync();
            Assert.Empty(before.UnknownMigrations); // the earlier revision's marker is known
            Assert.Equal(["0004_dotnet_pending_events", "0005_dotnet_queue_claim_index", "0006_dotnet_scheduled_index"], before.PendingMigrations);

            var upgraded = await app.Schema.ApplyAsync();
            Assert.Equal(["0004_dotnet_pending_events", "0005_dotnet_queue_claim_index", "0006_dotnet_scheduled_index", SchemaManager.LeanTriggersMarker], upgraded.AppliedMigrations);
            Assert.Equal(5L, await Scalar<long>(cs,
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'procrastinate_jobs'::regclass AND attname LIKE 'dotnet_%' AND NOT attisdropped"));
            // The job scheduled for later is marked, without an event; the claim's indexes are the
            // new ones (migrations 0005 and 0006 add none to the lean layout, which has its own).
            Assert.True(await Scalar<bool>(cs, $"SELECT dotnet_later FROM procrastinate_jobs WHERE id = {later}"));
            Assert.Equal(laterEvents, await Scalar<long>(cs, $"SELECT count(*) FROM procrastinate_events WHERE job_id = {later}"));
            Assert.Equal("procrastinate_jobs_claim_idx_lean,procrastinate_jobs_later_idx_lean,procrastinate_jobs_queue_claim_idx_lean", await Scalar<string>(cs,
                "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'procrastinate_jobs' AND indexname IN ('procrastinate_jobs_claim_idx_lean', 'procrastinate_jobs_queue_claim_idx_lean', 'procrastinate_jobs_later_idx_lean', 'procrastinate_jobs_priority_idx_v1', 'procrastinate_jobs_queue_idx_lean', 'procrastinate_dotnet_jobs_queue_claim_idx', 'procrastinate_dotnet_jobs_scheduled_idx')"));
            Assert.Contains("dotnet_started_event_id", await Scalar<string>(cs,
                "SELECT pg_get_functiondef('procrastinate_dotnet_pending_events'::regproc)"), StringComparison.Ordinal);
            Assert.Equal(SchemaLayout.Lean, upgraded.Layout);
            Assert.False(upgraded.LayoutChanged);
            Assert.Contains("procrastinate_lean_status_event", await Scalar<string>(cs,
                "SELECT pg_get_functiondef('procrastinate_lean_jobs_updated'::regproc)"), StringComparison.Ordinal);
            Assert.Contains("ARRAY(SELECT id FROM old_rows)", await Scalar<string>(cs,
                "SELECT pg_get_functiondef('procrastinate_lean_jobs_deleted'::regproc)"), StringComparison.Ordinal);
            Assert.Contains("procrastinate.dotnet_notify", await Scalar<string>(cs,
                "SELECT pg_get_functiondef('procrastinate_lean_jobs_inserted'::regproc)"), StringComparison.Ordinal);
            Assert.Equal(SchemaManager.LeanTriggersMarker, await Scalar<string>(cs,
                $"SELECT string_agg(name, ',') FROM {SchemaManager.LedgerTable} WHERE name LIKE 'dotnet_layout_lean_triggers%'"));
            Assert.False((await app.Schema.ApplyAsync()).Changed);

            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var id = await task.DeferAsync(new Defer.SumArgs(1, 2));
            await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
            Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded],
                (await app.Jobs.ListEventsAsync(id)).Select(e => e.Type!.Value));

            // Back to the compatible layout: both lean rows leave the ledger.
            await app.Schema.ApplyAsync(SchemaLayout.Compatible);
            Assert.Equal(0L, await Scalar<long>(cs,
                $"SELECT count(*) FROM {SchemaManager.LedgerTable} WHERE name LIKE 'dotnet_layout_lean%'"));
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }
}
