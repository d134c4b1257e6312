using Npgsql;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.BadInput;

public sealed record TextArgs(string S);

public sealed record NumberArgs(double X);

/// <summary>
/// Bad input, each refused at the edge with a clear error (exact type and a message fragment), and
/// nothing written: no job, event, worker or periodic defer. The table of RELIABILITY.md comes from here.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private ScenarioDb _db = null!;
    private App _app = null!;
    private JobTask<TextArgs> _text = null!;
    private JobTask<NumberArgs> _number = null!;

    public async Task InitializeAsync()
    {
        _db = await ScenarioDb.CreateAsync("bad");
        _app = _db.CreateApp();
        _text = _app.Task<TextArgs>("text", _ => { });
        _number = _app.Task<NumberArgs>("number", _ => { });
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _db.DisposeAsync();
    }

    private async Task AssertNothingWrittenAsync() =>
        Assert.Equal(0L, await _db.ScalarAsync<long>("""
            SELECT (SELECT count(*) FROM procrastinate_jobs) + (SELECT count(*) FROM procrastinate_events)
                 + (SELECT count(*) FROM procrastinate_workers) + (SELECT count(*) FROM procrastinate_periodic_defers)
            """));

    /// <summary>Asserts the exact exception type and a message fragment, that nothing was written, and records the row.</summary>
    private async Task<T> RefusedAsync<T>(string input, Func<Task> act, string fragment) where T : Exception
    {
        var e = await Assert.ThrowsAsync<T>(act);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        await AssertNothingWrittenAsync();
        BadInputTable.Record(input, e);
        return e;
    }

    private Task<T> Refused<T>(string input, Action act, string fragment) where T : Exception =>
        RefusedAsync<T>(input, () => { act(); return Task.CompletedTask; }, fragment);

    // ---- Tasks and arguments ---------------------------------------------------------------------

    [Fact]
    public async Task Unknown_task_is_accepted_by_name_and_failed_by_the_worker_with_a_clear_log()
    {
        // Deferring by name does not require the task here (other processes, other languages).
        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(_db.ConnectionString), new AppOptions { LoggerFactory = factory });
        var id = await app.DeferAsync("no.such.task", "{}");
        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
        Assert.Equal("failed", await _db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        var record = Assert.Single(logs.Records, r => r.Id.Id == 3006);
        Assert.Contains("task no.such.task is not registered in this worker; the job fails", record.Text, StringComparison.Ordinal);
        BadInputTable.Record("unknown task (defer by name)", "accepted by design (the task may live in another process); the worker fails the job: "
            + "status failed, log event 3006 \"[task_not_found] Job N: task no.such.task is not registered in this worker; the job fails\"");
    }

    [Fact]
    public Task Malformed_json() =>
        RefusedAsync<ArgumentException>("malformed JSON `{\"a\": 1`", () => _app.DeferAsync("text", """{"a": 1"""), "The job arguments are not valid JSON");

    [Theory]
    [InlineData("[1, 2]", "not an array")]
    [InlineData("\"text\"", "not a string")]
    [InlineData("42", "not a number")]
    [InlineData("null", "not null")]
    public Task Json_that_is_not_an_object(string json, string fragment) =>
        RefusedAsync<ArgumentException>($"JSON that is not an object `{json}`", () => _app.DeferAsync("text", json),
            "The job arguments must be a JSON object (of named arguments), " + fragment);

    [Fact]
    public async Task Nul_character_in_arguments()
    {
        await RefusedAsync<ArgumentException>("`\\u0000` in JSON text", () => _app.DeferAsync("text", """{"s": "a\u0000b"}"""), "NUL character (\\u0000)");
        await RefusedAsync<ArgumentException>("`\\0` in a typed argument", () => _text.DeferAsync(new TextArgs("a\0b")), "NUL character (\\u0000)");
    }

    [Fact]
    public async Task Lone_surrogates_in_arguments()
    {
        await RefusedAsync<ArgumentException>("lone surrogate `\\ud800` in JSON text", () => _app.DeferAsync("text", """{"s": "\ud800"}"""), "unpaired UTF-16 surrogate");
        await RefusedAsync<ArgumentException>("lone low surrogate `\\udc00` in JSON text", () => _app.DeferAsync("text", """{"s": "x\udc00"}"""), "unpaired UTF-16 surrogate");
    }

    /// <summary>
    /// The same lone surrogate in a typed argument: System.Text.Json writes it as U+FFFD, so the
    /// job is stored with different arguments and no error (the JSON-text path refuses it).
    /// </summary>
    [Fact]
    public async Task Lone_surrogate_in_a_typed_argument_is_refused_not_replaced()
    {
        var e = await Record.ExceptionAsync(() => _text.DeferAsync(new TextArgs("a\ud800b")));
        var stored = await _db.ScalarAsync<string>("SELECT args::text FROM procrastinate_jobs");
        BadInputTable.Record("lone surrogate in a typed argument", e is null ? $"accepted and silently altered: stored args = {stored} (U+FFFD replacement character)" : $"{e.GetType().Name}: {e.Message}");
        Assert.IsType<ArgumentException>(e);
        await AssertNothingWrittenAsync();
    }

    [Fact]
    public async Task NaN_and_infinity_in_arguments()
    {
        await RefusedAsync<ArgumentException>("`NaN` in JSON text", () => _app.DeferAsync("number", """{"x": NaN}"""), "not valid JSON");
        await RefusedAsync<ArgumentException>("`double.NaN` in a typed argument", () => _number.DeferAsync(new NumberArgs(double.NaN)), "");
        await RefusedAsync<ArgumentException>("`double.PositiveInfinity` in a typed argument", () => _number.DeferAsync(new NumberArgs(double.PositiveInfinity)), "");
    }

    [Fact]
    public async Task Payload_over_the_limit()
    {
        var big = new TextArgs(new string('x', AppOptions.DefaultMaxArgsBytes));
        await RefusedAsync<ArgumentException>("arguments over 1 MB (typed)", () => _text.DeferAsync(big), "the limit is 1048576 bytes (AppOptions.MaxArgsBytes)");
        await RefusedAsync<ArgumentException>("arguments over 1 MB (by name)", () => _app.DeferAsync("text", $$"""{"s": "{{big.S}}"}"""), "the limit is 1048576 bytes");
        await RefusedAsync<ArgumentException>("arguments over 1 MB (batch)", () => _text.DeferManyAsync([new TextArgs("small"), big]), "the limit is 1048576 bytes");
        await using var small = new App(new NpgsqlConnector(_db.ConnectionString), new AppOptions { MaxArgsBytes = 100 });
        var task = small.Task<TextArgs>("text", _ => { });
        await RefusedAsync<ArgumentException>("arguments over a configured MaxArgsBytes = 100", () => task.DeferAsync(new TextArgs(new string('y', 100))), "the limit is 100 bytes");
    }

    [Fact]
    public async Task Arguments_that_do_not_fit_the_registered_type_fail_the_job_without_retry_storm()
    {
        // Deferring by name checks that the JSON is an object, not that it fits the task's type.
        var id = await _app.DeferAsync("number", """{"x": "not a number"}""");
        await _app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
        Assert.Equal("failed", await _db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        BadInputTable.Record("arguments that do not fit the task's args type (defer by name)",
            "accepted at defer (only the JSON shape is checked); the run fails with a JsonException and the job ends failed");
    }

    // ---- Names ------------------------------------------------------------------------------------

    [Fact]
    public async Task Empty_names()
    {
        await RefusedAsync<ArgumentException>("empty queue", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Queue = "" }), "A queue name cannot be empty.");
        await RefusedAsync<ArgumentException>("empty task name (defer by name)", () => _app.DeferAsync("", "{}"), "A task name cannot be empty.");
        await Refused<ArgumentException>("empty task name (registration)", () => _app.Task<TextArgs>("", _ => { }), "A task name cannot be empty.");
        await RefusedAsync<ArgumentException>("empty lock", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Lock = "" }), "A lock cannot be empty; use null for none.");
        await RefusedAsync<ArgumentException>("empty queueing lock", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { QueueingLock = "" }), "A queueing lock cannot be empty; use null for none.");
        await RefusedAsync<ArgumentException>("empty worker name", () => _app.RunWorkerAsync(new WorkerOptions { Name = "", HandleSignals = false }), "The worker name cannot be empty.");
    }

    [Fact]
    public async Task Names_over_the_limits()
    {
        // Channel names are limited to 63 bytes; 23 go to 'procrastinate_queue_v1#', which leaves 40.
        await RefusedAsync<ArgumentException>("queue of 41 bytes (channel name over 63 bytes)", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Queue = new string('q', 41) }), "the limit is 40 bytes");
        await RefusedAsync<ArgumentException>("queue of 64 bytes", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Queue = new string('q', 64) }), "the limit is 40 bytes");
        await RefusedAsync<ArgumentException>("queue of 21 characters, 42 UTF-8 bytes", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Queue = new string('é', 21) }), "is 42 bytes long; the limit is 40 bytes");
        await RefusedAsync<ArgumentException>("worker queue list with a 41-byte queue", () => _app.RunWorkerAsync(new WorkerOptions { Queues = [new string('q', 41)], HandleSignals = false }), "the limit is 40 bytes");
        await RefusedAsync<ArgumentException>("task name of 129 characters", () => _app.DeferAsync(new string('t', 129), "{}"), "the limit is 128");
        await RefusedAsync<ArgumentException>("lock of 1025 bytes", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Lock = new string('l', 1025) }), "the limit is 1024 bytes");
        await RefusedAsync<ArgumentException>("queueing lock of 1025 bytes", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { QueueingLock = new string('l', 1025) }), "the limit is 1024 bytes");
        await Refused<ArgumentException>("periodic id of 129 characters", () => _text.Periodic("* * * * *", new string('p', 129)), "the limit is 128");
    }

    [Fact]
    public async Task Nul_characters_in_names()
    {
        await RefusedAsync<ArgumentException>("NUL in a queue name", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Queue = "a\0b" }), "contains a NUL character");
        await RefusedAsync<ArgumentException>("NUL in a task name", () => _app.DeferAsync("a\0b", "{}"), "contains a NUL character");
        await RefusedAsync<ArgumentException>("NUL in a lock", () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { Lock = "a\0b" }), "contains a NUL character");
    }

    // Expected to be refused like the names above; each one reaches PostgreSQL today (see RELIABILITY.md).
    [Fact]
    public async Task Nul_character_in_a_worker_name_is_refused_before_any_sql()
    {
        var e = await Record.ExceptionAsync(() => _app.RunWorkerAsync(new WorkerOptions { Name = "worker\0name", HandleSignals = false, Wait = false }));
        BadInputTable.Record("NUL in a worker name", e is null ? "accepted" : $"{e.GetType().Name}: {e.Message}");
        Assert.IsType<ArgumentException>(e);
        await AssertNothingWrittenAsync();
    }

    [Fact]
    public async Task Nul_character_in_a_periodic_id_or_periodic_arguments_is_refused_at_registration()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(_db.ConnectionString), new AppOptions { LoggerFactory = factory });
        var byIdTask = app.Task<TextArgs>("periodic_id_nul", _ => { });
        var byArgsTask = app.Task<TextArgs>("periodic_args_nul", _ => { });
        var byId = Record.Exception(() => byIdTask.Periodic("* * * * * *", "id\0x"));
        var byArgs = Record.Exception(() => byArgsTask.Periodic("* * * * * *", "p", new TextArgs("a\0b")));
        if (byId is null || byArgs is null)
        {
            // Accepted: see what a worker makes of them (a tick every second).
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2.5));
            await app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }, cts.Token);
        }
        string Outcome(Exception? e, string task)
        {
            if (e is not null)
                return $"{e.GetType().Name}: {e.Message}";
            var failure = logs.Records.FirstOrDefault(r => r.Id.Id == 2007 && r.Text.Contains(task, StringComparison.Ordinal)).Text ?? "";
            var sqlState = System.Text.RegularExpressions.Regex.Match(failure, @"PostgresException[^:]*: (\w+: [^\n]*)").Groups[1].Value;
            return $"accepted at registration; the worker's every defer of the schedule fails ({sqlState}), logged as event 2007 and retried every 5 s: the schedule never runs";
        }
        BadInputTable.Record("NUL in a periodic id", Outcome(byId, "periodic_id_nul"));
        BadInputTable.Record("NUL in periodic arguments", Outcome(byArgs, "periodic_args_nul"));
        Assert.IsType<ArgumentException>(byId);
        Assert.IsType<ArgumentException>(byArgs);
    }

    // ---- Schedules ----------------------------------------------------------------------------------

    [Fact]
    public Task Both_schedule_options() =>
        RefusedAsync<ArgumentException>("ScheduleAt and ScheduleIn together",
            () => _text.DeferAsync(new TextArgs("a"), new DeferOptions { ScheduleAt = DateTimeOffset.UtcNow, ScheduleIn = TimeSpan.FromMinutes(1) }),
            "Set ScheduleAt or ScheduleIn, not both.");

    /// <summary>Schedules far in the past or future are refused at the edge, naming the option; nothing is written.</summary>
    [Theory]
    [InlineData("ScheduleAt = DateTimeOffset.MinValue", "min")]
    [InlineData("ScheduleAt = 1900-01-01", "1900")]
    [InlineData("ScheduleAt = 9999-12-31", "9999")]
    [InlineData("ScheduleAt = DateTimeOffset.MaxValue", "max")]
    [InlineData("ScheduleIn = TimeSpan.MaxValue", "in-max")]
    public async Task Schedules_far_in_the_past_or_future_are_refused(string input, string which)
    {
        var options = which switch
        {
            "min" => new DeferOptions { ScheduleAt = DateTimeOffset.MinValue },
            "1900" => new DeferOptions { ScheduleAt = new DateTimeOffset(1900, 1, 1, 0, 0, 0, TimeSpan.Zero) },
            "9999" => new DeferOptions { ScheduleAt = new DateTimeOffset(9999, 12, 31, 0, 0, 0, TimeSpan.Zero) },
            "max" => new DeferOptions { ScheduleAt = DateTimeOffset.MaxValue },
            _ => new DeferOptions { ScheduleIn = TimeSpan.MaxValue },
        };
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _text.DeferAsync(new TextArgs("a"), options));
        Assert.Contains("schedules must fall between 1970-01-01 and", e.Message, StringComparison.Ordinal);
        Assert.Equal(which == "in-max" ? "ScheduleIn" : "ScheduleAt", e.ParamName);
        BadInputTable.Record(input, e);
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task A_schedule_in_the_recent_past_still_means_now()
    {
        var id = await _text.DeferAsync(new TextArgs("a"), new DeferOptions { ScheduleAt = DateTimeOffset.UtcNow.AddDays(-1) });
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", id));
    }

    // ---- Periodic tasks ----------------------------------------------------------------------------

    [Theory]
    [InlineData("61 * * * *")]
    [InlineData("* * *")]
    [InlineData("0 0 L * *")]
    [InlineData("*/0 * * * *")]
    [InlineData("DROP TABLE procrastinate_jobs")]
    public async Task Invalid_cron(string cron)
    {
        await Refused<FormatException>($"invalid cron `{cron}`", () => _text.Periodic(cron, "p"), cron);
        Assert.Empty(_text.Schedules);
    }

    [Fact]
    public async Task Invalid_time_zone()
    {
        await Refused<ArgumentException>("unknown time zone `Mars/Olympus_Mons`", () => _text.Periodic("0 3 * * *", "tz", timeZone: "Mars/Olympus_Mons"), "Unknown time zone 'Mars/Olympus_Mons'");
        Assert.Empty(_text.Schedules);
    }

    // ---- Worker options ------------------------------------------------------------------------------

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public Task Concurrency_zero_or_negative(int concurrency) =>
        RefusedAsync<ArgumentException>($"Concurrency = {concurrency}",
            () => _app.RunWorkerAsync(new WorkerOptions { Concurrency = concurrency, HandleSignals = false }), $"Concurrency must be at least 1 (got {concurrency}).");

    [Fact]
    public async Task Other_worker_options_out_of_range()
    {
        await RefusedAsync<ArgumentException>("PrefetchJobs = -1", () => _app.RunWorkerAsync(new WorkerOptions { PrefetchJobs = -1, HandleSignals = false }), "PrefetchJobs cannot be negative");
        await RefusedAsync<ArgumentException>("UpdateHeartbeatInterval >= StalledWorkerTimeout",
            () => _app.RunWorkerAsync(new WorkerOptions { UpdateHeartbeatInterval = TimeSpan.FromSeconds(30), StalledWorkerTimeout = TimeSpan.FromSeconds(30), HandleSignals = false }),
            "must be shorter than StalledWorkerTimeout");
        await RefusedAsync<ArgumentException>("negative ShutdownGracefulTimeout", () => _app.RunWorkerAsync(new WorkerOptions { ShutdownGracefulTimeout = TimeSpan.FromSeconds(-1), HandleSignals = false }), "cannot be negative");
    }

    // ---- Schema --------------------------------------------------------------------------------------

    [Fact]
    public async Task A_database_without_the_schema()
    {
        await using var empty = await ScenarioDb.CreateAsync("noschema", withSchema: false);
        await using var app = empty.CreateApp();
        var task = app.Task<TextArgs>("text", _ => { });
        var worker = await Assert.ThrowsAsync<SchemaException>(() => app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }));
        BadInputTable.Record("worker on a database without the schema", worker);
        // Defer reaches PostgreSQL; its error (the missing table) becomes a SchemaException that says what to do.
        var defer = await Assert.ThrowsAsync<SchemaException>(() => task.DeferAsync(new TextArgs("a")));
        Assert.Equal("42P01", Assert.IsType<PostgresException>(defer.InnerException).SqlState);
        Assert.Contains("schema --apply", defer.Message, StringComparison.Ordinal);
        BadInputTable.Record("defer on a database without the schema", defer);
        var batch = await Assert.ThrowsAsync<SchemaException>(() => task.DeferManyAsync([new TextArgs("a"), new TextArgs("b")]));
        Assert.Contains("procrastinate_jobs", batch.Message, StringComparison.Ordinal);
        Assert.Throws<SchemaException>(() => task.Defer(new TextArgs("a")));
        var status = await app.Schema.CheckAsync();
        Assert.False(status.Installed);
        Assert.Null(await empty.ScalarAsync<string>("SELECT to_regclass('procrastinate_jobs')::text"));
        Assert.Equal(0L, await empty.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"));
    }

    [Fact]
    public async Task A_database_at_a_newer_schema_version()
    {
        await _db.ExecAsync($"INSERT INTO {SchemaManager.LedgerTable} (name, note) VALUES ('9999_from_the_future', 'newer library')");
        var before = await _db.ScalarAsync<long>($"SELECT count(*) FROM {SchemaManager.LedgerTable}");
        var apply = await RefusedAsync<SchemaException>("database at a newer schema version: Schema.Apply", () => _app.Schema.ApplyAsync(), "newer than this version");
        Assert.Contains("9999_from_the_future", apply.Message, StringComparison.Ordinal);
        await RefusedAsync<SchemaException>("database at a newer schema version: worker start", () => _app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }), "9999_from_the_future");
        Assert.Equal(["9999_from_the_future"], (await _app.Schema.CheckAsync()).UnknownMigrations);
        Assert.Equal(before, await _db.ScalarAsync<long>($"SELECT count(*) FROM {SchemaManager.LedgerTable}"));
    }
}
