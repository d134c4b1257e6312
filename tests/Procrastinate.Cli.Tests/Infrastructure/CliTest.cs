using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests.Infrastructure;

/// <summary>A test class on its own database, emptied before each test.</summary>
public abstract class CliTest(DatabaseFixture database) : IAsyncLifetime, IDisposable
{
    private readonly List<string> _directories = [];

    protected DatabaseFixture Database => database;

    protected string ConnectionString => database.ConnectionString;

    public virtual Task InitializeAsync() => database.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var directory in _directories)
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>A fresh working directory for the tool (where the seed's task writes "myfile").</summary>
    protected string NewDirectory()
    {
        var directory = Directory.CreateTempSubdirectory("procrastinate-cli-").FullName;
        _directories.Add(directory);
        return directory;
    }

    protected Task<CliResult> RunAsync(params string[] args) => Tool.RunAsync(ConnectionString, args);

    protected Task<CliResult> RunWithAppAsync(params string[] args) => Tool.RunWithAppAsync(ConnectionString, args);

    protected Task<CliResult> RunAsync(CliRun run) => Tool.RunAsync(ConnectionString, run);

    protected Task<long> JobCountAsync() => database.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs");

    protected async Task<Dictionary<string, object?>> JobRowAsync(long id) =>
        (await database.QueryAsync("SELECT * FROM procrastinate_jobs WHERE id = $1", id)).Single();

    protected Task<string?> StatusAsync(long id) =>
        database.ScalarAsync<string?>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    /// <summary>Defers through the tool and returns the printed id.</summary>
    protected async Task<long> DeferAsync(params string[] args)
    {
        var result = await RunWithAppAsync(["defer", .. args]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return long.Parse(result.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A failed command: the exit code, one line on stderr starting with "error: " and containing each
    /// of <paramref name="contains"/>, nothing on stdout, and no stack trace.
    /// </summary>
    protected static void AssertError(CliResult result, int exitCode, params string[] contains)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}\n{result}");
        Assert.True(result.Stdout.Trim().Length == 0, $"expected nothing on stdout\n{result}");
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr\n{result}");
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        foreach (var text in contains)
            Assert.Contains(text, lines[0], StringComparison.Ordinal);
    }

    protected static void AssertOk(CliResult result) => Assert.True(result.ExitCode == 0, result.ToString());
}
