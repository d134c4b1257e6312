using System.Diagnostics;
using Npgsql;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>
/// A PostgreSQL cluster for this suite only, started with <c>scripts/postgres.sh</c> under its own
/// directory and port (<c>PROCRASTINATE_PG_DIR</c>, <c>PROCRASTINATE_PG_PORT</c>): the scenarios
/// restart it and terminate its backends, which must not disturb the other test projects.
/// Its server log is <c>&lt;dir&gt;/server.log</c>.
/// </summary>
/// <remarks>
/// Defaults: as root, <c>/var/tmp/procrastinate-reliability-&lt;cksum of the checkout path&gt;</c>,
/// otherwise <c>.pg/reliability</c> in the checkout; port 55000 + cksum % 1000 (the default
/// clusters use 54000-54999). <c>PROCRASTINATE_RELIABILITY_PG_DIR</c> and
/// <c>PROCRASTINATE_RELIABILITY_PG_PORT</c> override them.
/// </remarks>
public static class ReliabilityCluster
{
    private static readonly Lazy<Task<string>> Server = new(StartAsync);
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static FileStream? SuiteLock;

    public static string RepositoryRoot { get; } = FindRoot();

    public static string Directory { get; private set; } = "";

    public static int Port { get; private set; }

    public static string ServerLogPath => Path.Combine(Directory, "server.log");

    /// <summary>Connection string of the maintenance database, as superuser.</summary>
    public static Task<string> AdminConnectionStringAsync() => Server.Value;

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Procrastinate.slnx")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Could not find the repository root (Procrastinate.slnx).");
    }

    private static async Task<string> StartAsync()
    {
        // The same key as scripts/postgres.sh: POSIX cksum of the checkout's path.
        var (code, output, _) = await RunAsync("bash", ["-c", "printf '%s' \"$0\" | cksum", RepositoryRoot], null);
        if (code != 0)
            throw new InvalidOperationException("cksum failed");
        var key = long.Parse(output.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var isRoot = Environment.UserName == "root";
        Directory = Environment.GetEnvironmentVariable("PROCRASTINATE_RELIABILITY_PG_DIR") is { Length: > 0 } d ? d
            : isRoot ? $"/var/tmp/procrastinate-reliability-{key}"
            : Path.Combine(RepositoryRoot, ".pg", "reliability");
        Port = Environment.GetEnvironmentVariable("PROCRASTINATE_RELIABILITY_PG_PORT") is { Length: > 0 } p
            ? int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)
            : 55000 + (int)(key % 1000);

        // One run of the suite at a time per cluster: a second run (say, by hand while ./test.sh
        // runs) would restart the server under the first. Held until this process exits.
        System.IO.Directory.CreateDirectory(Directory);
        var lockPath = Path.Combine(Directory, "suite.lock");
        var waited = Stopwatch.StartNew();
        while (SuiteLock is null)
        {
            try
            {
                SuiteLock = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < TimeSpan.FromMinutes(30))
            {
                await Task.Delay(1000);
            }
        }
        var url = await ScriptAsync();
        var admin = FromUrl(url);
        await using var ds = NpgsqlDataSource.Create(admin);
        // Log lines say which role, database and program each error came from.
        foreach (var sql in new[]
        {
            "ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d %a: '",
            "ALTER SYSTEM SET log_min_messages = 'warning'",
            "ALTER SYSTEM SET log_min_error_statement = 'error'",
            "SELECT pg_reload_conf()",
        })
        {
            await using var cmd = ds.CreateCommand(sql);
            await cmd.ExecuteNonQueryAsync();
        }
        return admin;
    }

    private static string FromUrl(string url)
    {
        var uri = new Uri(url);
        return new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host, Port = uri.Port, Username = uri.UserInfo.Split(':')[0], Database = uri.AbsolutePath.Trim('/'),
            // Scenarios open many connections and restart the server: no stale pooled sockets between tests.
            Pooling = true, MaxPoolSize = 50, Timeout = 15,
        }.ConnectionString;
    }

    private static async Task<string> ScriptAsync(params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["PROCRASTINATE_PG_DIR"] = Directory,
            ["PROCRASTINATE_PG_PORT"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var (code, stdout, stderr) = await RunAsync("bash", [Path.Combine(RepositoryRoot, "scripts", "postgres.sh"), .. args], env);
        if (code != 0)
            throw new InvalidOperationException($"scripts/postgres.sh {string.Join(' ', args)} failed ({code}): {stderr}");
        return stdout.Trim();
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, string[] args, Dictionary<string, string>? env)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? [])
            psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Stops the server as a crash would (immediate shutdown: no checkpoint, and WAL not yet
    /// written is lost), and starts it again, which runs crash recovery.
    /// </summary>
    /// <returns>How long the server was unreachable, measured from the start of the stop.</returns>
    public static async Task<TimeSpan> CrashAndRestartAsync()
    {
        await Server.Value;
        var watch = Stopwatch.StartNew();
        await ScriptAsync("crash");
        await ScriptAsync();
        return watch.Elapsed;
    }

    /// <summary>Stops the server (fast shutdown: every session is terminated).</summary>
    public static async Task StopAsync()
    {
        await Server.Value;
        await ScriptAsync("stop");
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/>.</summary>
    public static async Task StartAgainAsync()
    {
        await Server.Value;
        await ScriptAsync();
    }

    /// <summary>Stops the server (fast shutdown: sessions are terminated), waits, and starts it again.</summary>
    /// <returns>How long the server was unreachable, measured from the start of the stop.</returns>
    public static async Task<TimeSpan> RestartAsync(TimeSpan extraDowntime)
    {
        await Server.Value;
        var watch = Stopwatch.StartNew();
        await ScriptAsync("stop");
        if (extraDowntime > TimeSpan.Zero)
            await Task.Delay(extraDowntime);
        await ScriptAsync();
        return watch.Elapsed;
    }

    /// <summary>
    /// A login role that must authenticate with a password (scram-sha-256 from 127.0.0.1, via a
    /// line added at the top of pg_hba.conf), unlike the trusted superuser of the cluster.
    /// </summary>
    public static async Task EnsurePasswordRoleAsync(string role, string password)
    {
        var admin = await AdminConnectionStringAsync();
        await using var ds = NpgsqlDataSource.Create(admin);
        await using (var cmd = ds.CreateCommand($"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF;
            END $$;
            ALTER ROLE {role} PASSWORD '{password}';
            """))
            await cmd.ExecuteNonQueryAsync();
        string hba;
        await using (var cmd = ds.CreateCommand("SHOW hba_file"))
            hba = (string)(await cmd.ExecuteScalarAsync())!;
        var line = $"host all {role} 127.0.0.1/32 scram-sha-256";
        var text = await File.ReadAllTextAsync(hba);
        if (!text.Contains(line, StringComparison.Ordinal))
        {
            await File.WriteAllTextAsync(hba, $"# reliability suite\n{line}\n" + text);
            await using var cmd = ds.CreateCommand("SELECT pg_reload_conf()");
            await cmd.ExecuteNonQueryAsync();
        }
        // The reload is asynchronous: wait until a wrong password is refused.
        var probe = new NpgsqlConnectionStringBuilder(admin) { Username = role, Password = "not-the-password", Pooling = false }.ConnectionString;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync();
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidPassword)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"pg_hba.conf change for {role} not in effect after 15 s");
            await Task.Delay(100);
        }
    }

    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database }.ConnectionString;

    /// <summary>Creates a database (schema applied, ledger table created) and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix, bool withSchema = true)
    {
        var admin = await AdminConnectionStringAsync();
        var name = $"rel_{prefix}_{Guid.NewGuid():N}"[..Math.Min(40, 5 + prefix.Length + 32)].ToLowerInvariant();
        await Gate.WaitAsync();
        try
        {
            await using var ds = NpgsqlDataSource.Create(admin);
            await using var cmd = ds.CreateCommand($"CREATE DATABASE {name}");
            await cmd.ExecuteNonQueryAsync();
        }
        finally
        {
            Gate.Release();
        }
        var cs = WithDatabase(admin, name);
        if (withSchema)
        {
            await using (var app = new App(new NpgsqlConnector(cs)))
                await app.Schema.ApplyAsync();
            await using var ds = NpgsqlDataSource.Create(cs);
            await using var cmd = ds.CreateCommand(Contract.LedgerDdl);
            await cmd.ExecuteNonQueryAsync();
        }
        return cs;
    }

    public static async Task DropDatabaseAsync(string connectionString)
    {
        var admin = await AdminConnectionStringAsync();
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var ds = NpgsqlDataSource.Create(admin);
        await using var cmd = ds.CreateCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        try
        {
            await cmd.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // Best effort: the next run's databases have other names.
        }
    }
}
