using System.Globalization;
using System.Text.Json;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>worker</c>: its flags, its progress display, and what it needs.</summary>
public sealed class WorkerTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private CliRun Worker(string directory, params string[] args)
    {
        var run = new CliRun(["worker", .. args]) { WorkingDirectory = directory };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        return run;
    }

    [Fact]
    public async Task A_one_shot_worker_shows_jobs_left_and_the_rate_on_stderr_only()
    {
        for (var n = 1; n <= 20; n++)
            await DeferAsync("count", $$"""{"n": {{n}}}""");
        var directory = NewDirectory();

        var result = await RunAsync(Worker(directory, "-q", "counts", "--one-shot", "-c", "4"));
        AssertOk(result);
        Assert.Equal("", result.Stdout);
        Assert.Contains("concurrency 4, prefetch adaptive, claims in flight 1, durable claims on,", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("progress: 20 job(s) left in counts", result.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"progress: done: 20 job\(s\) in [0-9.]+ s \([0-9.]+ jobs/s\), 0 left in counts", result.Stderr);
        Assert.Equal(20, (await File.ReadAllLinesAsync(Path.Combine(directory, "myfile"))).Length);
    }

    [Fact]
    public async Task Flags_reach_the_worker()
    {
        await DeferAsync("count", """{"n": 1}""");
        await DeferAsync("count", """{"n": 2}""");
        var result = await RunAsync(Worker(NewDirectory(), "--name", "w-flags", "--queues", "counts,sums", "--concurrency", "3", "--prefetch-jobs", "5",
            "--claims-in-flight", "2", "--no-durable-claims",
            "--fetch-job-polling-interval", "0.5", "--abort-job-polling-interval", "0.25", "--shutdown-graceful-timeout", "7",
            "--no-listen-notify", "--delete-jobs", "successful", "--vacuum-after-claimed-jobs", "1000", "--one-shot"));
        AssertOk(result);
        Assert.Contains("Starting worker 'w-flags'", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("on counts, sums: concurrency 3, prefetch 5, claims in flight 2, durable claims off,", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("listen/notify off", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("graceful timeout 7 s, delete jobs successful, vacuum after 1000 claimed jobs, one-shot on", result.Stderr, StringComparison.Ordinal);
        // --delete-jobs successful: the succeeded jobs are gone.
        Assert.Equal(0L, await JobCountAsync());
    }

    [Fact]
    public async Task Repeated_queue_flags_add_up_and_other_queues_are_left_alone()
    {
        var sum = await DeferAsync("sum", """{"a": 1, "b": 2}""");
        var count = await DeferAsync("count", """{"n": 1}""");
        var sleep = await DeferAsync("sleep", """{"ms": 1}""");
        AssertOk(await RunAsync(Worker(NewDirectory(), "-q", "sums", "-q", "sleeps", "--one-shot")));
        Assert.Equal("succeeded", await StatusAsync(sum));
        Assert.Equal("succeeded", await StatusAsync(sleep));
        Assert.Equal("todo", await StatusAsync(count));
    }

    [Fact]
    public async Task Log_level_warning_hides_the_workers_information_lines()
    {
        var result = await RunAsync(Worker(NewDirectory(), "-q", "sums", "--one-shot", "--log-level", "warning"));
        AssertOk(result);
        Assert.DoesNotContain("Starting worker", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_needs_an_app()
    {
        AssertError(await RunAsync("worker", "--one-shot"), 1, "the worker needs the app", "PROCRASTINATE_APP");
    }

    [Theory]
    [InlineData("--concurrency", "0", "Concurrency must be at least 1")]
    [InlineData("--delete-jobs", "sometimes", "--delete-jobs: 'sometimes' is not one of never, successful, always")]
    [InlineData("--fetch-job-polling-interval", "-1", "not a number of seconds")]
    [InlineData("--vacuum-after-claimed-jobs", "-5", "VacuumAfterClaimedJobs cannot be negative")]
    [InlineData("--prefetch-jobs", "-1", "PrefetchJobs cannot be negative")]
    [InlineData("--claims-in-flight", "5", "ClaimsInFlight must be from 1 to 4")]
    public async Task Bad_worker_flags_are_one_line(string flag, string value, string message)
    {
        var result = await RunAsync(Worker(NewDirectory(), "--one-shot", flag, value));
        Assert.NotEqual(0, result.ExitCode);
        AssertError(result, result.ExitCode, message);
    }

    [Fact]
    public async Task Listen_notify_and_no_listen_notify_conflict()
    {
        AssertError(await RunAsync(Worker(NewDirectory(), "--one-shot", "--listen-notify", "--no-listen-notify")), 2, "cannot be combined");
    }

    [Fact]
    public async Task A_running_worker_is_listed_by_workers_and_stops_on_SIGINT()
    {
        await using var worker = CliProcess.Start(ConnectionString, Worker(NewDirectory(), "--name", "listed", "-q", "sums", "-c", "2"));
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers") == 1,
            TimeSpan.FromSeconds(60), () => worker.Stderr);

        var listing = await RunAsync("workers", "--json");
        AssertOk(listing);
        var row = JsonDocument.Parse(listing.Stdout).RootElement.EnumerateArray().Single();
        Assert.Equal("listed", row.GetProperty("name").GetString());
        Assert.Equal(["sums"], row.GetProperty("queues").EnumerateArray().Select(q => q.GetString()));
        Assert.Equal(2, row.GetProperty("concurrency").GetInt32());
        Assert.Equal(worker.Pid, row.GetProperty("pid").GetInt32());

        var table = await RunAsync("workers");
        AssertOk(table);
        Assert.Contains("listed", table.Stdout, StringComparison.Ordinal);
        Assert.Contains(worker.Pid.ToString(CultureInfo.InvariantCulture), table.Stdout, StringComparison.Ordinal);

        worker.Signal(CliProcess.SIGINT);
        Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("No workers.", (await RunAsync("workers")).Stdout.Trim());
    }

    [Fact]
    public void The_tool_ships_with_thread_pool_threads_that_do_not_spin()
    {
        // What the runtime reads at start: the built tool's runtimeconfig.json.
        var config = Path.ChangeExtension(Tool.Dll, ".runtimeconfig.json");
        using var json = JsonDocument.Parse(File.ReadAllText(config));
        var properties = json.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.Equal(0, properties.GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
    }
}
