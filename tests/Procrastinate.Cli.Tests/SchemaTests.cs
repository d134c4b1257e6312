using Procrastinate.Cli.Tests.Infrastructure;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests;

/// <summary><c>schema --apply | --read | --migrate</c> and <c>healthchecks</c>, from an empty database on.</summary>
public sealed class SchemaTests(EmptyDatabaseFixture database) : CliTest(database), IClassFixture<EmptyDatabaseFixture>
{
    // The database starts without the schema; the test installs it.
    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task From_an_empty_database_to_a_healthy_one()
    {
        var unhealthy = await RunAsync("healthchecks");
        Assert.Equal(1, unhealthy.ExitCode);
        Assert.Contains("FAILED", unhealthy.Stdout, StringComparison.Ordinal);
        Assert.Contains("schema is not installed", unhealthy.Stdout, StringComparison.Ordinal);

        AssertError(await RunAsync("jobs"), 1, "the Procrastinate schema is missing", "procrastinate schema --apply");
        AssertError(await RunAsync("schema", "--migrate"), 1, "no Procrastinate schema", "schema --apply");

        var installed = await RunAsync("schema", "--apply");
        AssertOk(installed);
        Assert.StartsWith("Schema installed (procrastinate-3.9.0)", installed.Stdout, StringComparison.Ordinal);

        var again = await RunAsync("schema", "--apply");
        AssertOk(again);
        Assert.Equal("Schema already installed and up to date; nothing changed.", again.Stdout.Trim());

        var byDefault = await RunAsync("schema");
        AssertOk(byDefault);
        Assert.Contains("nothing changed", byDefault.Stdout, StringComparison.Ordinal);

        var migrate = await RunAsync("schema", "--migrate");
        AssertOk(migrate);
        Assert.StartsWith("Nothing to migrate: the schema is up to date", migrate.Stdout, StringComparison.Ordinal);
        foreach (var name in SchemaManager.KnownMigrations)
            Assert.Contains(name, migrate.Stdout, StringComparison.Ordinal);

        // To the lean layout and back; --apply alone keeps the layout there is.
        var toLean = await RunAsync("schema", "--apply", "--layout", "lean");
        AssertOk(toLean);
        Assert.Equal("Schema already installed and up to date. Converted to the lean layout.", toLean.Stdout.Trim());
        Assert.Contains("nothing changed", (await RunAsync("schema", "--apply")).Stdout, StringComparison.Ordinal);
        Assert.Equal(1L, await database.ScalarAsync<long>($"SELECT count(*) FROM {SchemaManager.LedgerTable} WHERE name = '{SchemaManager.LeanLayoutMarker}'"));
        var back = await RunAsync("schema", "--apply", "--layout", "compatible");
        AssertOk(back);
        Assert.Equal("Schema already installed and up to date. Converted to the Procrastinate-compatible layout.", back.Stdout.Trim());
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM {SchemaManager.LedgerTable} WHERE name = '{SchemaManager.LeanLayoutMarker}'"));
        AssertError(await RunAsync("schema", "--apply", "--layout", "fast"), 2, "fast");
        AssertError(await RunAsync("schema", "--migrate", "--layout", "lean"), 2, "--layout goes with --apply or --read");

        var healthy = await RunAsync("healthchecks");
        AssertOk(healthy);
        Assert.Contains("App: none loaded", healthy.Stdout, StringComparison.Ordinal);
        Assert.Contains("OK - The database is reachable and the schema is installed and up to date.", healthy.Stdout, StringComparison.Ordinal);

        var withApp = await RunWithAppAsync("healthchecks");
        AssertOk(withApp);
        Assert.Contains("App: OK - Procrastinate.Cli.TestApp.dll:Procrastinate.Cli.TestApp.Tasks.App", withApp.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_prints_the_sql_without_a_database()
    {
        var result = await Tool.RunAsync("Host=127.0.0.1;Port=1;Database=nowhere", "schema", "--read");
        AssertOk(result);
        Assert.StartsWith(SchemaManager.ReadSchemaSql(), result.Stdout, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE procrastinate_jobs", result.Stdout, StringComparison.Ordinal);
        foreach (var migration in SchemaManager.KnownMigrations)
            Assert.Contains($"-- .NET migration {migration}", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE procrastinate_dotnet_workers", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("layout conversion", result.Stdout, StringComparison.Ordinal);

        var lean = await Tool.RunAsync("Host=127.0.0.1;Port=1;Database=nowhere", "schema", "--read", "--layout", "lean");
        AssertOk(lean);
        Assert.EndsWith("-- .NET layout conversion to lean\n" + SchemaManager.ReadLayoutSql(SchemaLayout.Lean), lean.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_one_action_at_a_time()
    {
        AssertError(await RunAsync("schema", "--apply", "--read"), 2, "choose one of --apply, --read, --migrate");
    }

    [Fact]
    public async Task Healthchecks_fail_when_the_server_cannot_be_reached()
    {
        var result = await Tool.RunAsync("Host=127.0.0.1;Port=1;Database=nowhere;Timeout=5", "healthchecks");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Database (127.0.0.1:1, database 'nowhere'): FAILED - The database cannot be reached", result.Stdout, StringComparison.Ordinal);
    }
}
