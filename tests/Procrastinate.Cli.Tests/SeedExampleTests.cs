using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary>
/// The seed's command-line example, with the .NET app path:
/// <c>export PROCRASTINATE_APP=...; procrastinate defer sum '{"a": 3, "b": 5}'; procrastinate worker -q sums</c>.
/// </summary>
public sealed class SeedExampleTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private CliRun Seed(string directory, params string[] args)
    {
        var run = new CliRun(args) { WorkingDirectory = directory };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        return run;
    }

    [Fact]
    public async Task Defer_then_one_shot_worker_writes_8_to_myfile()
    {
        var directory = NewDirectory();
        var defer = await RunAsync(Seed(directory, "defer", "sum", """{"a": 3, "b": 5}"""));
        AssertOk(defer);
        var id = long.Parse(defer.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("sums", (await JobRowAsync(id))["queue_name"]);

        var worker = await RunAsync(Seed(directory, "worker", "-q", "sums", "--one-shot"));
        AssertOk(worker);
        Assert.Equal("8", await File.ReadAllTextAsync(Path.Combine(directory, "myfile")));
        Assert.Equal("succeeded", await StatusAsync(id));
    }

    [Fact]
    public async Task Waiting_worker_runs_the_job_and_stops_cleanly_on_SIGTERM()
    {
        var directory = NewDirectory();
        AssertOk(await RunAsync(Seed(directory, "defer", "sum", """{"a": 3, "b": 5}""")));

        await using var worker = CliProcess.Start(ConnectionString, Seed(directory, "worker", "-q", "sums"));
        var file = Path.Combine(directory, "myfile");
        await Eventually.TrueAsync(async () => File.Exists(file) && await File.ReadAllTextAsync(file) == "8",
            TimeSpan.FromSeconds(60), () => $"myfile never held 8\n{worker.Stderr}");
        Assert.False(worker.HasExited, worker.Stderr);

        worker.Signal(CliProcess.SIGTERM);
        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exitCode == 0, $"exit {exitCode}\n{worker.Stderr}");
        Assert.Contains("Worker 'worker' stopped", worker.Stderr, StringComparison.Ordinal);
        Assert.Contains("it ran 1 job(s)", worker.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("error", worker.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
    }
}
