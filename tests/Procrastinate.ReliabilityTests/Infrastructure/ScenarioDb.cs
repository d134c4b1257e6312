using System.Diagnostics;
using Npgsql;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>
/// A database of its own for one scenario on the dedicated cluster, with the schema and the
/// ledger; remembers the server-log position at creation, so problems can be checked afterwards.
/// </summary>
public sealed class ScenarioDb : IAsyncDisposable
{
    private readonly List<RelWorker> _workers = [];

    private ScenarioDb(string connectionString, long logMark)
    {
        ConnectionString = connectionString;
        Name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        LogMark = logMark;
        DataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = "rel-suite" }.ConnectionString);
    }

    public string ConnectionString { get; }

    public string Name { get; }

    public long LogMark { get; }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<ScenarioDb> CreateAsync(string prefix, bool withSchema = true)
    {
        await ReliabilityCluster.AdminConnectionStringAsync();
        var mark = ServerLog.Mark();
        return new ScenarioDb(await ReliabilityCluster.CreateDatabaseAsync(prefix, withSchema), mark);
    }

    /// <summary>An app on this database (for deferring from the test process); the caller disposes it.</summary>
    public App CreateApp(AppOptions? options = null) =>
        new(new NpgsqlConnector(new NpgsqlConnectionStringBuilder(ConnectionString) { ApplicationName = "rel-suite-app" }.ConnectionString), options);

    /// <summary>Starts a worker process on this database; it is killed at dispose if still running.</summary>
    public async Task<RelWorker> StartWorkerAsync(params string[] settings)
    {
        var worker = await RelWorker.StartAsync(ConnectionString, settings);
        lock (_workers)
            _workers.Add(worker);
        return worker;
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
            cmd.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        var result = await cmd.ExecuteScalarAsync();
        return result is DBNull or null ? default! : (T)result;
    }

    public async Task ExecAsync(string sql, params object?[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
            cmd.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<List<object?[]>> RowsAsync(string sql, params object?[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
            cmd.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>The database clock (what every due time and event uses).</summary>
    public Task<DateTime> ClockAsync() => ScalarAsync<DateTime>("SELECT clock_timestamp()");

    /// <summary>Polls <paramref name="condition"/> until it holds; throws with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan> WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, int pollMs = 100)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await condition())
                    return watch.Elapsed;
            }
            catch (NpgsqlException) when (watch.Elapsed < timeout)
            {
                // The server may be restarting.
            }
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s waiting for: {what}");
            await Task.Delay(pollMs);
        }
    }

    /// <summary>Jobs not in a final status (todo, doing).</summary>
    public Task<long> PendingAsync() =>
        ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')");

    /// <summary>Waits until every job is in a final status.</summary>
    public Task<TimeSpan> WaitAllFinalAsync(TimeSpan timeout) =>
        WaitUntilAsync(async () => await PendingAsync() == 0, timeout, $"every job of {Name} in a final status", 200);

    /// <summary>The LISTEN connection of each worker process (by application name relw-&lt;pid&gt;).</summary>
    public async Task<HashSet<int>> ListeningPidsAsync()
    {
        var rows = await RowsAsync(
            "SELECT application_name FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'relw-%' AND query LIKE 'LISTEN %'", Name);
        return [.. rows.Select(r => int.Parse(((string)r[0]!)["relw-".Length..], System.Globalization.CultureInfo.InvariantCulture))];
    }

    public async ValueTask DisposeAsync()
    {
        List<RelWorker> workers;
        lock (_workers)
            workers = [.. _workers];
        foreach (var worker in workers)
            await worker.DisposeAsync();
        await DataSource.DisposeAsync();
        if (Environment.GetEnvironmentVariable("PROCRASTINATE_RELIABILITY_KEEP_DB") != "1")
            await ReliabilityCluster.DropDatabaseAsync(ConnectionString);
    }
}
