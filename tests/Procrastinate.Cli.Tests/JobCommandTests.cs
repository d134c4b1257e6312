using System.Globalization;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>cancel</c>, <c>abort</c>, <c>retry</c>, <c>delete</c> by job id.</summary>
public sealed class JobCommandTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private static string S(long id) => id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Cancel_a_waiting_job_then_nothing_left_to_cancel()
    {
        var id = await DeferAsync("sum", """{"a": 1, "b": 2}""");
        var result = await RunAsync("cancel", S(id));
        AssertOk(result);
        Assert.Equal($"#{id} sum on sums - [cancelled]", result.Stdout.Trim());
        Assert.Equal("cancelled", await StatusAsync(id));

        AssertError(await RunAsync("cancel", S(id)), 1, $"job #{id} is cancelled", "nothing was cancelled");
        AssertError(await RunAsync("cancel", "987654"), 1, "no job #987654");
    }

    [Fact]
    public async Task Cancel_with_delete_removes_the_job()
    {
        var id = await DeferAsync("sum", """{"a": 1, "b": 2}""");
        var result = await RunAsync("cancel", S(id), "--delete");
        AssertOk(result);
        Assert.Contains("deleted", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(0L, await JobCountAsync());
    }

    [Fact]
    public async Task Delete_a_finished_job_and_refuse_a_missing_one()
    {
        var id = await DeferAsync("sum", """{"a": 1, "b": 2}""");
        var result = await RunAsync("delete", S(id));
        AssertOk(result);
        Assert.Equal($"Job #{id} deleted.", result.Stdout.Trim());
        Assert.Equal(0L, await JobCountAsync());
        AssertError(await RunAsync("delete", S(id)), 1, $"no job #{id}", "nothing was deleted");
    }

    [Fact]
    public async Task Retry_a_failed_job()
    {
        var id = await DeferAsync("fail", """{"message": "boom"}""");
        AssertError(await RunAsync("retry", S(id)), 1, $"job #{id} was not retried");

        var worker = new CliRun("worker", "-q", "fails", "--one-shot") { WorkingDirectory = NewDirectory() };
        worker.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        AssertOk(await RunAsync(worker));
        Assert.Equal("failed", await StatusAsync(id));

        var result = await RunAsync("retry", S(id), "--queue", "replay", "--priority", "3", "--in", "1h");
        AssertOk(result);
        Assert.Equal($"#{id} fail on replay - [todo]", result.Stdout.Trim());
        var row = await JobRowAsync(id);
        Assert.Equal(3, row["priority"]);
        Assert.True(((DateTime)row["scheduled_at"]!).ToUniversalTime() > DateTime.UtcNow.AddMinutes(50));

        AssertError(await RunAsync("retry", "987654"), 1, "job #987654 was not retried");
    }

    [Fact]
    public async Task Abort_a_running_job()
    {
        var id = await DeferAsync("sleep", """{"ms": 600000}""");
        var run = new CliRun("worker", "-q", "sleeps", "--abort-job-polling-interval", "0.2") { WorkingDirectory = NewDirectory() };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        await using var worker = CliProcess.Start(ConnectionString, run);
        await Eventually.TrueAsync(async () => await StatusAsync(id) == "doing", TimeSpan.FromSeconds(60), () => worker.Stderr);

        var result = await RunAsync("abort", S(id));
        AssertOk(result);
        Assert.StartsWith($"#{id} sleep on sleeps - abort requested (now ", result.Stdout.Trim(), StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => await StatusAsync(id) == "aborted", TimeSpan.FromSeconds(60), () => worker.Stderr);

        AssertError(await RunAsync("abort", S(id)), 1, $"job #{id} is aborted", "nothing was aborted");
        worker.Signal(CliProcess.SIGTERM);
        Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Abort_a_waiting_job_cancels_it()
    {
        var id = await DeferAsync("sum", """{"a": 1, "b": 2}""");
        var result = await RunAsync("abort", S(id));
        AssertOk(result);
        Assert.Equal($"#{id} sum on sums - [cancelled]", result.Stdout.Trim());
    }
}
