using System.Globalization;
using System.Text.Json;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>jobs</c>, <c>queues</c>, <c>tasks</c>, <c>locks</c>: tables for people, JSON with Procrastinate's field names for scripts.</summary>
public sealed class ListingTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private long _a, _b, _c;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _a = await DeferAsync("sum", """{"a": 3, "b": 5}""", "--lock", "L1", "--queueing-lock", "Q1", "--priority", "2");
        _b = await DeferAsync("count", """{"n": 1}""", "--lock", "L1");
        _c = await DeferAsync("sum", """{"a": 1, "b": 1}""", "--queue", "other");
        AssertOk(await RunAsync("cancel", _c.ToString(CultureInfo.InvariantCulture)));
    }

    private static JsonElement[] Parse(CliResult result)
    {
        AssertOk(result);
        return [.. JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray()];
    }

    [Fact]
    public async Task Jobs_json_has_procrastinates_fields_and_args_as_json()
    {
        var jobs = Parse(await RunAsync("jobs", "--json"));
        Assert.Equal([_a, _b, _c], jobs.Select(j => j.GetProperty("id").GetInt64()));
        var first = jobs[0];
        Assert.Equal(
            ["id", "queue_name", "task_name", "priority", "lock", "queueing_lock", "args", "status", "scheduled_at", "attempts", "abort_requested", "worker_id"],
            first.EnumerateObject().Select(p => p.Name));
        Assert.Equal("sums", first.GetProperty("queue_name").GetString());
        Assert.Equal("sum", first.GetProperty("task_name").GetString());
        Assert.Equal(2, first.GetProperty("priority").GetInt32());
        Assert.Equal("L1", first.GetProperty("lock").GetString());
        Assert.Equal("Q1", first.GetProperty("queueing_lock").GetString());
        Assert.Equal(JsonValueKind.Object, first.GetProperty("args").ValueKind);
        Assert.Equal(3, first.GetProperty("args").GetProperty("a").GetInt32());
        Assert.Equal("todo", first.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("scheduled_at").ValueKind);
        Assert.Equal(0, first.GetProperty("attempts").GetInt32());
        Assert.False(first.GetProperty("abort_requested").GetBoolean());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("worker_id").ValueKind);
        Assert.Equal("cancelled", jobs[2].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Jobs_filters()
    {
        static long[] Ids(JsonElement[] jobs) => [.. jobs.Select(j => j.GetProperty("id").GetInt64())];
        Assert.Equal([_c], Ids(Parse(await RunAsync("jobs", "--json", "--queue", "other"))));
        Assert.Equal([_b], Ids(Parse(await RunAsync("jobs", "--json", "--task", "count"))));
        Assert.Equal([_c], Ids(Parse(await RunAsync("jobs", "--json", "--status", "cancelled"))));
        Assert.Equal([_a, _b], Ids(Parse(await RunAsync("jobs", "--json", "--lock", "L1"))));
        Assert.Equal([_a], Ids(Parse(await RunAsync("jobs", "--json", "--queueing-lock", "Q1"))));
        Assert.Equal([_b], Ids(Parse(await RunAsync("jobs", "--json", "--id", _b.ToString(CultureInfo.InvariantCulture)))));
        Assert.Empty(Parse(await RunAsync("jobs", "--json", "--worker-id", "12345")));
        Assert.Equal([_a], Ids(Parse(await RunAsync("jobs", "--json", "--limit", "1"))));
        Assert.Equal([_b], Ids(Parse(await RunAsync("jobs", "--json", "--limit", "1", "--after", _a.ToString(CultureInfo.InvariantCulture)))));
        Assert.Equal([_c, _b], Ids(Parse(await RunAsync("jobs", "--json", "--limit", "2", "--newest-first"))));
    }

    [Fact]
    public async Task Bad_filters_are_one_line()
    {
        AssertError(await RunAsync("jobs", "--status", "pending"), 2, "--status: 'pending' is not a status");
        AssertError(await RunAsync("jobs", "--limit", "0"), 2, "--limit: 0 is not between 1 and 10000");
    }

    [Fact]
    public async Task Jobs_table_for_people()
    {
        var result = await RunAsync("jobs");
        AssertOk(result);
        Assert.Contains("Task", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("""{"a": 3, "b": 5}""", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("cancelled", result.Stdout, StringComparison.Ordinal);

        var page = await RunAsync("jobs", "--limit", "2");
        Assert.Contains($"the next page: --after {_b}", page.Stdout, StringComparison.Ordinal);
        Assert.Equal("No jobs.", (await RunAsync("jobs", "--queue", "empty")).Stdout.Trim());
    }

    [Fact]
    public async Task Queues_tasks_and_locks_count_per_status()
    {
        var queues = Parse(await RunAsync("queues", "--json"));
        Assert.Equal(["counts", "other", "sums"], queues.Select(q => q.GetProperty("name").GetString()).Order());
        Assert.Equal(
            ["name", "jobs_count", "todo", "doing", "succeeded", "failed", "cancelled", "aborted"],
            queues[0].EnumerateObject().Select(p => p.Name));
        var other = queues.Single(q => q.GetProperty("name").GetString() == "other");
        Assert.Equal(1, other.GetProperty("jobs_count").GetInt64());
        Assert.Equal(1, other.GetProperty("cancelled").GetInt64());

        var tasks = Parse(await RunAsync("tasks", "--json"));
        var sum = tasks.Single(t => t.GetProperty("name").GetString() == "sum");
        Assert.Equal(2, sum.GetProperty("jobs_count").GetInt64());
        Assert.Equal(1, sum.GetProperty("todo").GetInt64());

        var locks = Parse(await RunAsync("locks", "--json"));
        var l1 = Assert.Single(locks);
        Assert.Equal("L1", l1.GetProperty("name").GetString());
        Assert.Equal(2, l1.GetProperty("todo").GetInt64());

        var filtered = Parse(await RunAsync("tasks", "--json", "--status", "cancelled"));
        Assert.Equal("sum", Assert.Single(filtered).GetProperty("name").GetString());
        Assert.Equal(["sums"], Parse(await RunAsync("queues", "--json", "--task", "sum", "--status", "todo")).Select(q => q.GetProperty("name").GetString()));
        Assert.Equal(["counts"], Parse(await RunAsync("queues", "--json", "--lock", "L1", "--queue", "counts")).Select(q => q.GetProperty("name").GetString()));

        var table = await RunAsync("queues");
        AssertOk(table);
        Assert.Contains("Succeeded", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("other", table.Stdout, StringComparison.Ordinal);
        Assert.Equal("No locks.", (await RunAsync("locks", "--queue", "other")).Stdout.Trim());
    }
}
