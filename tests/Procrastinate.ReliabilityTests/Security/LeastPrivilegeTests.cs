using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Npgsql;
using Procrastinate.Reliability.BadInput;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Security;

/// <summary>
/// docs/least-privilege.sql, as documented: <c>procrastinate_owner</c> owns the schema and applies
/// it; <c>procrastinate_app</c>, with rights on rows, sequences and functions only, defers and works
/// jobs through every path (worker registration, heartbeats, claims, outcomes, retries, aborts,
/// stalled rescue, periodic defers, the job manager), and cannot create, alter or drop anything.
/// </summary>
public sealed class LeastPrivilegeTests(ITestOutputHelper output)
{
    public sealed record WorkArgs(int N, int Ms = 0);

    public sealed record TickArgs(long Timestamp);

    private static readonly Regex[] Deliberate =
    [
        new(@"^ERROR:  permission denied for (schema|table|function|database) \S+( at character \d+)?$"),
        new(@"^ERROR:  must be owner of (table|relation|function|schema) \S+$"),
        new(@"^ERROR:  duplicate key value violates unique constraint ""procrastinate_jobs_queueing_lock_idx_v1""$"),
    ];

    [Fact]
    public async Task The_owner_applies_the_schema_and_the_app_role_works_jobs_and_can_change_nothing()
    {
        await using var db = await ScenarioDb.CreateAsync("lp", withSchema: false);
        await db.ExecAsync(await File.ReadAllTextAsync(Path.Combine(ReliabilityCluster.RepositoryRoot, "docs", "least-privilege.sql")));
        string As(string role) => new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role, SearchPath = "procrastinate", ApplicationName = role }.ConnectionString;
        var superuser = new NpgsqlConnectionStringBuilder(db.ConnectionString) { SearchPath = "procrastinate" }.ConnectionString;

        SchemaApplyResult applied;
        await using (var owner = new App(new NpgsqlConnector(As("procrastinate_owner"))))
            applied = await owner.Schema.ApplyAsync();
        Assert.True(applied.InstalledBase);
        Assert.Equal(0L, await db.ScalarAsync<long>("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname LIKE 'procrastinate%' AND (n.nspname <> 'procrastinate' OR pg_get_userbyid(c.relowner) <> 'procrastinate_owner')
            """));

        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(As("procrastinate_app")), new AppOptions { LoggerFactory = factory });
        var ran = new ConcurrentBag<long>();
        var work = app.Task<WorkArgs>("work", async (args, context, ct) => { await Task.Delay(args.Ms, ct); ran.Add(context.Job.Id); });
        var flaky = app.Task<WorkArgs>("flaky", (args, context) =>
        {
            if (context.Job.Attempts == 0)
                throw new InvalidOperationException("first attempt fails");
        }, retry: RetryStrategy.Times(1));
        var failing = app.Task<WorkArgs>("failing", _ => throw new InvalidOperationException("always"));
        var tick = app.Task<TickArgs>("tick", _ => { });
        tick.Periodic("* * * * * *", "lp");

        Assert.True((await app.Schema.CheckAsync()).IsUsable);
        Assert.True((await app.Health.CheckDatabaseAsync()).IsHealthy);

        // Producers: every way to defer.
        var ids = new List<long> { await work.DeferAsync(new WorkArgs(1)) };
        ids.AddRange(await work.DeferManyAsync([new WorkArgs(2), new WorkArgs(3)], new DeferOptions { Lock = "lp-lock" }));
        ids.Add(await work.DeferAsync(new WorkArgs(4), new DeferOptions { QueueingLock = "lp-ql", ScheduleIn = TimeSpan.FromSeconds(1) }));
        Assert.Equal(ids[^1], await work.DeferAsync(new WorkArgs(5), new DeferOptions { QueueingLock = "lp-ql", IgnoreAlreadyEnqueued = true }));
        await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => work.DeferAsync(new WorkArgs(6), new DeferOptions { QueueingLock = "lp-ql" }));
        await using (var connection = new NpgsqlConnection(As("procrastinate_app")))
        {
            await connection.OpenAsync();
            await using var tx = await connection.BeginTransactionAsync();
            ids.Add(await work.DeferAsync(new WorkArgs(7), tx));
            await tx.CommitAsync();
        }
        ids.Add(await app.DeferAsync("work", """{"n": 8}"""));
        var flakyId = await flaky.DeferAsync(new WorkArgs(9));
        var failingId = await failing.DeferAsync(new WorkArgs(10));
        var slowId = await work.DeferAsync(new WorkArgs(11, 60_000));
        var cancelled = await work.DeferAsync(new WorkArgs(12), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
        Assert.True(await app.Jobs.CancelAsync(cancelled));

        // A job of a dead worker, for the rescue (written by the superuser, as if a worker had died).
        await using (var su = NpgsqlDataSource.Create(superuser))
        {
            await using var worker = su.CreateCommand("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id");
            var deadWorker = (long)(await worker.ExecuteScalarAsync())!;
            await using var job = su.CreateCommand("INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'work', '{\"n\": 13}') RETURNING id");
            var stalled = (long)(await job.ExecuteScalarAsync())!;
            await using var claim = su.CreateCommand($"UPDATE procrastinate_jobs SET status = 'doing', worker_id = {deadWorker} WHERE id = {stalled}");
            await claim.ExecuteNonQueryAsync();
            ids.Add(stalled);
            await using var age = su.CreateCommand("UPDATE procrastinate_events SET at = now() - interval '1 hour'");
            await age.ExecuteNonQueryAsync();
        }

        // The worker, as the app role: registration, heartbeats, LISTEN, claims, outcomes, retry,
        // abort, stalled rescue, periodic defers.
        using var stop = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            Concurrency = 4, HandleSignals = false, StalledWorkerTimeout = TimeSpan.FromSeconds(2), UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(300),
            StalledJobsCheckInterval = TimeSpan.FromMilliseconds(300), FetchJobPollingInterval = TimeSpan.FromMilliseconds(500),
            AbortJobPollingInterval = TimeSpan.FromMilliseconds(300),
        }, stop.Token);
        await ScenarioDb.WaitUntilAsync(async () => await app.Jobs.GetStatusAsync(slowId) == JobStatus.Doing, TimeSpan.FromSeconds(30), "the slow job running");
        Assert.True(await app.Jobs.AbortAsync(slowId));
        try
        {
            await ScenarioDb.WaitUntilAsync(async () => ids.All(ran.Contains) && await app.Jobs.GetStatusAsync(flakyId) == JobStatus.Succeeded
                    && await app.Jobs.GetStatusAsync(slowId) == JobStatus.Aborted && await app.Jobs.GetStatusAsync(failingId) == JobStatus.Failed
                    && (await app.Jobs.ListAsync(new JobFilter { Task = "tick", Status = JobStatus.Succeeded })).Count > 0,
                TimeSpan.FromSeconds(30), "every job done, a periodic tick run");
        }
        catch (TimeoutException)
        {
            output.WriteLine(string.Join('\n', (await db.RowsAsync("SELECT id, task_name, status::text, attempts FROM procrastinate.procrastinate_jobs ORDER BY id")).Select(r => string.Join(' ', r))));
            output.WriteLine("ran: " + string.Join(',', ran.Order()) + " expected: " + string.Join(',', ids));
            output.WriteLine(string.Join('\n', logs.Records.Where(r => r.Level >= Microsoft.Extensions.Logging.LogLevel.Warning).Select(r => r.Text)));
            throw;
        }
        var workers = await app.Jobs.ListWorkersAsync();
        Assert.Single(workers);
        Assert.True(workers[0].LastHeartbeat > DateTimeOffset.UtcNow.AddSeconds(-5));

        // The job manager.
        await app.Jobs.RetryAsync(failingId);
        Assert.Contains(await app.Jobs.ListEventsAsync(failingId), e => e.Type == JobEventType.Retried);
        Assert.NotEmpty(await app.Jobs.ListQueuesAsync());
        Assert.NotEmpty(await app.Jobs.ListTasksAsync());
        Assert.NotEmpty(await app.Jobs.ListLocksAsync());
        Assert.NotNull(await app.Jobs.GetDetailsAsync(ids[0]));
        Assert.Empty(await app.Jobs.ListStalledJobsAsync());
        Assert.Empty(await app.Jobs.RescueStalledJobsAsync());
        Assert.True(await app.Jobs.DeleteAsync(ids[0]));
        await app.Jobs.DeleteOldJobsAsync(maxHours: 1, includeFailed: true, includeCancelled: true, includeAborted: true);
        await stop.CancelAsync();
        await run;
        Assert.Empty(await app.Jobs.ListWorkersAsync());
        Assert.Contains(logs.Records, r => r.Id.Id == 3012);   // the stalled job was rescued by the app role
        Assert.DoesNotContain(logs.Records, r => r.Id.Id == 2007 || r.Id.Id == 3009);   // no side loop or completion failed

        // What the app role cannot do.
        var refused = new Dictionary<string, string>();
        await using (var raw = NpgsqlDataSource.Create(As("procrastinate_app")))
        {
            foreach (var sql in new[]
            {
                "CREATE TABLE procrastinate.evil (i int)",
                "CREATE TABLE public.evil (i int)",
                "ALTER TABLE procrastinate_jobs ADD COLUMN evil int",
                "DROP TABLE procrastinate_events",
                "TRUNCATE procrastinate_jobs",
                "CREATE FUNCTION procrastinate.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE OR REPLACE FUNCTION procrastinate_notify_queue_job_inserted_v1() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
                "DROP TRIGGER procrastinate_trigger_status_events_update_v1 ON procrastinate_jobs",
                "ALTER TABLE procrastinate_jobs DISABLE TRIGGER ALL",
                "CREATE INDEX evil ON procrastinate_jobs (args)",
            })
            {
                await using var cmd = raw.CreateCommand(sql);
                var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
                refused[sql] = e.MessageText;
            }
        }
        // On an up-to-date schema, applying needs no DDL: the app role may call it (it used to fail with 42501).
        var applyAsApp = await Record.ExceptionAsync(() => app.Schema.ApplyAsync());
        Assert.Null(applyAsApp);
        // Changes it may not make are refused with a SchemaException naming who applies them.
        var convert = await Assert.ThrowsAsync<SchemaException>(() => app.Schema.ApplyAsync(SchemaLayout.Lean));
        Assert.Contains("owns the Procrastinate objects", convert.Message, StringComparison.Ordinal);
        Assert.Equal(SchemaLayout.Compatible, (await app.Schema.CheckAsync()).Layout);
        BadInputTable.Record("(least privilege) Schema.Apply as procrastinate_app on an up-to-date schema",
            applyAsApp is null ? "no change (nothing to do)" : $"{applyAsApp.GetType().Name}: {applyAsApp.Message.Split('\n')[0]}");

        var unexpected = ServerLog.Unexpected(db.LogMark, db.Name, Deliberate);
        Figures.Record(output, "security-least-privilege", new Dictionary<string, object?>
        {
            ["schema_applied_by_owner"] = applied.ToString(),
            ["jobs_worked_by_app_role"] = ran.Count,
            ["refused_to_app_role"] = refused,
            ["apply_as_app_role"] = applyAsApp is null ? "no change" : applyAsApp.Message.Split('\n')[0],
            ["unexpected_server_log_records"] = unexpected.Count,
        });
        Assert.True(unexpected.Count == 0, string.Join('\n', unexpected));
    }
}
