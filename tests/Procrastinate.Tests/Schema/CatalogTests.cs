using Npgsql;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// The installed catalog equals the contract of COMPAT.md section 2, as transcribed in
/// <see cref="ExpectedCatalog"/>, one object kind per test. Function behaviour is tested elsewhere.
/// </summary>
public class CatalogTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public Task Enums_match_the_contract() => AssertMatchesAsync(CatalogKind.Enum);

    [Fact]
    public Task Composite_type_matches_the_contract() => AssertMatchesAsync(CatalogKind.CompositeType);

    [Fact]
    public Task Tables_and_columns_match_the_contract() => AssertMatchesAsync(CatalogKind.Table, CatalogKind.Column);

    [Fact]
    public Task Constraints_match_the_contract() => AssertMatchesAsync(CatalogKind.Constraint);

    [Fact]
    public Task Indexes_match_the_contract() => AssertMatchesAsync(CatalogKind.Index);

    [Fact]
    public Task Sequences_match_the_contract() => AssertMatchesAsync(CatalogKind.Sequence);

    [Fact]
    public Task Functions_match_the_contract() => AssertMatchesAsync(CatalogKind.Function);

    [Fact]
    public Task Trigger_functions_match_the_contract() => AssertMatchesAsync(CatalogKind.TriggerFunction);

    [Fact]
    public Task Triggers_match_the_contract() => AssertMatchesAsync(CatalogKind.Trigger);

    [Fact]
    public Task No_other_procrastinate_objects_exist() => AssertMatchesAsync(CatalogKind.Other);

    [Fact]
    public async Task Only_procrastinate_dotnet_objects_are_tolerated_as_extras()
    {
        var actual = await CatalogReader.ReadAsync(db.DataSource);
        var comparison = CatalogComparer.Compare(ExpectedCatalog.All, actual);
        foreach (var extra in comparison.ToleratedExtras)
            output.WriteLine($"tolerated .NET addition: {extra.Kind} {extra.Name}");

        Assert.All(comparison.ToleratedExtras,
            o => Assert.StartsWith(ExpectedCatalog.AllowedExtraPrefix, o.Name, StringComparison.Ordinal));
        foreach (var table in ExpectedCatalog.KnownExtraTables)
            Assert.Contains(comparison.ToleratedExtras, o => o.Kind == CatalogKind.Table && o.Name == table);
        // Every contract object is in the database, and no tolerated extra hides one.
        Assert.DoesNotContain(comparison.Differences, d => d.Change == DifferenceKind.Missing);
    }

    [Fact]
    public void Expected_catalog_is_consistent()
    {
        // No duplicate keys (Compare throws on them), and it matches itself.
        Assert.True(CatalogComparer.Compare(ExpectedCatalog.All, ExpectedCatalog.All).IsMatch);
        Assert.Equal(2, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Enum));
        Assert.Equal(4, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Table));
        Assert.Equal(11, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Function));
        Assert.Equal(7, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.TriggerFunction));
        Assert.Equal(7, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Trigger));
        Assert.Equal(4, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Sequence));
        Assert.Equal(9 + 5, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Index));
        Assert.Equal(9, ExpectedCatalog.All.Count(o => o.Kind == CatalogKind.Constraint));
        Assert.All(ExpectedCatalog.All, o => Assert.False(CatalogComparer.IsAllowedExtra(o), $"{o.Kind} {o.Name}"));
    }

    [Fact]
    public void Allowed_extras_follow_COMPAT_1_2()
    {
        static CatalogObject Obj(CatalogKind kind, string name, string table = "") =>
            new(kind, name, [new("table", table)]);

        Assert.True(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Table, "procrastinate_dotnet_workers")));
        Assert.True(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Column, "procrastinate_dotnet_workers.host")));
        Assert.True(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Index, "procrastinate_dotnet_jobs_idx", "procrastinate_jobs")));
        Assert.True(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Constraint, "procrastinate_dotnet_workers_pkey", "procrastinate_dotnet_workers")));

        // Python's naming scheme, even under our prefix (rule 2).
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Table, "procrastinate_dotnet_things_v1")));
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Table, "procrastinate_things_v1")));
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Index, "idx_procrastinate_jobs_more", "procrastinate_jobs")));
        // Columns on a core table, and constraints or triggers attached to one (rule 3).
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Column, "procrastinate_jobs.procrastinate_dotnet_x")));
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Constraint, "procrastinate_dotnet_check", "procrastinate_jobs")));
        Assert.False(CatalogComparer.IsAllowedExtra(Obj(CatalogKind.Trigger, "procrastinate_dotnet_trigger", "procrastinate_jobs")));
    }

    [Fact]
    public async Task Comparer_reports_drift()
    {
        var connectionString = await TestCluster.CreateDatabaseAsync("catalogdrift", withSchema: false);
        try
        {
            await using (var app = new App(new NpgsqlConnector(connectionString)))
                await app.Schema.ApplyAsync();

            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            var before = CatalogComparer.Compare(ExpectedCatalog.All, await CatalogReader.ReadAsync(dataSource));
            Assert.True(before.IsMatch, before.Describe());

            await using (var cmd = dataSource.CreateCommand("""
                DROP INDEX procrastinate_jobs_priority_idx_v1;
                ALTER TABLE procrastinate_jobs ALTER COLUMN priority SET DEFAULT 1;
                CREATE FUNCTION procrastinate_sneaky_v1() RETURNS integer LANGUAGE sql AS 'SELECT 1';
                CREATE TABLE procrastinate_dotnet_drift_probe (id integer PRIMARY KEY);
                """))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            var after = CatalogComparer.Compare(ExpectedCatalog.All, await CatalogReader.ReadAsync(dataSource));
            output.WriteLine(after.Describe());

            CatalogDifference[] expected =
            [
                new(CatalogKind.Column, "procrastinate_jobs.priority", DifferenceKind.Different, "default", "0", "1"),
                new(CatalogKind.Index, "procrastinate_jobs_priority_idx_v1", DifferenceKind.Missing),
                new(CatalogKind.Function, "procrastinate_sneaky_v1()", DifferenceKind.Unexpected),
            ];
            Assert.Equal(expected, after.Differences);

            // The failure message names every item.
            var message = after.Describe();
            Assert.Contains("3 difference(s)", message, StringComparison.Ordinal);
            Assert.Contains("procrastinate_jobs_priority_idx_v1", message, StringComparison.Ordinal);
            Assert.Contains("procrastinate_sneaky_v1()", message, StringComparison.Ordinal);
            Assert.Contains("expected: «0»", message, StringComparison.Ordinal);
            Assert.Contains("actual:   «1»", message, StringComparison.Ordinal);

            // Our own additions are tolerated, with their constraint and index.
            Assert.Contains(after.ToleratedExtras, o => o.Kind == CatalogKind.Table && o.Name == "procrastinate_dotnet_drift_probe");
            Assert.Contains(after.ToleratedExtras, o => o.Kind == CatalogKind.Index && o.Name == "procrastinate_dotnet_drift_probe_pkey");
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(connectionString);
        }
    }

    [Fact]
    public async Task Comparer_reports_drift_in_every_kind()
    {
        var connectionString = await TestCluster.CreateDatabaseAsync("catalogdrift");
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await using (var cmd = dataSource.CreateCommand("""
                ALTER TYPE procrastinate_job_status ADD VALUE 'paused';
                ALTER TYPE procrastinate_job_to_defer_v1 ADD ATTRIBUTE extra integer;
                ALTER TABLE procrastinate_workers ADD COLUMN host text;
                ALTER TABLE procrastinate_events ALTER COLUMN type SET NOT NULL;
                ALTER TABLE procrastinate_events DROP CONSTRAINT procrastinate_events_job_id_fkey;
                ALTER TABLE procrastinate_events ADD CONSTRAINT procrastinate_events_job_id_fkey
                    FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id);
                ALTER TABLE procrastinate_jobs ADD CONSTRAINT procrastinate_dotnet_check CHECK (attempts >= 0);
                CREATE INDEX procrastinate_jobs_other_idx ON procrastinate_jobs (task_name);
                ALTER SEQUENCE procrastinate_events_id_seq CYCLE;
                ALTER FUNCTION procrastinate_update_heartbeat_v1(bigint) SET search_path = public;
                ALTER FUNCTION procrastinate_cancel_job_v1(bigint, boolean, boolean) SECURITY DEFINER STRICT;
                ALTER FUNCTION procrastinate_unlink_periodic_defers_v1() STABLE;
                ALTER TABLE procrastinate_jobs DISABLE TRIGGER procrastinate_trigger_delete_jobs_v1;
                CREATE VIEW procrastinate_dotnet_view AS SELECT 1 AS one;
                CREATE VIEW procrastinate_jobs_view_v1 AS SELECT id FROM procrastinate_jobs;
                """))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            var after = CatalogComparer.Compare(ExpectedCatalog.All, await CatalogReader.ReadAsync(dataSource));
            output.WriteLine(after.Describe());

            CatalogDifference[] expected =
            [
                new(CatalogKind.Enum, "procrastinate_job_status", DifferenceKind.Different, "labels",
                    "todo, doing, succeeded, failed, cancelled, aborting, aborted",
                    "todo, doing, succeeded, failed, cancelled, aborting, aborted, paused"),
                new(CatalogKind.CompositeType, "procrastinate_job_to_defer_v1", DifferenceKind.Different, "fields",
                    "queue_name character varying, task_name character varying, priority integer, lock text, queueing_lock text, args jsonb, scheduled_at timestamp with time zone",
                    "queue_name character varying, task_name character varying, priority integer, lock text, queueing_lock text, args jsonb, scheduled_at timestamp with time zone, extra integer"),
                new(CatalogKind.Table, "procrastinate_workers", DifferenceKind.Different, "columns",
                    "id, last_heartbeat", "id, last_heartbeat, host"),
                new(CatalogKind.Column, "procrastinate_events.type", DifferenceKind.Different, "not null", "NULL", "NOT NULL"),
                new(CatalogKind.Column, "procrastinate_workers.host", DifferenceKind.Unexpected),
                new(CatalogKind.Constraint, "procrastinate_dotnet_check", DifferenceKind.Unexpected),
                new(CatalogKind.Constraint, "procrastinate_events_job_id_fkey", DifferenceKind.Different, "definition",
                    "FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id) ON DELETE CASCADE",
                    "FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id)"),
                new(CatalogKind.Index, "procrastinate_jobs_other_idx", DifferenceKind.Unexpected),
                new(CatalogKind.Sequence, "procrastinate_events_id_seq", DifferenceKind.Different, "cycle", "NO CYCLE", "CYCLE"),
                new(CatalogKind.Function, "procrastinate_cancel_job_v1(bigint,boolean,boolean)", DifferenceKind.Different, "security",
                    "SECURITY INVOKER", "SECURITY DEFINER"),
                new(CatalogKind.Function, "procrastinate_cancel_job_v1(bigint,boolean,boolean)", DifferenceKind.Different, "strict",
                    "CALLED ON NULL INPUT", "STRICT"),
                new(CatalogKind.Function, "procrastinate_update_heartbeat_v1(bigint)", DifferenceKind.Different, "SET options",
                    "", "search_path=public"),
                new(CatalogKind.TriggerFunction, "procrastinate_unlink_periodic_defers_v1()", DifferenceKind.Different, "volatility",
                    "VOLATILE", "STABLE"),
                new(CatalogKind.Trigger, "procrastinate_trigger_delete_jobs_v1", DifferenceKind.Different, "enabled",
                    "enabled", "DISABLED"),
                new(CatalogKind.Other, "procrastinate_jobs_view_v1 (relation of relkind v)", DifferenceKind.Unexpected),
            ];
            Assert.Equal(expected, after.Differences);
            Assert.Contains(after.ToleratedExtras, o => o.Kind == CatalogKind.Other && o.BaseName == "procrastinate_dotnet_view");
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(connectionString);
        }
    }

    private async Task AssertMatchesAsync(params CatalogKind[] kinds)
    {
        var actual = await CatalogReader.ReadAsync(db.DataSource);
        var comparison = CatalogComparer.Compare(ExpectedCatalog.All, actual, kinds);
        foreach (var extra in comparison.ToleratedExtras)
            output.WriteLine($"tolerated .NET addition: {extra.Kind} {extra.Name}");
        Assert.True(comparison.IsMatch, comparison.Describe());
    }
}
