using Npgsql;
using Procrastinate.Internal.Sql;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// The claim (fetch_jobs) is planned once and for all: its generic plan walks the priority index
/// and looks the claimed rows up by primary key, the connector makes PostgreSQL use that plan
/// for claims on all queues (and the generic plans of the claims on one queue and on several,
/// which walk the index by queue; only a claim "= ANY" is planned each time, with its queues),
/// and the candidate scan, whose limit is a constant, still locks only the rows the claim returns. With "LIMIT $3", PostgreSQL planned every claim anew
/// (about 0.24 ms each), because the generic plan, costed for an unknown limit, hashed the
/// whole job table.
/// </summary>
public abstract class ClaimPlanTests(DatabaseFixture db) : IAsyncLifetime
{
    // These tests read the plans PostgreSQL cached for the connector's statements; an ANALYZE by
    // autovacuum after a test's large insert would throw them away mid-test (this class's
    // database only).
    public async Task InitializeAsync()
    {
        await db.ResetAsync();
        await db.ExecAsync("ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = off)");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    protected async Task<long> RegisterWorkerAsync()
    {
        await db.ExecAsync("INSERT INTO procrastinate_workers DEFAULT VALUES");
        return await db.ScalarAsync<long>("SELECT max(id) FROM procrastinate_workers");
    }

    protected Task InsertTodoAsync(int count) =>
        db.ExecAsync($"INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT 'default', 'plan', '{{}}' FROM generate_series(1, {count})");

    /// <summary>A connector on one physical connection, so the statements its claims prepared are visible on it.</summary>
    protected NpgsqlConnector SingleConnectionConnector() => new(db.ConnectionString + ";Maximum Pool Size=1");

    protected const string ClaimStatement = "statement LIKE '%FOR UPDATE OF jobs SKIP LOCKED%'";

    /// <summary>Whether the fixture's database has the lean layout.</summary>
    protected virtual bool Lean => false;

    /// <summary>The worker's claim on all queues as the connector sends it on this layout.</summary>
    private string AllQueuesClaim => ClaimStatements.For(Lean, null);

    /// <summary>The index the claim on all queues walks: Procrastinate's priority index, or on the lean layout the one without the jobs scheduled for later.</summary>
    private string PriorityIndex => Lean ? "procrastinate_jobs_claim_idx_lean" : "procrastinate_jobs_priority_idx_v1";

    /// <summary>The index of each queue's waiting jobs in the claim's order: the lean layout's, or the compatible layout's .NET addition (migration 0005).</summary>
    private string QueueIndex => Lean ? "procrastinate_jobs_queue_claim_idx_lean" : "procrastinate_dotnet_jobs_queue_claim_idx";

    /// <summary>How often PostgreSQL used a generic and a custom plan for the claim this connector prepared.</summary>
    protected static async Task<(long Generic, long Custom)> ClaimPlanCountsAsync(NpgsqlConnector connector)
    {
        await using var connection = await connector.DataSource.OpenConnectionAsync();
        await using var cmd = new NpgsqlCommand($"SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE {ClaimStatement}", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), "the claim was not prepared");
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>The name of the claim statement the connector prepared on <paramref name="connection"/>.</summary>
    protected static async Task<string> PreparedClaimAsync(NpgsqlConnection connection)
    {
        await using var find = new NpgsqlCommand(
            $"SELECT name FROM pg_prepared_statements WHERE {ClaimStatement} AND statement NOT LIKE '%pg_prepared_statements%'", connection);
        return (string)(await find.ExecuteScalarAsync() ?? throw new InvalidOperationException("the claim was not prepared"));
    }

    /// <summary>No node of an EXPLAIN ANALYZE returned or filtered out 1,000 rows or more.</summary>
    protected static void AssertNoNodeReadAThousandRows(string plan)
    {
        var rows = System.Text.RegularExpressions.Regex.Matches(plan, @"(?:actual rows|Rows Removed by Filter)[=:] ?(\d+)")
            .Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(rows.All(n => n < 1000), plan);
    }

    /// <summary>Runs the statements, the last one an EXPLAIN, and returns the plan's text.</summary>
    protected static async Task<string> ExplainAsync(NpgsqlConnection connection, params string[] statements)
    {
        for (var i = 0; i < statements.Length - 1; i++)
        {
            await using var setup = new NpgsqlCommand(statements[i], connection);
            await setup.ExecuteNonQueryAsync();
        }
        var lines = new List<string>();
        await using var explain = new NpgsqlCommand(statements[^1], connection);
        await using var reader = await explain.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            lines.Add(reader.GetString(0));
        return string.Join('\n', lines);
    }

    [Fact]
    public async Task The_generic_plan_walks_the_priority_index_and_looks_claimed_rows_up_by_primary_key()
    {
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(20_000);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id % 2 = 0");
        await db.ExecAsync("ANALYZE procrastinate_jobs");

        await using var connection = await db.DataSource.OpenConnectionAsync();
        var plan = await ExplainAsync(connection,
            $"SET plan_cache_mode = force_generic_plan; PREPARE claim(character varying[], bigint, integer) AS {AllQueuesClaim}",
            $"EXPLAIN (COSTS OFF) EXECUTE claim(NULL, {worker}, 10)");

        Assert.True(plan.Contains(PriorityIndex, StringComparison.Ordinal), plan);
        Assert.True(plan.Contains("procrastinate_jobs_pkey", StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Seq Scan on procrastinate_jobs", StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Hash Join", StringComparison.Ordinal), plan);
    }

    [Fact]
    public async Task Claims_on_all_queues_use_the_generic_plan_from_the_first()
    {
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(200);
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 12; i++)
            Assert.Equal(5, (await connector.FetchJobsAsync(null, worker, 5, CancellationToken.None)).Count);

        var (generic, custom) = await ClaimPlanCountsAsync(connector);
        Assert.True(generic >= 5, $"generic plans: {generic}");
        Assert.Equal(0, custom);
    }

    [Theory]
    [InlineData("default")]
    [InlineData("default,emails")]
    public async Task Claims_on_one_queue_or_several_use_the_generic_plan_from_the_first(string queues)
    {
        // Each has one best plan since both layouts have an index by queue, priority and id: the
        // walk of that index, or a merge of one walk per queue (ClaimStatements).
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(200);
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 12; i++)
            Assert.Equal(5, (await connector.FetchJobsAsync(queues.Split(','), worker, 5, CancellationToken.None)).Count);

        var (generic, custom) = await ClaimPlanCountsAsync(connector);
        Assert.True(generic >= 5, $"generic plans: {generic}");
        Assert.Equal(0, custom);
    }

    [Fact]
    public async Task Claims_on_a_queue_list_the_claim_does_not_merge_are_planned_each_time_with_their_queues()
    {
        // A list with a repeat (or of more queues than ClaimStatements.MaxMergedQueues) is claimed
        // with "queue_name = ANY (...)", whose best plan depends on the queues.
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(200);
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 12; i++)
            Assert.Equal(5, (await connector.FetchJobsAsync(["default", "emails", "default"], worker, 5, CancellationToken.None)).Count);

        var (generic, custom) = await ClaimPlanCountsAsync(connector);
        Assert.Equal(0, generic);
        Assert.True(custom >= 5, $"custom plans: {custom}");
    }

    [Fact]
    public async Task A_claim_planned_on_an_empty_table_still_walks_the_priority_index_once_the_table_has_grown()
    {
        var worker = await RegisterWorkerAsync();
        await using var connector = SingleConnectionConnector();
        // A worker that starts before the first defer: the claim is prepared, and planned, on an empty table.
        for (var i = 0; i < 8; i++)
            Assert.Empty(await connector.FetchJobsAsync(null, worker, 5, CancellationToken.None));
        await InsertTodoAsync(50_000); // no ANALYZE: the plan is not made again

        await using var connection = await connector.DataSource.OpenConnectionAsync();
        string name;
        await using (var find = new NpgsqlCommand($"SELECT name FROM pg_prepared_statements WHERE {ClaimStatement}", connection))
            name = (string)(await find.ExecuteScalarAsync() ?? throw new InvalidOperationException("the claim was not prepared"));
        // The plan the claims use: the generic one PostgreSQL keeps for the prepared statement.
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan",
            $"EXPLAIN (COSTS OFF) EXECUTE \"{name}\"(NULL, {worker}, 5)");
        await using (var reset = new NpgsqlCommand("RESET plan_cache_mode", connection))
            await reset.ExecuteNonQueryAsync();

        Assert.True(plan.Contains(PriorityIndex, StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Seq Scan on procrastinate_jobs", StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Sort", StringComparison.Ordinal), plan);
    }

    [Fact]
    public async Task A_completion_planned_on_a_small_table_still_looks_jobs_up_by_primary_key_once_the_table_has_grown()
    {
        // The completion (finish_jobs) is prepared while the table holds a few jobs. Left to
        // choose between custom and generic plans by cost, PostgreSQL kept in W5 a generic plan
        // that scanned the whole table, and went on using it as a backlog grew (15 ms per
        // completion). The connector now asks for one generic plan, made with the primary key as
        // the only way in: it exists after a few completions, and still uses the key.
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(40);
        await db.ExecAsync("ANALYZE procrastinate_jobs"); // statistics: a small table
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 8; i++)
        {
            var jobs = await connector.FetchJobsAsync(null, worker, 4, CancellationToken.None);
            Assert.Equal(4, jobs.Count);
            var outcomes = jobs.Select((j, n) => new Procrastinate.Internal.JobOutcome(j, JobStatus.Succeeded, DeleteJob: n % 2 == 0, null, null, TimeSpan.Zero)).ToList();
            Assert.Equal(4, (await connector.FinishJobsAsync(outcomes, worker, CancellationToken.None)).Count);
        }
        await InsertTodoAsync(50_000); // no ANALYZE: the plan is not made again

        await using var connection = await connector.DataSource.OpenConnectionAsync();
        string name;
        await using (var find = new NpgsqlCommand("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%DELETE FROM procrastinate_jobs AS j%USING input%' AND generic_plans > 0", connection))
            name = (string)(await find.ExecuteScalarAsync() ?? throw new InvalidOperationException("the completion was not prepared, or has no generic plan"));
        // The plan the completions use: the generic one PostgreSQL keeps for the prepared statement.
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan",
            $"EXPLAIN (COSTS OFF) EXECUTE \"{name}\"('{{1,2}}'::bigint[], '{{succeeded,succeeded}}'::text[], '{{0,0}}'::integer[], '{{true,false}}'::boolean[], {worker})");
        await using (var reset = new NpgsqlCommand("RESET plan_cache_mode", connection))
            await reset.ExecuteNonQueryAsync();

        Assert.True(plan.Contains("procrastinate_jobs_pkey", StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Seq Scan on procrastinate_jobs", StringComparison.Ordinal), plan);
    }

    [Fact]
    public async Task Jobs_waiting_behind_a_running_job_of_their_lock_are_passed_over_without_a_probe_each()
    {
        // 2,000 jobs wait behind the running job of their lock, before 50 free ones. The claim
        // looks at the running locks once (a hashed set), not with a probe of the lock index per
        // waiting job: with a probe each it took 200-300 ms per 20,000 such jobs (BENCHMARKS.md).
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync($"INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id) VALUES ('default', 'plan', 'L', '{{}}', 'doing', {worker})");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) SELECT 'default', 'plan', 'L', '{}' FROM generate_series(1, 2000)");
        await InsertTodoAsync(50);
        await db.ExecAsync("ANALYZE procrastinate_jobs");

        await using var connection = await db.DataSource.OpenConnectionAsync();
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_sort = off",
            $"PREPARE claim(character varying[], bigint, integer) AS {AllQueuesClaim}",
            "BEGIN",
            $"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE claim(NULL, {worker}, 10)");
        await using (var rollback = new NpgsqlCommand("ROLLBACK", connection))
            await rollback.ExecuteNonQueryAsync();

        Assert.True(plan.Contains("hashed SubPlan", StringComparison.Ordinal), plan);
        // The claim took the free jobs ...
        Assert.Matches(@"Update on procrastinate_jobs j \(actual rows=10 loops=1\)", plan);
        // ... and no part of it ran once per waiting job.
        var loops = System.Text.RegularExpressions.Regex.Matches(plan, @"loops=(\d+)").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(loops.All(n => n < 2000), plan);
    }

    [Fact]
    public async Task A_claim_takes_the_first_job_of_each_lock_and_none_of_a_running_lock()
    {
        // The lock rule (COMPAT.md), as the connector's claim applies it: of each lock, only its
        // first waiting job (by priority, then id), and nothing of a lock that has a running job.
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync($"INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id) VALUES ('default', 'plan', 'busy', '{{}}', 'doing', {worker})");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) SELECT 'default', 'plan', 'busy', '{}' FROM generate_series(1, 3)");
        var a1 = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES ('default', 'plan', 'A', '{}') RETURNING id");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) SELECT 'default', 'plan', 'A', '{}' FROM generate_series(1, 3)");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES ('default', 'plan', 'B', '{}')");
        var b2 = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, priority) VALUES ('default', 'plan', 'B', '{}', 5) RETURNING id");
        var free = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'plan', '{}') RETURNING id");

        await using var connector = SingleConnectionConnector();
        var claimed = await connector.FetchJobsAsync(null, worker, 100, CancellationToken.None);
        Assert.Equal(new[] { a1, b2, free }.Order(), claimed.Select(j => j.Id).Order());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("emails,sms")]
    public async Task A_claim_locks_only_the_jobs_it_returns(string? queueList)
    {
        // On all queues, and on several (the merge of one walk per queue, ClaimStatements).
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT (ARRAY['emails', 'sms'])[1 + i % 2], 'plan', '{}' FROM generate_series(1, 100) AS i");
        var queues = queueList?.Split(',');

        await using var claimer = await db.DataSource.OpenConnectionAsync();
        await using var tx = await claimer.BeginTransactionAsync();
        // The settings the connector sends with these claims (queries.sql, plan_claim_once).
        await using (var settings = new NpgsqlCommand("SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off", claimer, tx))
            await settings.ExecuteNonQueryAsync();
        await using (var claim = new NpgsqlCommand(ClaimStatements.For(Lean, queues), claimer, tx))
        {
            claim.Parameters.Add(new NpgsqlParameter { Value = (object?)queues ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Varchar });
            claim.Parameters.Add(new NpgsqlParameter<long> { TypedValue = worker });
            claim.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 5 });
            var claimed = 0;
            await using (var reader = await claim.ExecuteReaderAsync())
                while (await reader.ReadAsync())
                    claimed++;
            Assert.Equal(5, claimed);
        }

        // While the claim's transaction is open, every other todo job can still be locked.
        var lockable = await db.ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT id FROM procrastinate_jobs WHERE status = 'todo' FOR UPDATE SKIP LOCKED) AS s");
        Assert.Equal(95L, lockable);
        await tx.RollbackAsync();
    }

    [Fact]
    public async Task A_worker_whose_capacity_exceeds_the_largest_claim_keeps_claiming_without_waiting_for_the_poll()
    {
        await using var app = db.CreateApp();
        // Bodies slow enough for the completer to keep up: a backlog of unwritten outcomes would
        // wake the fetcher on its own.
        var task = app.Task<SumArgs>("big_capacity", async (SumArgs _) => await Task.Delay(5));
        await task.DeferManyAsync(Enumerable.Range(0, Connector.MaxClaim + 500).Select(i => new SumArgs(i, 0)));
        using var cts = new CancellationTokenSource();
        // Capacity 1,200 > 1,000 per claim. A full claim of 1,000 must count as full, or the
        // fetcher would sleep until the (one-minute) poll with 500 jobs waiting.
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            Concurrency = 100,
            PrefetchJobs = 1_100,
            HandleSignals = false,
            ListenNotify = false,
            FetchJobPollingInterval = TimeSpan.FromMinutes(1),
        }, cts.Token);
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'") < Connector.MaxClaim + 500)
            {
                Assert.True(DateTime.UtcNow < until, "the worker stopped claiming");
                await Task.Delay(50);
            }
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    [Fact]
    public async Task A_claim_on_one_queue_reads_that_queues_jobs_through_the_queue_index()
    {
        // 20,000 jobs of another queue come first in the priority order, then 10,000 of the
        // worker's. With "queue_name = ANY (...)" PostgreSQL walked the priority index past the
        // other queue's 20,000 (its statistics do not tell that they come first); the claim of a
        // worker on one queue names it with an equality, which the queue index serves in order
        // (the lean layout's; on the compatible layout the .NET addition of migration 0005).
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT 'emails', 'plan', '{}' FROM generate_series(1, 20000)");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT 'default', 'plan', '{}' FROM generate_series(1, 10000)");
        await db.ExecAsync("ANALYZE procrastinate_jobs");

        // Claims enough for Npgsql to prepare the statement, so that it can be read back.
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 6; i++)
        {
            var jobs = await connector.FetchJobsAsync(["default"], worker, 10, CancellationToken.None);
            Assert.Equal(10, jobs.Count);
            Assert.All(jobs, j => Assert.Equal("default", j.Queue));
        }

        // The statement the connector sent, as PostgreSQL runs it (one generic plan).
        await using var connection = await connector.DataSource.OpenConnectionAsync();
        var claim = await PreparedClaimAsync(connection);
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_sort = off",
            "BEGIN",
            $"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE {claim}('{{default}}', {worker}, 10)");
        await using (var rollback = new NpgsqlCommand("ROLLBACK", connection))
            await rollback.ExecuteNonQueryAsync();

        Assert.True(plan.Contains(QueueIndex, StringComparison.Ordinal), plan);
        Assert.DoesNotContain("Rows Removed by Filter: 20000", plan, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_claim_on_several_queues_merges_one_walk_per_queue_and_reads_no_other_queue(int queueCount)
    {
        // 20,000 jobs of another queue come first in the priority order, then the worker's queues'
        // jobs, of several priorities. With "queue_name = ANY (...)" the claim walked the priority
        // index past the other queue's 20,000 (58-63 ms per claim of 100 with 200,000); the claim
        // on several queues merges one walk of the queue index per queue, in the claim's order.
        var worker = await RegisterWorkerAsync();
        string[] queues = [.. new[] { "emails", "sms", "push" }.Take(queueCount)];
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority) SELECT 'bulk', 'plan', '{}', 9 FROM generate_series(1, 20000)");
        await db.ExecAsync("""
            INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority)
            SELECT (ARRAY['emails', 'sms', 'push'])[1 + i % 3], 'plan', '{}', i % 4 FROM generate_series(1, 600) AS i
            """);
        await db.ExecAsync("ANALYZE procrastinate_jobs");
        var expected = new List<long>();
        await using (var conn = await db.DataSource.OpenConnectionAsync())
        await using (var cmd = new NpgsqlCommand(
            "SELECT id FROM procrastinate_jobs WHERE status = 'todo' AND queue_name = ANY($1) ORDER BY priority DESC, id LIMIT 60", conn))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = queues });
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                expected.Add(reader.GetInt64(0));
        }

        // Six claims of 10 take the first 60 jobs of the worker's queues, in the claim's order.
        await using var connector = SingleConnectionConnector();
        var claimed = new List<long>();
        for (var i = 0; i < 6; i++)
        {
            var jobs = await connector.FetchJobsAsync(queues, worker, 10, CancellationToken.None);
            Assert.Equal(10, jobs.Count);
            Assert.All(jobs, j => Assert.Contains(j.Queue, queues));
            claimed.AddRange(jobs.Select(j => j.Id));
        }
        Assert.Equal(expected, claimed);

        // One generic plan from the first claim, as for the claim on all queues.
        var (generic, custom) = await ClaimPlanCountsAsync(connector);
        Assert.True(generic >= 1, $"generic plans: {generic}");
        Assert.Equal(0, custom);

        // The statement the connector sent, as PostgreSQL runs it.
        await using var connection = await connector.DataSource.OpenConnectionAsync();
        var claim = await PreparedClaimAsync(connection);
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_sort = off",
            "BEGIN",
            $"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE {claim}('{{{string.Join(',', queues)}}}', {worker}, 10)");
        await using (var rollback = new NpgsqlCommand("ROLLBACK", connection))
            await rollback.ExecuteNonQueryAsync();

        Assert.True(plan.Contains("Merge Append", StringComparison.Ordinal), plan);
        Assert.Equal(queueCount, System.Text.RegularExpressions.Regex.Matches(plan, QueueIndex).Count);
        Assert.DoesNotMatch(@"(?m)^\s*(->\s+)?(Incremental )?Sort(?! Key)", plan);
        Assert.Matches(@"Update on procrastinate_jobs j \(actual rows=10 loops=1\)", plan);
        // No node read the other queue's jobs.
        AssertNoNodeReadAThousandRows(plan);
    }

    [Fact]
    public async Task A_claim_on_several_queues_keeps_the_lock_rule_across_them_and_passes_over_rows_others_locked()
    {
        // The merged claim tests each candidate as the claim on all queues does: the lock rule
        // holds across queues, and a row another transaction holds is passed over (SKIP LOCKED)
        // while the claim goes on to the next ones.
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync($"INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id) VALUES ('sms', 'plan', 'busy', '{{}}', 'doing', {worker})");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, priority) VALUES ('emails', 'plan', 'busy', '{}', 5)");
        var a1 = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES ('emails', 'plan', 'A', '{}') RETURNING id");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES ('sms', 'plan', 'A', '{}')");
        var b2 = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, priority) VALUES ('sms', 'plan', 'B', '{}', 3) RETURNING id");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES ('emails', 'plan', 'B', '{}')");
        var held = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority) VALUES ('emails', 'plan', '{}', 9) RETURNING id");
        var free = new List<long>();
        for (var i = 0; i < 4; i++)
            free.Add(await db.ScalarAsync<long>($"INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('{(i % 2 == 0 ? "sms" : "emails")}', 'plan', '{{}}') RETURNING id"));
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority) VALUES ('bulk', 'plan', '{}', 9)");

        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand($"SELECT id FROM procrastinate_jobs WHERE id = {held} FOR UPDATE", holder, tx))
            await hold.ExecuteScalarAsync();

        await using var connector = SingleConnectionConnector();
        var claimed = await connector.FetchJobsAsync(["emails", "sms"], worker, 100, CancellationToken.None);
        Assert.Equal(new[] { a1, b2 }.Concat(free).Order(), claimed.Select(j => j.Id).Order());
        await tx.RollbackAsync();

        var next = await connector.FetchJobsAsync(["sms", "emails"], worker, 100, CancellationToken.None);
        Assert.Equal([held], next.Select(j => j.Id));
    }

    [Fact]
    public async Task Concurrent_claims_on_several_queues_take_every_job_exactly_once()
    {
        // Four workers claim at once through the merge: a candidate another claim locked is
        // passed over, and one it claimed meanwhile fails the claim's test on the row's latest
        // version, so no job is taken twice and none is left.
        var workers = new long[4];
        for (var i = 0; i < workers.Length; i++)
            workers[i] = await RegisterWorkerAsync();
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority) SELECT (ARRAY['emails', 'sms', 'bulk'])[1 + i % 3], 'plan', '{}', i % 3 FROM generate_series(1, 3000) AS i");

        var claimed = await Task.WhenAll(workers.Select(async worker =>
        {
            await using var connector = new NpgsqlConnector(db.ConnectionString);
            var mine = new List<Job>();
            while (true)
            {
                var jobs = await connector.FetchJobsAsync(["sms", "emails"], worker, 25, CancellationToken.None);
                if (jobs.Count == 0)
                    return mine;
                mine.AddRange(jobs);
            }
        }));

        var all = claimed.SelectMany(j => j).ToList();
        Assert.Equal(2000, all.Count);
        Assert.Equal(2000, all.Select(j => j.Id).Distinct().Count());
        Assert.All(all, j => Assert.NotEqual("bulk", j.Queue));
        Assert.Equal(1000L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"));
    }

    [Fact]
    public async Task An_idle_worker_learns_when_the_next_job_comes_due_from_an_index_of_scheduled_jobs()
    {
        // The lean layout's index of the marked jobs, which holds every job whose time is ahead,
        // tells the idle worker's timer; on the compatible layout, the index of scheduled jobs
        // (migration 0006). Without it PostgreSQL read every waiting job for the answer.
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) SELECT 'default', 'plan', '{}', now() + interval '1 hour' + i * interval '1 second' FROM generate_series(1, 2000) AS i");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) VALUES ('other', 'plan', '{}', now() + interval '10 minutes')");
        await InsertTodoAsync(2000);
        await db.ExecAsync("ANALYZE procrastinate_jobs");

        await using var connector = SingleConnectionConnector();
        var all = await connector.NextScheduledDelayAsync(null, CancellationToken.None);
        Assert.InRange(all!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        var mine = await connector.NextScheduledDelayAsync(["default"], CancellationToken.None);
        Assert.InRange(mine!.Value, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(60) + TimeSpan.FromSeconds(1));
        Assert.Null(await connector.NextScheduledDelayAsync(["nothing"], CancellationToken.None));

        await using var connection = await connector.DataSource.OpenConnectionAsync();
        var plan = await ExplainAsync(connection,
            $"PREPARE next(character varying[]) AS {(Lean ? LeanColumns.NextScheduled : SqlQueries.Get("next_scheduled_at"))}",
            "EXPLAIN (COSTS OFF) EXECUTE next(NULL)");
        Assert.True(plan.Contains(Lean ? "procrastinate_jobs_later_idx_lean" : "procrastinate_dotnet_jobs_scheduled_idx", StringComparison.Ordinal), plan);
        Assert.False(plan.Contains("Seq Scan", StringComparison.Ordinal), plan);
    }

    [Fact]
    public async Task A_queue_named_twice_is_claimed_once()
    {
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(10);
        await using var connector = SingleConnectionConnector();
        var claimed = await connector.FetchJobsAsync(["default", "default"], worker, 100, CancellationToken.None);
        Assert.Equal(10, claimed.Select(j => j.Id).Distinct().Count());
        Assert.Equal(10, claimed.Count);
    }
}

public sealed class ClaimPlanCompatibleTests(DatabaseFixture db) : ClaimPlanTests(db), IClassFixture<DatabaseFixture>;

public sealed class ClaimPlanLeanTests(LeanDatabaseFixture db) : ClaimPlanTests(db), IClassFixture<LeanDatabaseFixture>
{
    protected override bool Lean => true;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_claim_does_not_walk_the_jobs_scheduled_for_later(bool oneQueue)
    {
        // 20,000 jobs scheduled for the next day come first in the claim's order, then 50 free
        // ones. In the claim's walk each cost a row read (about 0.2 µs): the lean layout marks
        // them (dotnet_later), and the claim's indexes leave them out.
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) SELECT 'default', 'plan', '{}', now() + interval '1 day' FROM generate_series(1, 20000)");
        await InsertTodoAsync(50);
        await db.ExecAsync("ANALYZE procrastinate_jobs");
        Assert.Equal(20_000L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE dotnet_later"));

        string[]? queues = oneQueue ? ["default"] : null;
        await using var connector = SingleConnectionConnector();
        for (var i = 0; i < 6; i++)
        {
            var jobs = await connector.FetchJobsAsync(queues, worker, 5, CancellationToken.None);
            Assert.Equal(5, jobs.Count);
            Assert.All(jobs, j => Assert.Null(j.ScheduledAt));
        }

        // The statement the connector sent, as PostgreSQL runs it.
        await using var connection = await connector.DataSource.OpenConnectionAsync();
        var claim = await PreparedClaimAsync(connection);
        var plan = await ExplainAsync(connection,
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_sort = off",
            "BEGIN",
            $"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE {claim}({(oneQueue ? "'{default}'" : "NULL")}, {worker}, 10)");
        await using (var rollback = new NpgsqlCommand("ROLLBACK", connection))
            await rollback.ExecuteNonQueryAsync();

        Assert.True(plan.Contains(oneQueue ? "procrastinate_jobs_queue_claim_idx_lean" : "procrastinate_jobs_claim_idx_lean", StringComparison.Ordinal), plan);
        Assert.Matches(@"Update on procrastinate_jobs j \(actual rows=10 loops=1\)", plan);
        // No node read the jobs scheduled for later.
        AssertNoNodeReadAThousandRows(plan);
    }

    [Fact]
    public async Task A_job_whose_time_has_come_is_claimed_at_its_place_in_the_order_and_writes_no_extra_event()
    {
        // A job of priority 10 scheduled one second ahead is marked as later; once its time has
        // come, the next claim clears the mark first (in its own transaction) and takes it before
        // the free job of priority 0.
        var worker = await RegisterWorkerAsync();
        await InsertTodoAsync(1);
        var id = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, args, priority, scheduled_at) VALUES ('default', 'plan', '{}', 10, now() + interval '1 second') RETURNING id");
        Assert.True(await db.ScalarAsync<bool>($"SELECT dotnet_later FROM procrastinate_jobs WHERE id = {id}"));

        await using var connector = SingleConnectionConnector();
        var early = await connector.FetchJobsAsync(null, worker, 1, CancellationToken.None);
        Assert.NotEqual(id, Assert.Single(early).Id); // not due yet: the free job
        Assert.Empty(await connector.FetchJobsAsync(null, worker, 1, CancellationToken.None));

        await Task.Delay(TimeSpan.FromSeconds(1.2));
        var due = await connector.FetchJobsAsync(null, worker, 5, CancellationToken.None);
        Assert.Equal(id, Assert.Single(due).Id);
        Assert.False(await db.ScalarAsync<bool>($"SELECT dotnet_later FROM procrastinate_jobs WHERE id = {id}"));
        // Its events: 'scheduled' and 'deferred', both written at the defer (as for any scheduled
        // job of the lean layout), and none for the mark; 'started' waits in its row until the run ends.
        Assert.Equal("scheduled,deferred", await db.ScalarAsync<string>($"SELECT string_agg(type::text, ',' ORDER BY id) FROM procrastinate_events WHERE job_id = {id}"));
    }

    [Fact]
    public Task An_idle_worker_wakes_when_a_job_scheduled_for_later_comes_due() =>
        WorkerTests.AnIdleWorkerWakesWhenAScheduledJobBecomesDueAsync(db,
            async () => Assert.True(await db.ScalarAsync<bool>("SELECT dotnet_later FROM procrastinate_jobs")));

    [Fact]
    public async Task When_more_jobs_come_due_than_one_claim_moves_the_next_claims_move_the_rest_earliest_first()
    {
        // 2,500 jobs come due at once: each claim moves at most LeanColumns.PromoteAtOnce of them
        // (1,000) back into the claim's indexes, the earliest first, and every one is claimed.
        var worker = await RegisterWorkerAsync();
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) SELECT 'default', 'plan', '{}', now() + interval '1 second' + i * interval '1 microsecond' FROM generate_series(1, 2500) AS i");
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        Assert.Equal(2_500L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE dotnet_later"));

        await using var connector = SingleConnectionConnector();
        var first = await connector.FetchJobsAsync(null, worker, 10, CancellationToken.None);
        Assert.Equal(10, first.Count);
        Assert.Equal(2_500L - LeanColumns.PromoteAtOnce, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE dotnet_later"));
        // The ones still marked came due last.
        Assert.True(await db.ScalarAsync<bool>(
            "SELECT max(scheduled_at) FILTER (WHERE NOT dotnet_later) < min(scheduled_at) FILTER (WHERE dotnet_later) FROM procrastinate_jobs WHERE status = 'todo'"));

        var claimed = first.Count;
        for (var i = 0; i < 10 && claimed < 2_500; i++)
            claimed += (await connector.FetchJobsAsync(null, worker, 500, CancellationToken.None)).Count;
        Assert.Equal(2_500, claimed);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"));
    }

    [Fact]
    public async Task The_mark_of_jobs_scheduled_for_later_follows_their_scheduled_time_whatever_statement_writes_it()
    {
        async Task<bool> Later(long id) => await db.ScalarAsync<bool>($"SELECT dotnet_later FROM procrastinate_jobs WHERE id = {id}");
        Task<long> Insert(string scheduledAt) =>
            db.ScalarAsync<long>($"INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) VALUES ('default', 'plan', '{{}}', {scheduledAt}) RETURNING id");

        Assert.False(await Later(await Insert("NULL")));
        Assert.False(await Later(await Insert("now() - interval '1 minute'")));
        var id = await Insert("now() + interval '1 hour'");
        Assert.True(await Later(id));

        // Rescheduled to now, then back to later (an admin's reschedule, a retry's delay).
        await db.ExecAsync($"UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = {id}");
        Assert.False(await Later(id));
        await db.ExecAsync($"UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour' WHERE id = {id}");
        Assert.True(await Later(id));
        // A statement that sets the mark against the scheduled time does not keep it.
        await db.ExecAsync($"UPDATE procrastinate_jobs SET dotnet_later = false WHERE id = {id}");
        Assert.True(await Later(id));
        await db.ExecAsync($"UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE id = {id}");
        Assert.False(await Later(id));

        // The worker's retry with a delay: the job waits again, marked, until its new time.
        var worker = await RegisterWorkerAsync();
        await using var connector = SingleConnectionConnector();
        var run = Assert.Single(await connector.FetchJobsAsync(null, worker, 1, CancellationToken.None));
        var retry = new Procrastinate.Internal.ResolvedRetry(DateTimeOffset.UtcNow.AddHours(1), null, null, null);
        Assert.True(await connector.RetryJobAsync(
            new Procrastinate.Internal.JobOutcome(run, JobStatus.Failed, false, retry, null, TimeSpan.Zero), worker, CancellationToken.None));
        Assert.True(await Later(run.Id));
        // An admin's retry of a failed job, for later.
        await db.ExecAsync($"UPDATE procrastinate_jobs SET status = 'failed', scheduled_at = NULL WHERE id = {run.Id}");
        Assert.False(await Later(run.Id));
        await connector.RetryJobManuallyAsync(run.Id, DateTimeOffset.UtcNow.AddHours(1), null, null, null, default, async: true, CancellationToken.None);
        Assert.True(await Later(run.Id));
    }
}
