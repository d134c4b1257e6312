using System.Globalization;
using System.Text.Json;
using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>shell</c>: the admin prompt driven through piped stdin, and its one-command forms.</summary>
public sealed class ShellTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    private Task<CliResult> ShellAsync(string input, params string[] args)
    {
        var run = new CliRun(["shell", .. args]) { Stdin = input };
        run.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        return RunAsync(run);
    }

    [Fact]
    public async Task Runs_each_line_as_a_command_until_exit()
    {
        var result = await ShellAsync("defer sum '{\"a\": 3, \"b\": 5}'\njobs --json\nqueues\nexit\njobs\n");
        AssertOk(result);
        Assert.StartsWith("procrastinate> ", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"task_name\": \"sum\"", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Succeeded", result.Stdout, StringComparison.Ordinal);
        // Three commands and exit: four prompts; the line after exit is not run.
        Assert.Equal(4, result.Stdout.Split("procrastinate> ").Length - 1);
        Assert.Equal(1L, await JobCountAsync());
    }

    [Fact]
    public async Task An_error_is_one_line_and_the_shell_goes_on()
    {
        var id = await DeferAsync("sum", """{"a": 3, "b": 5}""");
        var result = await ShellAsync($"cancel 987654\nbogus\ndefer sum '{{\"a\": 1\ncancel {id}\n");
        AssertOk(result);
        Assert.Contains("error: no job #987654", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("error: Unrecognized command or argument 'bogus'", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("error: unterminated ' quote.", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"#{id} sum on sums - [cancelled]", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(1L, await JobCountAsync());
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task End_of_input_leaves_with_the_last_commands_exit_code()
    {
        var failing = await ShellAsync("cancel 987654\n");
        Assert.Equal(1, failing.ExitCode);
        var fine = await ShellAsync("jobs\n");
        AssertOk(fine);
        Assert.Contains("No jobs.", fine.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_commands_and_help_command_its_flags()
    {
        var result = await ShellAsync("help\nhelp retry\n");
        AssertOk(result);
        foreach (var command in new[] { "defer", "jobs", "queues", "tasks", "locks", "workers", "cancel", "abort", "retry", "delete", "schema", "healthchecks", "exit" })
            Assert.Contains($"  {command} ", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("  worker ", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("--priority", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_and_global_flags_are_refused_inside()
    {
        var result = await ShellAsync($"worker --one-shot\njobs --app {Tool.TestAppDll}\n");
        Assert.Contains("error: 'worker' is not available in the shell.", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("error: --app apply to the whole shell", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_command_with_c_or_trailing_words()
    {
        var id = await DeferAsync("fail", """{"message": "x"}""");
        await Database.ExecAsync("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = $1", id);

        var withC = await ShellAsync("", "-c", "jobs --status failed --json");
        AssertOk(withC);
        Assert.DoesNotContain("procrastinate> ", withC.Stdout, StringComparison.Ordinal);
        Assert.Equal(id, JsonDocument.Parse(withC.Stdout).RootElement.EnumerateArray().Single().GetProperty("id").GetInt64());

        var withWords = await ShellAsync("", "jobs", "--status", "failed", "--json");
        AssertOk(withWords);
        Assert.Equal(withC.Stdout, withWords.Stdout);

        var failing = await ShellAsync("", "-c", "delete 987654");
        AssertError(failing, 1, "no job #987654");
        var quoted = await ShellAsync("", "-c", "defer sum '{\"a\": 1, \"b\": 41}'");
        AssertOk(quoted);
        var deferred = long.Parse(quoted.Stdout.Trim(), CultureInfo.InvariantCulture);
        Assert.Equal("""{"a": 1, "b": 41}""", (await JobRowAsync(deferred))["args"]?.ToString());
    }
}
