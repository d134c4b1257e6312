using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary>Finding the user's App: --app / PROCRASTINATE_APP, with or without a member, and every way it can go wrong.</summary>
public sealed class AppLoadingTests(DatabaseFixture database) : CliTest(database), IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task The_single_App_of_the_assembly_is_found_and_its_tasks_registered()
    {
        var result = await RunAsync("--app", Tool.TestAppDll, "healthchecks");
        AssertOk(result);
        Assert.Contains("App: OK - Procrastinate.Cli.TestApp.dll:Procrastinate.Cli.TestApp.Tasks.App", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_named_member_is_used()
    {
        var id = long.Parse((await RunAsync("--app", $"{Tool.TestAppDll}:Procrastinate.Cli.TestApp.Tasks.App", "defer", "sum", """{"a": 1, "b": 2}""")).Stdout.Trim(),
            System.Globalization.CultureInfo.InvariantCulture);
        // The task's defaults come from the app: queue "sums".
        Assert.Equal("sums", (await JobRowAsync(id))["queue_name"]);
    }

    [Fact]
    public async Task A_named_type_with_one_App_member_is_used()
    {
        var result = await RunAsync("--app", $"{Tool.TestAppDll}:Procrastinate.Cli.TestApp.Tasks", "healthchecks");
        AssertOk(result);
        Assert.Contains("Tasks.App", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_App_of_an_assembly_with_several_is_chosen_by_name()
    {
        var result = await RunAsync("--app", $"{Tool.TestHostDll}:Procrastinate.Cli.TestHost.Apps.Reports", "defer", "report", "{}");
        AssertOk(result);
        var id = long.Parse(result.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("reports", (await JobRowAsync(id))["queue_name"]);
    }

    [Fact]
    public async Task The_apps_own_dependencies_resolve_in_its_load_context()
    {
        // The sum task writes through Procrastinate.Cli.TestLib, which only the app's folder has.
        var directory = NewDirectory();
        var defer = new CliRun("defer", "sum", """{"a": 20, "b": 22}""");
        defer.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        AssertOk(await RunAsync(defer));
        var worker = new CliRun("worker", "--queues", "sums", "--one-shot") { WorkingDirectory = directory };
        worker.Environment["PROCRASTINATE_APP"] = Tool.TestAppDll;
        AssertOk(await RunAsync(worker));
        Assert.Equal("42", await File.ReadAllTextAsync(Path.Combine(directory, "myfile")));
    }

    [Fact]
    public async Task A_missing_file_is_one_clear_line()
    {
        var missing = Path.Combine(NewDirectory(), "MyCode.dll");
        AssertError(await RunAsync("--app", missing, "jobs"), 1, "--app:", "MyCode.dll", "does not exist");

        var run = new CliRun("jobs");
        run.Environment["PROCRASTINATE_APP"] = missing;
        AssertError(await RunAsync(run), 1, "PROCRASTINATE_APP:", "does not exist");
    }

    [Fact]
    public async Task A_directory_or_a_file_that_is_not_an_assembly_is_refused()
    {
        var directory = NewDirectory();
        AssertError(await RunAsync("--app", directory, "jobs"), 1, "is a directory");
        var text = Path.Combine(directory, "notes.dll");
        await File.WriteAllTextAsync(text, "not an assembly");
        AssertError(await RunAsync("--app", text, "jobs"), 1, "is not a .NET assembly");
    }

    [Fact]
    public async Task A_missing_member_names_the_App_members_there()
    {
        AssertError(await RunAsync("--app", $"{Tool.TestAppDll}:Procrastinate.Cli.TestApp.Tasks.Nope", "jobs"), 1,
            "has no static field or property 'Nope'", "its App members: App");
        AssertError(await RunAsync("--app", $"{Tool.TestAppDll}:Procrastinate.Cli.TestApp.Nope.App", "jobs"), 1,
            "has no type Procrastinate.Cli.TestApp.Nope", "Procrastinate.Cli.TestApp.Tasks.App");
    }

    [Fact]
    public async Task A_member_that_is_not_an_App_is_refused()
    {
        AssertError(await RunAsync("--app", $"{Tool.TestAppDll}:Procrastinate.Cli.TestApp.Tasks.Sum", "jobs"), 1,
            "Procrastinate.Cli.TestApp.Tasks.Sum", "not a Procrastinate.App");
    }

    [Fact]
    public async Task An_assembly_without_an_App_is_refused()
    {
        AssertError(await RunAsync("--app", Tool.TestLibDll, "jobs"), 1,
            "Procrastinate.Cli.TestLib.dll has no public static field or property of type Procrastinate.App");
    }

    [Fact]
    public async Task An_assembly_with_several_Apps_is_ambiguous_and_lists_them()
    {
        AssertError(await RunAsync("--app", Tool.TestHostDll, "jobs"), 1,
            "several public static App members", "Procrastinate.Cli.TestHost.Apps.Main", "Procrastinate.Cli.TestHost.Apps.Reports");
    }

    [Fact]
    public async Task An_App_whose_initializer_throws_says_why()
    {
        AssertError(await RunAsync("--app", $"{Tool.TestHostDll}:Procrastinate.Cli.TestHost.Broken.App", "jobs"), 1,
            "InvalidOperationException: the broken app refuses to start");
    }

    [Fact]
    public async Task The_apps_own_connection_is_used_and_a_different_connection_string_is_refused()
    {
        var pinned = $"{Tool.TestHostDll}:Procrastinate.Cli.TestHost.Pinned.App";
        AssertError(await RunAsync("--app", pinned, "jobs"), 1, "cannot connect to PostgreSQL at 127.0.0.1:1, database 'pinned'");
        AssertError(await RunAsync("--app", pinned, "--connection-string", ConnectionString, "jobs"), 2,
            "connects to 127.0.0.1:1, database 'pinned'", "given by --connection-string");
    }

    [Fact]
    public async Task Database_commands_work_without_any_app()
    {
        AssertOk(await RunAsync("jobs"));
        var result = await RunAsync("healthchecks");
        AssertOk(result);
        Assert.Contains("App: none loaded", result.Stdout, StringComparison.Ordinal);
    }
}
