using System.Globalization;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>defer TASK [JSON]</c> and its flags.</summary>
public sealed class DeferTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Prints_only_the_job_id_and_stores_the_arguments()
    {
        var result = await RunWithAppAsync("defer", "sum", """{"a": 3, "b": 5}""");
        AssertOk(result);
        Assert.Matches(@"^\d+\s*$", result.Stdout);
        var row = await JobRowAsync(long.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture));
        Assert.Equal("sum", row["task_name"]);
        Assert.Equal("todo", row["status"]?.ToString());
        Assert.Equal("""{"a": 3, "b": 5}""", row["args"]?.ToString());
    }

    [Fact]
    public async Task Json_defaults_to_an_empty_object()
    {
        var id = await DeferAsync("other.task", "--unknown");
        Assert.Equal("{}", (await JobRowAsync(id))["args"]?.ToString());
    }

    [Fact]
    public async Task A_dash_reads_the_json_from_stdin()
    {
        var run = new CliRun("defer", "sum", "-") { Stdin = """{"a": 30, "b": 12}""" };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        var result = await RunAsync(run);
        AssertOk(result);
        Assert.Equal("""{"a": 30, "b": 12}""", (await JobRowAsync(long.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture)))["args"]?.ToString());
    }

    [Fact]
    public async Task Every_flag_reaches_the_job()
    {
        var id = await DeferAsync("sum", """{"a": 1, "b": 1}""", "--queue", "urgent", "--lock", "user-42", "--queueing-lock", "user-42-q",
            "--priority", "-7", "--at", "2030-01-02T03:04:05+02:00");
        var row = await JobRowAsync(id);
        Assert.Equal("urgent", row["queue_name"]);
        Assert.Equal("user-42", row["lock"]);
        Assert.Equal("user-42-q", row["queueing_lock"]);
        Assert.Equal(-7, row["priority"]);
        Assert.Equal(new DateTime(2030, 1, 2, 1, 4, 5, DateTimeKind.Utc), ((DateTime)row["scheduled_at"]!).ToUniversalTime());
    }

    [Theory]
    [InlineData("90", 90)]
    [InlineData("90s", 90)]
    [InlineData("5m", 300)]
    [InlineData("2h", 7200)]
    [InlineData("1h30m", 5400)]
    [InlineData("1:30:00", 5400)]
    public async Task In_accepts_seconds_time_spans_and_units(string delay, int seconds)
    {
        var before = DateTime.UtcNow;
        var id = await DeferAsync("sum", """{"a": 1, "b": 1}""", "--in", delay);
        var after = DateTime.UtcNow;
        var at = ((DateTime)(await JobRowAsync(id))["scheduled_at"]!).ToUniversalTime();
        Assert.InRange(at, before.AddSeconds(seconds).AddSeconds(-1), after.AddSeconds(seconds).AddSeconds(1));
    }

    [Fact]
    public async Task An_unknown_task_is_deferred_by_name_with_unknown()
    {
        var withApp = await DeferAsync("python.module.task", """{"x": 1}""", "--unknown", "--queue", "python");
        Assert.Equal("python.module.task", (await JobRowAsync(withApp))["task_name"]);

        var withoutApp = await RunAsync("defer", "python.module.task", "--unknown");
        AssertOk(withoutApp);
        var row = await JobRowAsync(long.Parse(withoutApp.Stdout.Trim(), CultureInfo.InvariantCulture));
        Assert.Equal("default", row["queue_name"]);
    }

    [Fact]
    public async Task A_taken_queueing_lock_fails_in_one_line_and_writes_nothing()
    {
        var first = await DeferAsync("sum", """{"a": 1, "b": 1}""", "--queueing-lock", "only-one");
        var second = await RunWithAppAsync("defer", "sum", """{"a": 2, "b": 2}""", "--queueing-lock", "only-one");
        AssertError(second, 1, "queueing lock only-one", "--ignore-already-enqueued");
        Assert.Equal(1L, await JobCountAsync());

        var ignored = await RunWithAppAsync("defer", "sum", """{"a": 2, "b": 2}""", "--queueing-lock", "only-one", "--ignore-already-enqueued");
        AssertOk(ignored);
        Assert.Equal(first.ToString(CultureInfo.InvariantCulture), ignored.Stdout.Trim());
        Assert.Equal(1L, await JobCountAsync());
    }

    [Fact]
    public async Task The_builtin_task_is_known_without_an_app()
    {
        var result = await RunAsync("defer", "builtin:procrastinate.builtin_tasks.remove_old_jobs", """{"max_hours": 72}""");
        AssertOk(result);
        Assert.Equal("builtin", (await JobRowAsync(long.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture)))["queue_name"]);
    }
}
