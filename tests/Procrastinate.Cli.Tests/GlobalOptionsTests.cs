using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary>--version, --help, and running inside the user's own program with app.RunCliAsync(args).</summary>
public sealed class GlobalOptionsTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Version_names_the_tool_and_the_library()
    {
        var result = await RunAsync("--version");
        AssertOk(result);
        Assert.Matches(@"^procrastinate \S+ \(Procrastinate for \.NET \S+\)\s*$", result.Stdout);
    }

    [Fact]
    public async Task Help_lists_every_command()
    {
        var result = await RunAsync("--help");
        AssertOk(result);
        Assert.Contains("procrastinate [command] [options]", result.Stdout, StringComparison.Ordinal);
        foreach (var command in new[] { "defer", "worker", "schema", "healthchecks", "jobs", "queues", "tasks", "locks", "workers", "cancel", "abort", "retry", "delete", "shell" })
            Assert.Contains($"  {command}", result.Stdout, StringComparison.Ordinal);
        foreach (var flag in new[] { "--app", "--connection-string", "--log-level", "--verbose", "--version" })
            Assert.Contains(flag, result.Stdout, StringComparison.Ordinal);

        var worker = await RunAsync("worker", "--help");
        foreach (var flag in new[] { "-n, --name", "-q, --queues", "-c, --concurrency", "--prefetch-jobs", "--claims-in-flight", "--no-durable-claims", "--fetch-job-polling-interval", "--abort-job-polling-interval",
                     "--shutdown-graceful-timeout", "--one-shot", "--listen-notify", "--no-listen-notify", "--delete-jobs", "--vacuum-after-claimed-jobs" })
            Assert.Contains(flag, worker.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_log_level_that_does_not_exist_is_refused()
    {
        AssertError(await RunAsync("--log-level", "loud", "jobs"), 2, "--log-level: 'loud' is not a level");
    }

    [Fact]
    public async Task The_users_program_hosts_the_same_commands()
    {
        var directory = NewDirectory();
        var defer = await RunAsync(new CliRun("defer", "product", """{"a": 3, "b": 4}""") { Dll = Tool.TestHostDll });
        AssertOk(defer);
        var worker = await RunAsync(new CliRun("worker", "-q", "products", "--one-shot") { Dll = Tool.TestHostDll, WorkingDirectory = directory });
        AssertOk(worker);
        Assert.Equal("12", await File.ReadAllTextAsync(Path.Combine(directory, "myfile")));

        var jobs = await RunAsync(new CliRun("jobs", "--task", "product") { Dll = Tool.TestHostDll });
        Assert.Contains("succeeded", jobs.Stdout, StringComparison.Ordinal);

        // Its own app, no --app.
        var help = await RunAsync(new CliRun("--help") { Dll = Tool.TestHostDll });
        Assert.DoesNotContain("--app", help.Stdout, StringComparison.Ordinal);
        var app = await RunAsync(new CliRun("--app", Tool.TestAppDll, "jobs") { Dll = Tool.TestHostDll });
        Assert.Equal(2, app.ExitCode);

        // The program's app knows only its own tasks.
        AssertError(await RunAsync(new CliRun("defer", "sum", "{}") { Dll = Tool.TestHostDll }), 1, "task 'sum' is not registered in the program's app");
    }
}
