using Npgsql;
using Procrastinate.Reliability.BadInput;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Security;

/// <summary>
/// Arguments and connection passwords never appear in log records or exception texts unless the
/// user opts in (<c>AppOptions.LogArguments</c>). Logs are captured at Trace level with their
/// structured state, scopes and exceptions, and searched for canary values.
/// </summary>
public sealed class SecretLeakTests(ITestOutputHelper output)
{
    private const string Canary = "CANARY-ARG-7f3a9d";
    private const string Password = "PW-CANARY-5e8c1b";
    private const string PasswordRole = "rel_pw_user";

    public sealed record SecretArgs(string Secret, int Ms = 0);

    private static void AssertClean(string what, string text, string secret)
    {
        var at = text.IndexOf(secret, StringComparison.Ordinal);
        Assert.True(at < 0, $"{what} contains the secret: …{text[Math.Max(0, at - 200)..Math.Min(text.Length, at + 100)]}…");
    }

    [Fact]
    public async Task Arguments_never_reach_logs_or_exceptions_unless_opted_in()
    {
        await using var db = await ScenarioDb.CreateAsync("secrets");
        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(db.ConnectionString), new AppOptions { LoggerFactory = factory });
        var ok = app.Task<SecretArgs>("ok", _ => { });
        var boom = app.Task<SecretArgs>("boom", args => throw new InvalidOperationException("the task failed"), retry: RetryStrategy.Times(1));
        var slow = app.Task<SecretArgs>("slow", async (args, context, ct) => await Task.Delay(args.Ms, ct));
        app.Task<BadInput.NumberArgs>("number", _ => { });
        var exceptions = new List<Exception>();
        async Task Catch(Func<Task> act)
        {
            var e = await Record.ExceptionAsync(act);
            Assert.NotNull(e);
            exceptions.Add(e);
        }

        // Every path: defer (typed, by name, batch), success, failure and retry, abort, arguments
        // that do not fit, unknown task, stalled rescue, queueing-lock conflict, and refused input.
        await ok.DeferAsync(new SecretArgs(Canary));
        await ok.DeferManyAsync([new SecretArgs(Canary), new SecretArgs(Canary + "2")]);
        await app.DeferAsync("ok", $$"""{"secret": "{{Canary}}"}""");
        await boom.DeferAsync(new SecretArgs(Canary));
        var slowId = await slow.DeferAsync(new SecretArgs(Canary, 30_000));
        await app.DeferAsync("number", $$"""{"x": "{{Canary}}"}""");
        await app.DeferAsync("nobody.knows.me", $$"""{"secret": "{{Canary}}"}""");
        await ok.DeferAsync(new SecretArgs(Canary), new DeferOptions { QueueingLock = "q" });
        await Catch(() => ok.DeferAsync(new SecretArgs(Canary), new DeferOptions { QueueingLock = "q" }));
        await Catch(() => app.DeferAsync("ok", $$"""{"secret": "{{Canary}}" oops}"""));
        await Catch(() => app.DeferAsync("ok", $$"""{"secret": "{{Canary}}\u0000"}"""));
        await Catch(() => ok.DeferAsync(new SecretArgs(Canary + new string('x', AppOptions.DefaultMaxArgsBytes))));
        await Catch(() => ok.DeferAsync(new SecretArgs(Canary + "\0")));
        var deadWorker = await db.ScalarAsync<long>("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id");
        var stalled = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'ok', $1::jsonb) RETURNING id",
            $$"""{"secret": "{{Canary}}"}""");
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", deadWorker, stalled);
        await db.ExecAsync("UPDATE procrastinate_events SET at = now() - interval '1 hour' WHERE job_id = $1", stalled);

        using var stop = new CancellationTokenSource();
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            Concurrency = 4, HandleSignals = false, StalledWorkerTimeout = TimeSpan.FromSeconds(2), UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(300),
            StalledJobsCheckInterval = TimeSpan.FromMilliseconds(300), FetchJobPollingInterval = TimeSpan.FromMilliseconds(300),
        }, stop.Token);
        await ScenarioDb.WaitUntilAsync(async () => await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", slowId) == "doing",
            TimeSpan.FromSeconds(30), "the slow job running");
        await app.Jobs.AbortAsync(slowId);
        await ScenarioDb.WaitUntilAsync(async () => await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')") == 0,
            TimeSpan.FromSeconds(30), "every job finished");
        await stop.CancelAsync();
        await run;

        var allLogs = logs.AllText;
        output.WriteLine($"{logs.Records.Count} log records; event ids: {string.Join(", ", logs.Records.Select(r => r.Id.Id).Distinct().Order())}");
        Assert.Contains(logs.Records, r => r.Id.Id == 3012);   // the stalled job was rescued
        Assert.Contains(logs.Records, r => r.Id.Id == 3006);   // unknown task
        Assert.Contains(logs.Records, r => r.Id.Id == 3004);   // retry
        Assert.Contains(logs.Records, r => r.Id.Id == 3005);   // aborted
        foreach (var e in exceptions)
            AssertClean($"{e.GetType().Name}", e.ToString(), Canary);
        BadInputTable.Record("(security) arguments in logs and exceptions", $"absent from {logs.Records.Count} log records and {exceptions.Count} exception texts");
        AssertClean("the logs", allLogs, Canary);

        // Opting in logs them.
        var optIn = new CapturingLoggerProvider();
        using var optInFactory = CapturingLoggerProvider.Factory(optIn);
        await using var verbose = new App(new NpgsqlConnector(db.ConnectionString), new AppOptions { LoggerFactory = optInFactory, LogArguments = true });
        var verboseOk = verbose.Task<SecretArgs>("ok", _ => { });
        await verboseOk.DeferAsync(new SecretArgs(Canary + "-opt-in"));
        await verbose.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
        Assert.Contains(Canary + "-opt-in", optIn.AllText, StringComparison.Ordinal);
    }

    /// <summary>
    /// Periodic arguments PostgreSQL cannot store are refused at registration. Before that check, a
    /// NUL reached PostgreSQL on every tick, whose error context (<c>Where</c>, which Npgsql does not
    /// redact) quotes the JSON, and the periodic deferrer logged the whole exception: the arguments
    /// ended up in the logs.
    /// </summary>
    [Fact]
    public async Task Arguments_of_a_periodic_schedule_that_cannot_be_stored_are_refused_at_registration()
    {
        await using var db = await ScenarioDb.CreateAsync("secrets2");
        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(db.ConnectionString), new AppOptions { LoggerFactory = factory });
        var periodic = app.Task<SecretArgs>("periodic", _ => { });
        // A NUL can never reach jsonb: the schedule is refused, so no tick fails (and logs) later.
        var refused = Assert.Throws<ArgumentException>(() => periodic.Periodic("* * * * * *", "secret-tick", new SecretArgs(Canary + "\0")));
        Assert.Empty(periodic.Schedules);
        BadInputTable.Record("(security) periodic arguments with NUL", $"{refused.GetType().Name}: {refused.Message}");
        AssertClean("the exception", refused.ToString(), Canary);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.RunWorkerAsync(new WorkerOptions { HandleSignals = false }, stop.Token);
        AssertClean("the logs", logs.AllText, Canary);
    }

    [Fact]
    public async Task Connection_passwords_never_reach_logs_or_exceptions()
    {
        await using var db = await ScenarioDb.CreateAsync("password");
        await ReliabilityCluster.EnsurePasswordRoleAsync(PasswordRole, Password);
        var host = new NpgsqlConnectionStringBuilder(db.ConnectionString);
        string Url(string password, int? port = null) => $"postgresql://{PasswordRole}:{password}@127.0.0.1:{port ?? host.Port}/{db.Name}";

        // The real password works (so the role really needs one).
        await using (var good = new App(new NpgsqlConnector(Url(Password))))
            await (await good.OpenAsync()).DisposeAsync();

        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        var texts = new List<(string What, string Text)>();
        async Task Attempt(string what, string connection, string secret)
        {
            await using var app = new App(new NpgsqlConnector(connection), new AppOptions { LoggerFactory = factory });
            var task = app.Task<SecretArgs>("ok", _ => { });
            texts.Add(($"{what}: defer", (await Record.ExceptionAsync(() => task.DeferAsync(new SecretArgs("a"))))?.ToString() ?? "no exception"));
            texts.Add(($"{what}: open", (await Record.ExceptionAsync(() => app.OpenAsync()))?.ToString() ?? "no exception"));
            texts.Add(($"{what}: worker", (await Record.ExceptionAsync(() => app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, Wait = false })))?.ToString() ?? "no exception"));
            var health = await app.Health.CheckDatabaseAsync();
            texts.Add(($"{what}: health", health.ToString()));
            texts.Add(($"{what}: connection string", ((NpgsqlConnector)app.Connector).DataSource.ConnectionString));
            foreach (var (w, t) in texts)
                AssertClean(w, t, secret);
        }

        const string wrong = "WRONG-PW-CANARY-11";
        await Attempt("wrong password (URL)", Url(wrong), wrong);
        await Attempt("wrong password (keywords)", $"Host=127.0.0.1;Port={host.Port};Username={PasswordRole};Password={wrong};Database={db.Name}", wrong);
        await Attempt("right password, closed port", Url(Password, port: 1), Password);
        await Attempt("right password, unknown database", Url(Password).Replace(db.Name, "no_such_db", StringComparison.Ordinal), Password);
        foreach (var bad in new[] { $"postgresql://{PasswordRole}:{Password}@127.0.0.1:notaport/db", $"postgresql://{PasswordRole}:{Password}@127.0.0.1/db?port=abc", $"postgresql://{PasswordRole}:{Password}@127.0.0.1/db?sslmode=bogus" })
        {
            var e = Record.Exception(() => new NpgsqlConnector(bad));
            texts.Add(("malformed URL", e?.ToString() ?? "accepted"));
            AssertClean("malformed URL", e?.ToString() ?? "", Password);
        }
        output.WriteLine(string.Join("\n", texts.Select(t => $"{t.What}: {t.Text.Split('\n')[0]}")));
        Assert.Contains(texts, t => t.Text.Contains("28P01", StringComparison.Ordinal));   // authentication really failed
        AssertClean("the logs", logs.AllText, wrong);
        AssertClean("the logs", logs.AllText, Password);
        BadInputTable.Record("(security) connection password in logs and exceptions",
            $"absent from {texts.Count} exception/health/connection-string texts and {logs.Records.Count} log records (wrong password, closed port, unknown database, malformed URLs)");
    }
}
