using System.Globalization;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary>Every flag can come from PROCRASTINATE_&lt;COMMAND&gt;_&lt;NAME&gt; or PROCRASTINATE_&lt;NAME&gt;; the flag wins.</summary>
public sealed class EnvironmentTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private async Task<Dictionary<string, object?>> DeferWithAsync(Dictionary<string, string> environment, params string[] args)
    {
        var run = new CliRun(["defer", "sum", """{"a": 1, "b": 2}""", .. args]);
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        foreach (var (name, value) in environment)
            run.Environment[name] = value;
        var result = await RunAsync(run);
        AssertOk(result);
        return await JobRowAsync(long.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Command_variable_then_generic_variable_then_flag()
    {
        Assert.Equal("generic", (await DeferWithAsync(new() { ["PROCRASTINATE_QUEUE"] = "generic" }))["queue_name"]);
        Assert.Equal("specific", (await DeferWithAsync(new() { ["PROCRASTINATE_QUEUE"] = "generic", ["PROCRASTINATE_DEFER_QUEUE"] = "specific" }))["queue_name"]);
        Assert.Equal("flag", (await DeferWithAsync(new() { ["PROCRASTINATE_DEFER_QUEUE"] = "specific" }, "--queue", "flag"))["queue_name"]);
    }

    [Fact]
    public async Task Typed_values_and_switches_from_the_environment()
    {
        var row = await DeferWithAsync(new()
        {
            ["PROCRASTINATE_DEFER_PRIORITY"] = "9",
            ["PROCRASTINATE_DEFER_LOCK"] = "env-lock",
            ["PROCRASTINATE_DEFER_IN"] = "2h",
        });
        Assert.Equal(9, row["priority"]);
        Assert.Equal("env-lock", row["lock"]);
        Assert.True(((DateTime)row["scheduled_at"]!).ToUniversalTime() > DateTime.UtcNow.AddMinutes(110));

        var unknown = new CliRun("defer", "not.registered");
        unknown.Environment["PROCRASTINATE_DEFER_UNKNOWN"] = "true";
        AssertOk(await RunAsync(unknown));

        var json = new CliRun("jobs");
        json.Environment["PROCRASTINATE_JSON"] = "1";
        var listing = await RunAsync(json);
        AssertOk(listing);
        Assert.StartsWith("[", listing.Stdout.TrimStart(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_flags_and_the_app_from_the_environment()
    {
        var run = new CliRun("worker") { WorkingDirectory = NewDirectory() };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        run.Environment["PROCRASTINATE_WORKER_NAME"] = "from-env";
        run.Environment["PROCRASTINATE_WORKER_QUEUES"] = "sums,counts";
        run.Environment["PROCRASTINATE_WORKER_CONCURRENCY"] = "5";
        run.Environment["PROCRASTINATE_WORKER_ONE_SHOT"] = "yes";
        run.Environment["PROCRASTINATE_WORKER_LISTEN_NOTIFY"] = "false";
        run.Environment["PROCRASTINATE_LOG_LEVEL"] = "information";
        var result = await RunAsync(run);
        AssertOk(result);
        Assert.Contains("Starting worker 'from-env'", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("on sums, counts: concurrency 5", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("listen/notify off", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("one-shot on", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_value_names_the_variable()
    {
        var run = new CliRun("defer", "sum", "{}");
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        run.Environment["PROCRASTINATE_DEFER_PRIORITY"] = "high";
        AssertError(await RunAsync(run), 2, "PROCRASTINATE_DEFER_PRIORITY: 'high' is not a whole number");
        Assert.Equal(0L, await JobCountAsync());
    }

    [Fact]
    public async Task The_connection_string_flag_reaches_an_app_that_reads_the_environment()
    {
        // The app's connector reads PROCRASTINATE_DATABASE_URL (unreachable here); --connection-string wins.
        var run = new CliRun("--connection-string", ConnectionString, "defer", "sum", """{"a": 1, "b": 2}""");
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        var result = await Tool.RunAsync("Host=127.0.0.1;Port=1;Database=nowhere", run);
        AssertOk(result);
        Assert.Equal(1L, await JobCountAsync());

        var fromVariable = new CliRun("jobs", "--json");
        fromVariable.Environment["PROCRASTINATE_CONNECTION_STRING"] = ConnectionString;
        AssertOk(await Tool.RunAsync("Host=127.0.0.1;Port=1;Database=nowhere", fromVariable));
    }
}
