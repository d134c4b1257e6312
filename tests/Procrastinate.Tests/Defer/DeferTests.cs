using Npgsql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Defer;

public sealed record SumArgs(int A, int B);

public sealed record NestedArgs(string Name, long Big, IReadOnlyList<int> Values, Dictionary<string, string> Tags);

public sealed class DeferTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly string[] Columns =
        ["queue_name", "task_name", "priority", "lock", "queueing_lock", "args", "status", "scheduled_at", "attempts", "abort_requested", "worker_id"];

    private Task<List<Dictionary<string, object?>>> JobRows(long id) =>
        db.QueryAsync($"SELECT {string.Join(", ", Columns)}, args::text AS args_text FROM procrastinate_jobs WHERE id = $1", id);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Defer_stores_the_row_exactly_as_Python_would(bool async)
    {
        await using var app = db.CreateApp();
        var sum = app.Task<SumArgs>("sum", _ => { }, queue: "sums");
        var id = async ? await sum.DeferAsync(new SumArgs(3, 5)) : sum.Defer(new SumArgs(3, 5));

        // What Python's defer sends (COMPAT.md 3.2): procrastinate_defer_jobs_v1 with one element.
        var pythonId = await db.ScalarAsync<long>("""
            SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
                ROW('sums', 'sum', 0, NULL, NULL, '{"a": 3, "b": 5}'::jsonb, NULL)::procrastinate_job_to_defer_v1]))
            """);

        var ours = (await JobRows(id)).Single();
        var python = (await JobRows(pythonId)).Single();
        foreach (var column in Columns)
            Assert.Equal(python[column]?.ToString(), ours[column]?.ToString());
        Assert.Equal("""{"a": 3, "b": 5}""", ours["args_text"]);

        // Same events as well: one 'deferred'.
        var events = await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1", id);
        Assert.Equal(["deferred"], events.Select(e => (string)e["type"]!));
    }

    [Fact]
    public async Task Defer_applies_options_and_task_defaults()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("with_defaults", _ => { }, queue: "q1", priority: 7, @lock: "L", queueingLock: "QL");
        var at = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.FromHours(2)).AddTicks(1234567);
        var id1 = await task.DeferAsync(new SumArgs(1, 2));
        var id2 = await task.DeferAsync(new SumArgs(1, 2), new DeferOptions
        {
            Queue = "q2", Priority = -3, Lock = "L2", QueueingLock = "QL2", ScheduleAt = at,
        });

        var row1 = (await JobRows(id1)).Single();
        Assert.Equal(("q1", 7, "L", "QL"), ((string)row1["queue_name"]!, (int)row1["priority"]!, (string)row1["lock"]!, (string)row1["queueing_lock"]!));
        Assert.Null(row1["scheduled_at"]);

        var row2 = (await JobRows(id2)).Single();
        Assert.Equal(("q2", -3, "L2", "QL2"), ((string)row2["queue_name"]!, (int)row2["priority"]!, (string)row2["lock"]!, (string)row2["queueing_lock"]!));
        // Stored as the same instant, rounded down to the microsecond.
        Assert.Equal(at.UtcDateTime.AddTicks(-(at.UtcTicks % 10)), (DateTime)row2["scheduled_at"]!);
        var events = await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id2);
        Assert.Equal(["scheduled", "deferred"], events.Select(e => (string)e["type"]!));
    }

    [Fact]
    public async Task Schedule_in_is_added_to_the_client_clock()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("later", _ => { });
        var before = DateTimeOffset.UtcNow;
        var id = await task.DeferAsync(new SumArgs(1, 1), new DeferOptions { ScheduleIn = TimeSpan.FromHours(1) });
        var after = DateTimeOffset.UtcNow;
        var at = new DateTimeOffset(await db.ScalarAsync<DateTime>("SELECT scheduled_at FROM procrastinate_jobs WHERE id = $1", id), TimeSpan.Zero);
        Assert.InRange(at, before.AddHours(1).AddMilliseconds(-1), after.AddHours(1));
    }

    [Fact]
    public async Task Schedule_at_and_in_together_is_refused_before_any_SQL()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("both", _ => { });
        var e = await Assert.ThrowsAsync<ArgumentException>(() => task.DeferAsync(new SumArgs(1, 1),
            new DeferOptions { ScheduleAt = DateTimeOffset.UtcNow, ScheduleIn = TimeSpan.FromSeconds(1) }));
        Assert.Contains("not both", e.Message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Batch_defer_inserts_all_in_one_statement_and_returns_ids_in_input_order(bool async)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("batch", _ => { });
        var args = Enumerable.Range(0, 500).Select(i => new SumArgs(i, -i)).ToList();
        var ids = async ? await task.DeferManyAsync(args) : task.DeferMany(args);
        Assert.Equal(500, ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            var a = await db.ScalarAsync<int>("SELECT (args->>'a')::int FROM procrastinate_jobs WHERE id = $1", ids[i]);
            Assert.Equal(i, a);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_queueing_lock_conflict_raises_AlreadyEnqueued_naming_the_lock(bool async)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("unique", _ => { }, queueingLock: "only-one");
        var first = await task.DeferAsync(new SumArgs(1, 1));
        var e = async
            ? await Assert.ThrowsAsync<AlreadyEnqueuedException>(() => task.DeferAsync(new SumArgs(2, 2)))
            : Assert.Throws<AlreadyEnqueuedException>(() => task.Defer(new SumArgs(2, 2)));
        Assert.Equal("only-one", e.QueueingLock);
        Assert.Equal(first, e.ExistingJobId);
        Assert.Equal("Job cannot be enqueued: there is already a job in the queue with the queueing lock only-one", e.Message);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task A_batch_with_one_conflict_inserts_nothing()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("unique_batch", _ => { });
        await task.DeferAsync(new SumArgs(0, 0), new DeferOptions { QueueingLock = "k" });
        var e = await Assert.ThrowsAsync<AlreadyEnqueuedException>(() =>
            task.DeferManyAsync([new SumArgs(1, 1), new SumArgs(2, 2)], new DeferOptions { QueueingLock = "k" }));
        Assert.Equal("k", e.QueueingLock);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task Ignoring_the_conflict_returns_the_waiting_job()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("unique_ignore", _ => { }, queueingLock: "k2");
        var first = await task.DeferAsync(new SumArgs(1, 1));
        var second = await task.DeferAsync(new SumArgs(2, 2), new DeferOptions { IgnoreAlreadyEnqueued = true });
        var third = task.Defer(new SumArgs(3, 3), new DeferOptions { IgnoreAlreadyEnqueued = true });
        Assert.Equal(first, second);
        Assert.Equal(first, third);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Defer_inside_the_callers_transaction_exists_only_if_it_commits(bool commit)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("in_tx", _ => { });
        await using var connection = await db.DataSource.OpenConnectionAsync();
        long id;
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await using (var cmd = new NpgsqlCommand("CREATE TEMP TABLE business (x int); INSERT INTO business VALUES (1)", connection, tx))
                await cmd.ExecuteNonQueryAsync();
            id = await task.DeferAsync(new SumArgs(1, 2), tx);
            // Not visible outside the transaction yet.
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", id));
            if (commit) await tx.CommitAsync(); else await tx.RollbackAsync();
        }
        Assert.Equal(commit ? 1L : 0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Sync_defer_inside_the_callers_transaction()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("in_tx_sync", _ => { });
        using var connection = db.DataSource.OpenConnection();
        using var tx = connection.BeginTransaction();
        var ids = task.DeferMany([new SumArgs(1, 1), new SumArgs(2, 2)], tx);
        var id = task.Defer(new SumArgs(3, 3), tx);
        tx.Commit();
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY($1)", new[] { ids[0], ids[1], id }));
    }

    [Fact]
    public async Task Defer_by_name_works_without_the_task_being_registered()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("some.python.task", """{"x": [1, 2, {"y": null}], "big": 123456789012345678901234567890}""",
            new DeferOptions { Queue = "python" });
        var row = (await JobRows(id)).Single();
        Assert.Equal("some.python.task", row["task_name"]);
        Assert.Equal("python", row["queue_name"]);
        Assert.Equal("""{"x": [1, 2, {"y": null}], "big": 123456789012345678901234567890}""", row["args_text"]);
    }

    [Fact]
    public async Task Defer_by_name_uses_a_registered_tasks_defaults()
    {
        await using var app = db.CreateApp();
        app.Task<SumArgs>("registered", _ => { }, queue: "sums", priority: 4);
        var id = app.Defer("registered", """{"a": 1, "b": 2}""");
        var row = (await JobRows(id)).Single();
        Assert.Equal("sums", row["queue_name"]);
        Assert.Equal(4, row["priority"]);
    }

    [Fact]
    public async Task Nested_arguments_round_trip_with_snake_case_names()
    {
        await using var app = db.CreateApp();
        var task = app.Task<NestedArgs>("nested", _ => { });
        var args = new NestedArgs("n", long.MaxValue, [1, 2, 3], new() { ["KeepCase"] = "v" });
        var id = await task.DeferAsync(args);
        var text = await db.ScalarAsync<string>("SELECT args::text FROM procrastinate_jobs WHERE id = $1", id);
        Assert.Equal("""{"big": 9223372036854775807, "name": "n", "tags": {"KeepCase": "v"}, "values": [1, 2, 3]}""", text);
        var back = task.Deserialize(text);
        Assert.Equal(args.Big, back.Big);
        Assert.Equal(args.Values, back.Values);
        Assert.Equal("v", back.Tags["KeepCase"]);
    }

    public static TheoryData<string, string> BadJson => new()
    {
        { "{not json", "not valid JSON" },
        { "[1, 2]", "must be a JSON object" },
        { "42", "must be a JSON object" },
        { "\"text\"", "must be a JSON object" },
        { """{"a": "\u0000"}""", "NUL" },
        { """{"a": "\ud800"}""", "surrogate" },
        { """{"a": NaN}""", "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadJson))]
    public async Task Bad_arguments_are_refused_and_nothing_is_written(string json, string expected)
    {
        await using var app = db.CreateApp();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => app.DeferAsync("any", json));
        Assert.Contains(expected, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task Oversized_arguments_are_refused()
    {
        await using var app = db.CreateApp(new AppOptions { MaxArgsBytes = 1000 });
        var task = app.Task<NestedArgs>("big", _ => { });
        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            task.DeferAsync(new NestedArgs(new string('x', 2000), 1, [], [])));
        Assert.Contains("limit is 1000 bytes", e.Message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    public static TheoryData<string?, string?, string?, string> BadNames => new()
    {
        { "", null, null, "queue name cannot be empty" },
        { new string('q', 41), null, null, "limit is 40 bytes" },
        { "ééééééééééééééééééééé", null, null, "limit is 40 bytes" },
        { "q\0", null, null, "NUL" },
        { null, "", null, "lock cannot be empty" },
        { null, null, "", "queueing lock cannot be empty" },
        { null, new string('l', 2000), null, "limit is 1024 bytes" },
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task Bad_names_are_refused_at_defer_and_nothing_is_written(string? queue, string? @lock, string? queueingLock, string expected)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("names", _ => { });
        var e = await Assert.ThrowsAsync<ArgumentException>(() => task.DeferAsync(new SumArgs(1, 1),
            new DeferOptions { Queue = queue, Lock = @lock, QueueingLock = queueingLock }));
        Assert.Contains(expected, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task Hostile_names_are_stored_verbatim_as_parameters()
    {
        await using var app = db.CreateApp();
        const string hostile = "x'); DROP TABLE procrastinate_jobs; --\"";
        var id = await app.DeferAsync(hostile, "{}", new DeferOptions { Queue = "q\"; DROP", Lock = hostile, QueueingLock = hostile });
        var row = (await JobRows(id)).Single();
        Assert.Equal(hostile, row["task_name"]);
        Assert.Equal("q\"; DROP", row["queue_name"]);
        Assert.Equal(hostile, row["lock"]);
    }

    [Fact]
    public void Registration_refuses_bad_and_duplicate_names()
    {
        using var app = new App(new NpgsqlConnector("Host=localhost"));
        app.Task<SumArgs>("taken", _ => { }, aliases: ["old"]);
        Assert.Contains("already registered", Assert.Throws<ArgumentException>(() => app.Task<SumArgs>("taken", _ => { })).Message);
        Assert.Contains("already registered", Assert.Throws<ArgumentException>(() => app.Task<SumArgs>("new", _ => { }, aliases: ["old"])).Message);
        Assert.Contains("limit is 128", Assert.Throws<ArgumentException>(() => app.Task<SumArgs>(new string('t', 129), _ => { })).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => app.Task<SumArgs>("", _ => { })).Message);
        Assert.Contains("40 bytes", Assert.Throws<ArgumentException>(() => app.Task<SumArgs>("t", _ => { }, queue: new string('q', 41))).Message);
    }
}
