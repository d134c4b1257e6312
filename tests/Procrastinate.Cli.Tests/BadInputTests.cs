using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary>
/// Bad input prints one clear line, exits non-zero, shows no stack trace unless --verbose, and writes nothing.
/// </summary>
public sealed class BadInputTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private async Task AssertRefusedAsync(CliResult result, int exitCode, params string[] contains)
    {
        AssertError(result, exitCode, contains);
        Assert.Equal(0L, await JobCountAsync());
    }

    [Theory]
    [InlineData("""{"a": 3,""")]
    [InlineData("{a: 3}")]
    [InlineData("not json")]
    public async Task Malformed_json(string json) =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", json), 1, "not valid JSON");

    [Theory]
    [InlineData("[1, 2]", "array")]
    [InlineData("\"text\"", "string")]
    [InlineData("42", "number")]
    [InlineData("null", "null")]
    public async Task Json_that_is_not_an_object(string json, string kind) =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", json), 1, "must be a JSON object", kind);

    [Fact]
    public async Task Json_with_a_nul_character() =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", """{"a": "\u0000"}"""), 1, "\\u0000");

    [Fact]
    public async Task Json_with_an_unpaired_surrogate() =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", """{"a": "\ud800"}"""), 1, "unpaired");

    [Fact]
    public async Task Arguments_over_the_size_limit()
    {
        // Too long for a command-line argument: "-" reads the JSON from stdin.
        var big = new CliRun("defer", "sum", "-") { Stdin = $$"""{"a": "{{new string('x', 1024 * 1024)}}"}""" };
        big.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        await AssertRefusedAsync(await RunAsync(big), 1, "bytes of JSON; the limit is 1048576 bytes");
    }

    [Fact]
    public async Task Unknown_task_without_unknown_with_an_app() =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "nope", "{}"), 1,
            "task 'nope' is not registered in Procrastinate.Cli.TestApp.dll", "--unknown");

    [Fact]
    public async Task Unknown_task_without_unknown_and_without_an_app() =>
        await AssertRefusedAsync(await RunAsync("defer", "sum", """{"a": 3, "b": 5}"""), 1, "task 'sum' is unknown", "no app is loaded", "--unknown");

    [Theory]
    [InlineData("2030-01-01T10:00:00", "has no time zone offset")]
    [InlineData("2030-01-01", "is not an ISO-8601 date and time")]
    [InlineData("tomorrow", "is not an ISO-8601 date and time")]
    [InlineData("2030-13-45T10:00:00Z", "is not a valid date and time")]
    public async Task A_bad_date(string at, string message) =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", """{"a": 3, "b": 5}""", "--at", at), 2, "--at:", message);

    [Theory]
    [InlineData("soon")]
    [InlineData("5 minutes")]
    [InlineData("-5")]
    public async Task A_bad_delay(string delay) =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", """{"a": 3, "b": 5}""", "--in", delay), 2, "--in:");

    [Fact]
    public async Task At_and_in_together() =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", "{}", "--at", "2030-01-01T00:00:00Z", "--in", "10"), 2, "cannot be combined");

    [Fact]
    public async Task A_bad_queue_name() =>
        await AssertRefusedAsync(await RunWithAppAsync("defer", "sum", "{}", "--queue", new string('q', 41)), 1, "41 bytes");

    [Fact]
    public async Task A_database_that_does_not_exist()
    {
        var missing = TestCluster.WithDatabase(ConnectionString, "procrastinate_no_such_database");
        AssertError(await Tool.RunAsync(missing, "defer", "sum", "--unknown"), 1,
            "cannot connect to PostgreSQL", "database 'procrastinate_no_such_database'", "does not exist");
        AssertError(await Tool.RunAsync(missing, new CliRun("defer", "sum", "{}") { Environment = { ["PROCRASTINATE_APP"] = Tool.TestAppDll } }), 1,
            "database 'procrastinate_no_such_database'");
        Assert.Equal(0L, await JobCountAsync());
    }

    [Fact]
    public async Task A_server_that_cannot_be_reached_never_shows_the_password()
    {
        const string password = "s3cr3t-Pa55word";
        var unreachable = $"Host=127.0.0.1;Port=1;Database=nowhere;Username=someone;Password={password};Timeout=5";
        var result = await Tool.RunAsync(unreachable, "defer", "sum", "--unknown");
        AssertError(result, 1, "cannot connect to PostgreSQL at 127.0.0.1:1, database 'nowhere', user 'someone'");
        Assert.DoesNotContain(password, result.Stderr, StringComparison.Ordinal);

        var url = $"postgresql://someone:{password}@127.0.0.1:1/nowhere";
        var verbose = await Tool.RunAsync(ConnectionString, "--connection-string", url, "--verbose", "jobs");
        Assert.Equal(1, verbose.ExitCode);
        Assert.StartsWith("error: cannot connect to PostgreSQL at 127.0.0.1:1", verbose.Stderr, StringComparison.Ordinal);
        Assert.Contains("   at ", verbose.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(password, verbose.Stderr, StringComparison.Ordinal);
        Assert.Equal(0L, await JobCountAsync());
    }

    [Fact]
    public async Task Verbose_shows_the_full_exception()
    {
        var result = await RunWithAppAsync("defer", "sum", "[1]", "--verbose");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("error: The job arguments must be a JSON object", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("System.ArgumentException", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Usage_errors_exit_2_with_a_pointer_to_help()
    {
        var result = await RunAsync("defer");
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("procrastinate defer --help", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);

        var unknownFlag = await RunAsync("jobs", "--no-such-flag");
        Assert.Equal(2, unknownFlag.ExitCode);
        Assert.Contains("--no-such-flag", unknownFlag.Stderr, StringComparison.Ordinal);

        var badNumber = await RunAsync("jobs", "--limit", "many");
        Assert.Equal(2, badNumber.ExitCode);
    }
}
