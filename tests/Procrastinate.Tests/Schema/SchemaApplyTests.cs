using Npgsql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Schema;

public sealed class SchemaApplyTests
{
    private static async Task<string> CatalogFingerprint(string cs)
    {
        // Everything Procrastinate owns, as PostgreSQL prints it; .NET additions excluded.
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand("""
            SELECT string_agg(def, E'\n' ORDER BY def) FROM (
                SELECT c.relname || ':' || c.relkind::text || ':' || c.oid AS def FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relname LIKE '%procrastinate%' AND c.relname NOT LIKE 'procrastinate_dotnet%'
                UNION ALL
                SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || '):' || p.oid || ':' || md5(p.prosrc) FROM pg_proc p
                    WHERE p.proname LIKE 'procrastinate%' AND p.proname NOT LIKE 'procrastinate_dotnet%'
                UNION ALL
                SELECT t.tgname || ':' || t.oid FROM pg_trigger t WHERE t.tgname LIKE 'procrastinate%'
                UNION ALL
                SELECT t.typname || ':' || t.oid FROM pg_type t WHERE t.typname LIKE '%procrastinate%' AND t.typname NOT LIKE '%procrastinate_dotnet%'
            ) AS all_objects
            """);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<List<string>> Ledger(string cs)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand($"SELECT name FROM {SchemaManager.LedgerTable} ORDER BY name");
        var names = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            names.Add(reader.GetString(0));
        return names;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Apply_installs_once_then_changes_nothing(bool async)
    {
        var cs = await TestCluster.CreateDatabaseAsync("apply", withSchema: false);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            Assert.False((async ? await app.Schema.CheckAsync() : app.Schema.Check()).Installed);

            var first = async ? await app.Schema.ApplyAsync() : app.Schema.Apply();
            Assert.True(first.InstalledBase);
            Assert.Equal(SchemaManager.KnownMigrations, first.AppliedMigrations);
            Assert.True(first.Changed);
            var fingerprint = await CatalogFingerprint(cs);

            var second = async ? await app.Schema.ApplyAsync() : app.Schema.Apply();
            Assert.False(second.Changed);
            Assert.Equal("Schema already installed and up to date; nothing changed.", second.ToString());
            Assert.Equal(fingerprint, await CatalogFingerprint(cs));
            Assert.True((await app.Schema.CheckAsync()).IsUsable);
            Assert.Equal([.. SchemaManager.KnownMigrations.Prepend(SchemaManager.BaseVersion).Order()], await Ledger(cs));
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Apply_on_a_schema_installed_by_Python_leaves_every_Procrastinate_object_alone()
    {
        // Python's `procrastinate schema --apply` runs the install script and keeps no ledger.
        var cs = await TestCluster.CreateDatabaseAsync("python", withSchema: false);
        try
        {
            await using (var ds = NpgsqlDataSource.Create(cs))
            await using (var cmd = ds.CreateCommand(SchemaManager.ReadSchemaSql()))
                await cmd.ExecuteNonQueryAsync();
            var before = await CatalogFingerprint(cs);

            await using var app = new App(new NpgsqlConnector(cs));
            var status = await app.Schema.CheckAsync();
            Assert.True(status.Installed);
            Assert.True(status.AtSupportedLevel);
            Assert.False(status.IsUsable); // the .NET additions are pending

            var result = await app.Schema.ApplyAsync();
            Assert.False(result.InstalledBase);
            Assert.True(result.RecordedExisting);
            Assert.Equal(before, await CatalogFingerprint(cs));
            Assert.Contains(SchemaManager.BaseVersion, await Ledger(cs));
            // The .NET additions include the index of each queue's waiting jobs (migration 0005)
            // and the index of scheduled waiting jobs (migration 0006).
            await using (var ds = NpgsqlDataSource.Create(cs))
            await using (var cmd = ds.CreateCommand("SELECT pg_get_indexdef('procrastinate_dotnet_jobs_queue_claim_idx'::regclass) || E'\\n' || pg_get_indexdef('procrastinate_dotnet_jobs_scheduled_idx'::regclass)"))
                Assert.Equal("""
                    CREATE INDEX procrastinate_dotnet_jobs_queue_claim_idx ON public.procrastinate_jobs USING btree (queue_name, priority DESC, id) WHERE (status = 'todo'::procrastinate_job_status)
                    CREATE INDEX procrastinate_dotnet_jobs_scheduled_idx ON public.procrastinate_jobs USING btree (scheduled_at) WHERE ((status = 'todo'::procrastinate_job_status) AND (scheduled_at IS NOT NULL))
                    """, (string?)await cmd.ExecuteScalarAsync());

            Assert.False((await app.Schema.ApplyAsync()).Changed);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task A_schema_older_than_3_4_is_refused()
    {
        var cs = await TestCluster.CreateDatabaseAsync("old", withSchema: false);
        try
        {
            await using (var ds = NpgsqlDataSource.Create(cs))
            await using (var cmd = ds.CreateCommand(SchemaManager.ReadSchemaSql() +
                ";\nDROP FUNCTION procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, character varying, character varying);"))
                await cmd.ExecuteNonQueryAsync();
            await using var app = new App(new NpgsqlConnector(cs));
            var e = await Assert.ThrowsAsync<SchemaException>(() => app.Schema.ApplyAsync());
            Assert.Contains("older than 3.4", e.Message);
            Assert.False((await app.Schema.CheckAsync()).AtSupportedLevel);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task A_database_newer_than_the_code_is_refused()
    {
        var cs = await TestCluster.CreateDatabaseAsync("newer", withSchema: true);
        try
        {
            await using (var ds = NpgsqlDataSource.Create(cs))
            await using (var cmd = ds.CreateCommand($"INSERT INTO {SchemaManager.LedgerTable} (name) VALUES ('9999_from_the_future')"))
                await cmd.ExecuteNonQueryAsync();
            await using var app = new App(new NpgsqlConnector(cs));
            var e = await Assert.ThrowsAsync<SchemaException>(() => app.Schema.ApplyAsync());
            Assert.Contains("9999_from_the_future", e.Message);
            Assert.Equal(["9999_from_the_future"], (await app.Schema.CheckAsync()).UnknownMigrations);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Concurrent_applies_install_exactly_once()
    {
        var cs = await TestCluster.CreateDatabaseAsync("race", withSchema: false);
        try
        {
            var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
            {
                await using var app = new App(new NpgsqlConnector(cs));
                return await app.Schema.ApplyAsync();
            }));
            Assert.Single(results, r => r.InstalledBase);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public void The_schema_sql_is_embedded_and_read_verbatim()
    {
        var sql = SchemaManager.ReadSchemaSql();
        Assert.Contains("CREATE TABLE procrastinate_jobs", sql);
        Assert.DoesNotContain("public.", sql); // names resolve through search_path (COMPAT.md 1.3)
    }
}
