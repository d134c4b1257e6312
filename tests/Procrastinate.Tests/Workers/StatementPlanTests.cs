using Npgsql;
using Procrastinate.Internal.Sql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// The statements a worker sends with a list of its job ids look those ids up by primary key,
/// whatever the statistics say. With statistics taken while few jobs ran, PostgreSQL used to
/// scan the partial index of running jobs once per input row (2.8 s for 200 completions among
/// 50,000 running jobs); the plan is checked here rather than a duration.
/// </summary>
public sealed class StatementPlanTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    // Statement, its parameter types, the arguments ({0}: the job ids, {1}: the worker id).
    public static TheoryData<string, string, string> Statements => new()
    {
        { "finish_jobs", "bigint[], text[], integer[], boolean[], bigint", "({0}, array_fill('succeeded'::text, ARRAY[200]), array_fill(0, ARRAY[200]), array_fill(false, ARRAY[200]), {1})" },
        { "release_jobs", "bigint[], integer[], bigint", "({0}, array_fill(0, ARRAY[200]), {1})" },
        { "list_abort_requested", "bigint[]", "({0})" },
        { "reclaim_running_jobs", "bigint[], bigint", "({0}, {1})" },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public async Task Statements_on_a_workers_job_ids_use_the_primary_key_with_stale_statistics(string name, string types, string arguments)
    {
        await db.ExecAsync("INSERT INTO procrastinate_workers DEFAULT VALUES");
        var worker = await db.ScalarAsync<long>("SELECT max(id) FROM procrastinate_workers");
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args) SELECT 'default', 'plan', '{}' FROM generate_series(1, 20000)");
        await db.ExecAsync("ANALYZE procrastinate_jobs"); // statistics: no job runs
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1", worker);
        var ids = (await db.QueryAsync("SELECT id FROM procrastinate_jobs ORDER BY id LIMIT 200")).Select(r => (long)r["id"]!).ToArray();

        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using (var prepare = new NpgsqlCommand($"SET plan_cache_mode = force_generic_plan; PREPARE s({types}) AS {SqlQueries.Get(name)}", connection))
            await prepare.ExecuteNonQueryAsync();
        var idList = $"'{{{string.Join(',', ids)}}}'::bigint[]";
        await using var explain = new NpgsqlCommand($"EXPLAIN (COSTS OFF) EXECUTE s{string.Format(System.Globalization.CultureInfo.InvariantCulture, arguments, idList, worker)}", connection);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                plan.Add(reader.GetString(0));
        var text = string.Join('\n', plan);

        Assert.Contains("procrastinate_jobs_pkey", text, StringComparison.Ordinal);
        Assert.DoesNotContain("procrastinate_jobs_lock_idx_v1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("idx_procrastinate_jobs_worker_not_null", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan on procrastinate_jobs", text, StringComparison.Ordinal);
    }
}
