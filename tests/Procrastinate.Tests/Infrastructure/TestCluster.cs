using System.Diagnostics;
using Npgsql;

namespace Procrastinate.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL server the tests use: <c>PROCRASTINATE_TEST_DATABASE_URL</c> when set, otherwise
/// a private cluster started by <c>scripts/postgres.sh</c> (which installs PostgreSQL when missing).
/// Each test class gets its own database, created from a template that already holds the schema.
/// </summary>
public static class TestCluster
{
    /// <summary>One template per test process, so concurrent test runs on one server do not collide.</summary>
    public static readonly string TemplateDatabase = $"procrastinate_test_template_{Environment.ProcessId}";
    private static readonly Lazy<Task<string>> Server = new(StartAsync);
    private static readonly SemaphoreSlim CreateGate = new(1, 1);

    /// <summary>Connection string of the server's maintenance database.</summary>
    public static Task<string> AdminConnectionStringAsync() => Server.Value;

    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Procrastinate.slnx")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Could not find the repository root (Procrastinate.slnx).");
    }

    private static async Task<string> StartAsync()
    {
        var url = Environment.GetEnvironmentVariable("PROCRASTINATE_TEST_DATABASE_URL");
        if (string.IsNullOrWhiteSpace(url))
        {
            var psi = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot, "scripts", "postgres.sh")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"scripts/postgres.sh failed: {await stderr}");
            url = (await stdout).Trim();
        }
        var admin = NpgsqlConnector.NormalizeConnectionString(url);

        // A fresh template with the schema applied, once per test run.
        await using var ds = NpgsqlDataSource.Create(admin);
        await ExecAsync(ds, $"DROP DATABASE IF EXISTS {TemplateDatabase} WITH (FORCE)");
        await ExecAsync(ds, $"CREATE DATABASE {TemplateDatabase}");
        var templateCs = WithDatabase(admin, TemplateDatabase);
        await using (var app = new App(new NpgsqlConnector(templateCs)))
            await app.Schema.ApplyAsync();
        NpgsqlConnection.ClearAllPools();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            // Best effort: a template left by a killed run is dropped by the next run with the same pid, or by hand.
            using var cleanup = NpgsqlDataSource.Create(admin);
            using var cmd = cleanup.CreateCommand($"DROP DATABASE IF EXISTS {TemplateDatabase} WITH (FORCE)");
            try { cmd.ExecuteNonQuery(); } catch (NpgsqlException) { }
        };
        return admin;
    }

    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database }.ConnectionString;

    /// <summary>Creates a new database (with the schema, unless <paramref name="withSchema"/> is false) and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix, bool withSchema = true)
    {
        var admin = await AdminConnectionStringAsync();
        var raw = $"t_{Sanitize(prefix)}_{Guid.NewGuid():N}";
        var name = raw[..Math.Min(raw.Length, 40)].ToLowerInvariant();
        await using var ds = NpgsqlDataSource.Create(admin);
        // CREATE DATABASE ... TEMPLATE needs the template to have no other session.
        await CreateGate.WaitAsync();
        try
        {
            await ExecAsync(ds, withSchema ? $"CREATE DATABASE {name} TEMPLATE {TemplateDatabase}" : $"CREATE DATABASE {name}");
        }
        finally
        {
            CreateGate.Release();
        }
        return WithDatabase(admin, name);
    }

    public static async Task DropDatabaseAsync(string connectionString)
    {
        var admin = await AdminConnectionStringAsync();
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var ds = NpgsqlDataSource.Create(admin);
        await ExecAsync(ds, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    }

    private static string Sanitize(string s) => new([.. s.Where(char.IsLetterOrDigit).Take(20)]);

    private static async Task ExecAsync(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
