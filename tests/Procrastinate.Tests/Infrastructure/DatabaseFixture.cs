using Npgsql;

namespace Procrastinate.Tests.Infrastructure;

/// <summary>A database of its own for one test class, with the schema installed.</summary>
public class DatabaseFixture : IAsyncLifetime
{
    protected virtual bool WithSchema => true;

    public string ConnectionString { get; private set; } = "";

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    /// <summary>The table layout the database is converted to after creation (compatible: none).</summary>
    protected virtual SchemaLayout Layout => SchemaLayout.Compatible;

    public async Task InitializeAsync()
    {
        ConnectionString = await TestCluster.CreateDatabaseAsync(GetType().Name, WithSchema);
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        if (WithSchema && Layout != SchemaLayout.Compatible)
        {
            await using var app = CreateApp();
            await app.Schema.ApplyAsync(Layout);
        }
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await TestCluster.DropDatabaseAsync(ConnectionString);
    }

    /// <summary>A new app on this database; the caller disposes it.</summary>
    public App CreateApp(AppOptions? options = null) => new(new NpgsqlConnector(ConnectionString), options);

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

    public async Task<List<Dictionary<string, object?>>> QueryAsync(string sql, params object?[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
            cmd.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<Dictionary<string, object?>>();
        while (await reader.ReadAsync())
        {
            var row = new Dictionary<string, object?>();
            for (var i = 0; i < reader.FieldCount; i++)
                row[reader.GetName(i)] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>Removes every job, event, worker and periodic defer, so a test starts clean.</summary>
    public Task ResetAsync() => ExecAsync(
        "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_dotnet_job_trace, procrastinate_jobs, procrastinate_workers RESTART IDENTITY CASCADE");
}

/// <summary>A database of its own with the schema in the lean layout (<see cref="SchemaLayout.Lean"/>).</summary>
public class LeanDatabaseFixture : DatabaseFixture
{
    protected override SchemaLayout Layout => SchemaLayout.Lean;
}

/// <summary>A database without any schema, for installer tests.</summary>
public class EmptyDatabaseFixture : DatabaseFixture
{
    protected override bool WithSchema => false;
}
