using System.Globalization;
using Npgsql;

namespace Procrastinate.Benchmarks;

/// <summary>Counters of one database in pg_stat_database.</summary>
internal readonly record struct DbCounters(long Commits, long Rollbacks, long Inserted, long Updated, long Deleted)
{
    public static DbCounters operator -(DbCounters a, DbCounters b) =>
        new(a.Commits - b.Commits, a.Rollbacks - b.Rollbacks, a.Inserted - b.Inserted, a.Updated - b.Updated, a.Deleted - b.Deleted);
}

/// <summary>One row of pg_stat_statements (one normalized statement).</summary>
public sealed record StatementRow(string Query, long Calls, double TotalMs, long Rows)
{
    public double MeanMs => Calls == 0 ? 0 : TotalMs / Calls;
}

/// <summary>Server facts recorded with the results.</summary>
public sealed record ServerInfo(string Version, bool PgStatStatements, IReadOnlyDictionary<string, string> Settings);

/// <summary>
/// The admin side: one data source on the URL's own database (normally <c>postgres</c>). It creates
/// and drops the benchmark databases and reads pg_stat_database / pg_stat_statements, filtered by
/// the benchmark database's name or oid, so its own queries never count.
/// </summary>
internal sealed class Server : IAsyncDisposable
{
    /// <summary>Prefixes every query the harness sends to a benchmark database, to exclude them from pg_stat_statements.</summary>
    public const string Marker = "/* bench-harness */ ";

    private static readonly string[] RecordedSettings =
    [
        "synchronous_commit", "fsync", "wal_sync_method", "full_page_writes", "shared_buffers", "max_connections",
        "max_wal_size", "checkpoint_timeout", "work_mem", "shared_preload_libraries", "pg_stat_statements.track",
        "track_io_timing", "jit", "autovacuum",
    ];

    private readonly NpgsqlDataSource _admin;
    private readonly NpgsqlConnectionStringBuilder _base;

    private Server(NpgsqlConnectionStringBuilder builder)
    {
        _base = builder;
        var admin = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { ApplicationName = "procrastinate-bench-admin", CommandTimeout = 300 };
        _admin = NpgsqlDataSource.Create(admin);
    }

    public bool HasPgStatStatements { get; private set; }

    /// <summary>The postmaster's pid when the server runs on this machine and /proc shows it (for its CPU time).</summary>
    public int? PostmasterPid { get; private set; }

    public static async Task<Server> ConnectAsync(string urlOrConnectionString, CancellationToken cancellationToken)
    {
        var server = new Server(ConnectionStrings.Parse(urlOrConnectionString));
        try
        {
            await using var cmd = server._admin.CreateCommand("SELECT 1");
            await cmd.ExecuteScalarAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            await server.DisposeAsync();
            throw new BenchmarkException($"Cannot connect to PostgreSQL ({Describe(server._base)}): {e.Message}", e);
        }
        return server;
    }

    private static string Describe(NpgsqlConnectionStringBuilder b) => $"host {b.Host}, port {b.Port}, database {b.Database}, user {b.Username}";

    public string AdminDatabase => _base.Database ?? "postgres";

    /// <summary>A connection string to <paramref name="database"/> on the same server.</summary>
    public string ConnectionStringFor(string database, string? applicationName = null)
    {
        var b = new NpgsqlConnectionStringBuilder(_base.ConnectionString) { Database = database };
        if (applicationName is not null)
            b.ApplicationName = applicationName;
        return b.ConnectionString;
    }

    public async Task<ServerInfo> DescribeAsync(CancellationToken cancellationToken)
    {
        var version = (string)(await ScalarAsync("SELECT version()", cancellationToken))!;
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var cmd = _admin.CreateCommand("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)"))
        {
            cmd.Parameters.AddWithValue(RecordedSettings);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var unit = reader.IsDBNull(2) ? "" : reader.GetString(2);
                settings[reader.GetString(0)] = FormatSetting(reader.GetString(1), unit);
            }
        }
        // A local server: its postmaster is the parent of our backend.
        var backend = (int)(await ScalarAsync("SELECT pg_backend_pid()", cancellationToken))!;
        if (ProcStats.TryReadParentPid(backend) is { } postmaster
            && File.Exists($"/proc/{postmaster}/stat")
            && File.ReadAllText($"/proc/{postmaster}/stat").Contains("(postgres)", StringComparison.Ordinal))
            PostmasterPid = postmaster;
        HasPgStatStatements = settings.GetValueOrDefault("shared_preload_libraries", "").Contains("pg_stat_statements", StringComparison.Ordinal);
        if (HasPgStatStatements)
            await ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", cancellationToken);
        return new ServerInfo(version, HasPgStatStatements, settings);
    }

    private static string FormatSetting(string value, string unit)
    {
        // shared_buffers and friends come in 8kB pages or kB: say MB.
        if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
        {
            var kb = unit switch { "8kB" => n * 8, "kB" => n, "MB" => n * 1024, _ => -1 };
            if (kb >= 0)
                return $"{kb / 1024} MB";
        }
        return unit is "" ? value : value + " " + unit;
    }

    public async Task CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await DropDatabaseAsync(name, cancellationToken);
        await ExecuteAsync($"CREATE DATABASE {Quote(name)}", cancellationToken);
    }

    public Task DropDatabaseAsync(string name, CancellationToken cancellationToken) =>
        ExecuteAsync($"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)", cancellationToken);

    public async Task<uint> GetDatabaseOidAsync(string name, CancellationToken cancellationToken)
    {
        await using var cmd = _admin.CreateCommand("SELECT oid FROM pg_database WHERE datname = $1");
        cmd.Parameters.AddWithValue(name);
        return (uint)(await cmd.ExecuteScalarAsync(cancellationToken) ?? throw new BenchmarkException($"Database {name} not found."));
    }

    /// <summary>Forgets the statements recorded so far for one database.</summary>
    public async Task ResetStatementsAsync(uint dbid, CancellationToken cancellationToken)
    {
        if (!HasPgStatStatements)
            return;
        await using var cmd = _admin.CreateCommand("SELECT pg_stat_statements_reset(0, $1, 0)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = dbid, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task CheckpointAsync(CancellationToken cancellationToken) => ExecuteAsync("CHECKPOINT", cancellationToken);

    /// <summary>
    /// Reads pg_stat_database for one database. Backends flush their counters when they exit (or
    /// at most every second while idle), so callers first wait for <see cref="WaitForNoClientsAsync"/>.
    /// </summary>
    public async Task<DbCounters> ReadCountersAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await _admin.OpenConnectionAsync(cancellationToken);
        await using (var clear = new NpgsqlCommand("SELECT pg_stat_clear_snapshot()", connection))
            await clear.ExecuteNonQueryAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1", connection);
        cmd.Parameters.AddWithValue(database);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            throw new BenchmarkException($"pg_stat_database has no row for {database}.");
        return new DbCounters(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
    }

    /// <summary>Every statement recorded for one database except the harness's own (marked) queries, most called first.</summary>
    public async Task<List<StatementRow>?> ReadStatementsAsync(uint dbid, CancellationToken cancellationToken)
    {
        if (!HasPgStatStatements)
            return null;
        await using var cmd = _admin.CreateCommand(
            """
            SELECT query, calls, total_exec_time, rows FROM pg_stat_statements
            WHERE dbid = $1 AND query NOT LIKE '%bench-harness%'
            ORDER BY calls DESC, total_exec_time DESC
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = dbid, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid });
        var rows = new List<StatementRow>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            rows.Add(new StatementRow(reader.GetString(0), reader.GetInt64(1), reader.GetDouble(2), reader.GetInt64(3)));
        return rows;
    }

    /// <summary>Waits until no client backend is connected to <paramref name="database"/> (so that their statistics are flushed).</summary>
    public async Task WaitForNoClientsAsync(string database, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            await using var cmd = _admin.CreateCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
            cmd.Parameters.AddWithValue(database);
            var count = (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
            if (count == 0)
                return;
            if (DateTime.UtcNow > deadline)
            {
                // Terminated backends flush their statistics too; say so, and go on.
                Console.Error.WriteLine($"bench: {count} connection(s) to {database} still open after {timeout.TotalSeconds:0} s; terminating them.");
                await using var kill = _admin.CreateCommand(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
                kill.Parameters.AddWithValue(database);
                await kill.ExecuteNonQueryAsync(cancellationToken);
                await Task.Delay(200, cancellationToken);
                return;
            }
            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>The backends (client, autovacuum, parallel workers) connected to a database, the harness's observer excepted.</summary>
    public async Task<List<int>> ListBackendPidsAsync(string database, CancellationToken cancellationToken)
    {
        await using var cmd = _admin.CreateCommand(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name <> 'procrastinate-bench-observer' AND pid <> pg_backend_pid()");
        cmd.Parameters.AddWithValue(database);
        var pids = new List<int>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            pids.Add(reader.GetInt32(0));
        return pids;
    }

    /// <summary>True when a backend of <paramref name="database"/> has run LISTEN (the worker's listener is up).</summary>
    public async Task<bool> HasListenerAsync(string database, CancellationToken cancellationToken)
    {
        await using var cmd = _admin.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN %')");
        cmd.Parameters.AddWithValue(database);
        return (bool)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    private async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken)
    {
        await using var cmd = _admin.CreateCommand(sql);
        return await cmd.ExecuteScalarAsync(cancellationToken);
    }

    private async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var cmd = _admin.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public ValueTask DisposeAsync() => _admin.DisposeAsync();
}

/// <summary>
/// CPU used by the server backends of one database: every backend seen connected to it (found in
/// pg_stat_activity, read from /proc/&lt;pid&gt;/stat) with the last CPU time read for it. Backends
/// are created during the measured phase, so their whole CPU time belongs to it; sampling just
/// before connections close loses only what a backend used after its last sample.
/// </summary>
internal sealed class BackendCpuTracker(Server server, string database)
{
    private readonly Dictionary<int, double> _cpu = [];

    public double TotalSeconds => _cpu.Values.Sum();

    public int BackendsSeen => _cpu.Count;

    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        if (server.PostmasterPid is null)
            return;
        foreach (var pid in await server.ListBackendPidsAsync(database, cancellationToken))
        {
            if (ProcStats.TryReadProcess(pid) is { } sample)
                _cpu[pid] = sample.CpuSeconds;
        }
    }
}

/// <summary>
/// The harness's one connection to a benchmark database, for the progress queries (pending jobs,
/// backlog). Every query carries <see cref="Server.Marker"/> (excluded from the statement counts)
/// and is counted, because each is a transaction that pg_stat_database counts as a commit.
/// No type loading, so opening the connection sends no query.
/// </summary>
internal sealed class Observer : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlConnection _connection;

    private Observer(NpgsqlDataSource dataSource, NpgsqlConnection connection)
    {
        _dataSource = dataSource;
        _connection = connection;
    }

    /// <summary>Transactions this observer ran (to subtract from xact_commit).</summary>
    public long Transactions { get; private set; }

    public static async Task<Observer> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.ApplicationName = "procrastinate-bench-observer";
        builder.ConnectionStringBuilder.Pooling = false;
        // Set in the startup packet (no statement, no transaction): the progress queries must use the
        // partial indexes on todo/doing even with stale statistics (a sequential scan of a drained
        // table every 10 ms would compete with the worker), and never start JIT or parallel workers.
        builder.ConnectionStringBuilder.Options = "-c enable_seqscan=off -c max_parallel_workers_per_gather=0 -c jit=off";
        builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
        var dataSource = builder.Build();
        try
        {
            var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return new Observer(dataSource, connection);
        }
        catch
        {
            await dataSource.DisposeAsync();
            throw;
        }
    }

    /// <summary>Is any job todo or doing? Cheap: the schema's partial index on those statuses answers it.</summary>
    public async Task<bool> AnyPendingAsync(CancellationToken cancellationToken) =>
        (bool)(await ScalarAsync("SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))", cancellationToken))!;

    /// <summary>Jobs waiting (todo): the backlog.</summary>
    public async Task<long> CountTodoAsync(CancellationToken cancellationToken) =>
        (long)(await ScalarAsync("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'", cancellationToken))!;

    public async Task<long> CountWorkersAsync(CancellationToken cancellationToken) =>
        (long)(await ScalarAsync("SELECT count(*) FROM procrastinate_workers", cancellationToken))!;

    /// <summary>Jobs per status (one scan).</summary>
    public async Task<Dictionary<string, long>> CountByStatusAsync(CancellationToken cancellationToken)
    {
        Transactions++;
        await using var cmd = new NpgsqlCommand(Server.Marker + "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status", _connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
            counts[reader.GetString(0)] = reader.GetInt64(1);
        return counts;
    }

    private async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken)
    {
        Transactions++;
        await using var cmd = new NpgsqlCommand(Server.Marker + sql, _connection);
        return await cmd.ExecuteScalarAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        await _dataSource.DisposeAsync();
    }
}

/// <summary>Accepts a <c>postgresql://</c> URL (in libpq's forms, through the library's own parser) or an Npgsql connection string.</summary>
internal static class ConnectionStrings
{
    public static NpgsqlConnectionStringBuilder Parse(string value)
    {
        var b = new NpgsqlConnectionStringBuilder(Procrastinate.NpgsqlConnector.NormalizeConnectionString(value));
        if (string.IsNullOrEmpty(b.Database))
            b.Database = "postgres";
        return b;
    }
}
