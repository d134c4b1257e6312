using Npgsql;
using System.Diagnostics;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Defer;

/// <summary>
/// Batches of at least <see cref="NpgsqlConnector.CopyDeferThreshold"/> jobs go through COPY:
/// the same rows, events, ids in input order, all-or-nothing and queueing-lock errors as the
/// INSERT path, on both table layouts.
/// </summary>
public abstract class LargeBatchDeferTests(DatabaseFixture db) : IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly int Size = NpgsqlConnector.CopyDeferThreshold + 500;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_large_batch_stores_every_row_as_the_small_batch_does_and_returns_ids_in_input_order(bool async)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("large", _ => { }, queue: "bulk");
        var at = DateTimeOffset.UtcNow.AddHours(1);
        var options = new DeferOptions { Priority = 3, Lock = "l", ScheduleAt = at };
        var args = Enumerable.Range(0, Size).Select(i => new SumArgs(i, -i)).ToList();
        var ids = async ? await task.DeferManyAsync(args, options) : task.DeferMany(args, options);
        var small = await task.DeferManyAsync([new SumArgs(-1, 1), new SumArgs(-2, 2)], options);

        Assert.Equal(Size, ids.Count);
        Assert.Equal(ids.Order(), ids);
        var rows = await db.QueryAsync("SELECT id, (args->>'a')::int AS a FROM procrastinate_jobs WHERE id = ANY($1) ORDER BY id", ids.ToArray());
        Assert.Equal(Enumerable.Range(0, Size), rows.Select(r => (int)r["a"]!));
        Assert.Equal(ids, rows.Select(r => (long)r["id"]!));

        // Every column but id and args is what the INSERT path writes.
        const string Shape = "SELECT DISTINCT queue_name, task_name, priority, lock, queueing_lock, status::text, scheduled_at, attempts, abort_requested, worker_id FROM procrastinate_jobs WHERE id = ANY($1)";
        var bulkShape = Assert.Single(await db.QueryAsync(Shape, ids.ToArray()));
        var smallShape = Assert.Single(await db.QueryAsync(Shape, small.ToArray()));
        Assert.Equal(smallShape, bulkShape);
        Assert.Equal("""{"a": 7, "b": -7}""", await db.ScalarAsync<string>("SELECT args::text FROM procrastinate_jobs WHERE id = $1", ids[7]));

        // The triggers ran for every row: a 'scheduled' and a 'deferred' event each.
        Assert.Equal(2L * Size, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_events WHERE job_id = ANY($1)", ids.ToArray()));
        Assert.Equal([JobEventType.Scheduled, JobEventType.Deferred], (await app.Jobs.ListEventsAsync(ids[^1])).Select(e => e.Type!.Value));
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(true, true, false)]
    [InlineData(true, true, true)]
    public async Task A_job_deferred_elsewhere_while_a_large_batch_is_copied_is_not_among_its_ids(bool async, bool inCallersTransaction, bool inSavepoint)
    {
        // The COPY draws its ids from the sequence as it goes: a row another session inserts
        // meanwhile takes an id inside the batch's range. A test-only trigger makes the COPY wait
        // at its 11th row for an advisory lock the test holds, so that the other insert lands there.
        await db.ExecAsync("""
            CREATE FUNCTION test_pause_large_batch() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.task_name = 'large_interleaved' AND (NEW.args->>'a')::int = 10 THEN
                    PERFORM pg_advisory_xact_lock(73217321);
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_pause_large_batch BEFORE INSERT ON procrastinate_jobs
                FOR EACH ROW EXECUTE FUNCTION test_pause_large_batch();
            """);
        try
        {
            await using var app = db.CreateApp();
            var task = app.Task<SumArgs>("large_interleaved", _ => { });
            var args = Enumerable.Range(0, Size).Select(i => new SumArgs(i, i)).ToList();
            await using var holder = await db.DataSource.OpenConnectionAsync();
            await using (var hold = new NpgsqlCommand("SELECT pg_advisory_lock(73217321)", holder))
                await hold.ExecuteNonQueryAsync();
            await using var connection = await db.DataSource.OpenConnectionAsync();
            await using var tx = inCallersTransaction ? await connection.BeginTransactionAsync() : null;
            if (inSavepoint)
            {
                // The COPY's rows then carry the subtransaction's id, not the transaction's.
                await tx!.SaveAsync("before_batch");
            }
            var batch = Task.Run(async () => tx is not null
                ? await task.DeferManyAsync(args, tx)
                : async ? await task.DeferManyAsync(args) : task.DeferMany(args));

            var waiting = false;
            for (var i = 0; i < 400 && !waiting; i++)
            {
                waiting = await db.ScalarAsync<long>(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory' AND query LIKE 'COPY procrastinate_jobs%'") == 1;
                if (!waiting) await Task.Delay(25);
            }
            Assert.True(waiting, "the COPY did not reach the test's lock");
            var other = await db.ScalarAsync<long>(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'other', '{}') RETURNING id");
            await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock(73217321)", holder))
                await release.ExecuteNonQueryAsync();
            var ids = await batch;
            if (tx is not null) await tx.CommitAsync();

            Assert.Equal(Size, ids.Count);
            Assert.InRange(other, ids[0], ids[^1]);
            Assert.DoesNotContain(other, ids);
            Assert.Equal(ids.Order(), ids);
            var rows = await db.QueryAsync("SELECT id, (args->>'a')::int AS a FROM procrastinate_jobs WHERE id = ANY($1) ORDER BY id", ids.ToArray());
            Assert.Equal(Enumerable.Range(0, Size), rows.Select(r => (int)r["a"]!));
        }
        finally
        {
            await db.ExecAsync("DROP TRIGGER test_pause_large_batch ON procrastinate_jobs; DROP FUNCTION test_pause_large_batch()");
        }
    }

    [Fact]
    public async Task A_queueing_lock_conflict_in_a_large_batch_inserts_nothing()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("large_unique", _ => { });
        await task.DeferAsync(new SumArgs(0, 0), new DeferOptions { QueueingLock = "taken" });
        var jobs = Enumerable.Range(1, Size).Select(i => new SumArgs(i, i)).ToList();

        var e = await Assert.ThrowsAsync<AlreadyEnqueuedException>(() =>
            task.DeferManyAsync(jobs, new DeferOptions { QueueingLock = "taken" }));
        Assert.Equal("taken", e.QueueingLock);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
        // Rows, or (lean layout) events still kept in the job rows.
        Assert.Equal(1L, await db.ScalarAsync<long>("""
            SELECT count(*) FROM (SELECT type::text AS type FROM procrastinate_events
                                  UNION ALL
                                  SELECT type FROM procrastinate_dotnet_pending_events(ARRAY(SELECT id FROM procrastinate_jobs))) AS e
            WHERE type = 'deferred'
            """));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_large_batch_in_the_callers_transaction_exists_only_if_it_commits(bool commit)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("large_tx", _ => { });
        await using var connection = await db.DataSource.OpenConnectionAsync();
        IReadOnlyList<long> ids;
        await using (var tx = await connection.BeginTransactionAsync())
        {
            ids = await task.DeferManyAsync(Enumerable.Range(0, Size).Select(i => new SumArgs(i, i)), tx);
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
            if (commit) await tx.CommitAsync(); else await tx.RollbackAsync();
        }
        Assert.Equal(commit ? Size : 0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY($1)", ids.ToArray()));
    }

    [Fact]
    public async Task A_traced_large_batch_stores_the_trace_context_of_every_job()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("large_traced", _ => { });
        using var ambient = new Activity("bulk import").SetIdFormat(ActivityIdFormat.W3C).Start();
        var ids = await task.DeferManyAsync(Enumerable.Range(0, Size).Select(i => new SumArgs(i, i)));
        ambient.Stop();
        Assert.Equal(Size, await db.ScalarAsync<long>(
            "SELECT count(*) FROM procrastinate_dotnet_job_trace WHERE job_id = ANY($1) AND traceparent = $2", ids.ToArray(), ambient.Id));
    }

    [Fact]
    public async Task Large_batches_run()
    {
        await using var app = db.CreateApp();
        var seen = 0;
        var task = app.Task<SumArgs>("large_run", _ => Interlocked.Increment(ref seen));
        await task.DeferManyAsync(Enumerable.Range(0, Size).Select(i => new SumArgs(i, i)));
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false, Concurrency = 20 });
        Assert.Equal(Size, seen);
        Assert.Equal((long)Size, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }
}

public sealed class LargeBatchDeferCompatibleTests(DatabaseFixture db) : LargeBatchDeferTests(db), IClassFixture<DatabaseFixture>;

public sealed class LargeBatchDeferLeanTests(LeanDatabaseFixture db) : LargeBatchDeferTests(db), IClassFixture<LeanDatabaseFixture>;
