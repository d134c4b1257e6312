using Npgsql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// The lean table layout (<see cref="SchemaLayout.Lean"/>): installing it, converting both ways
/// with the stored jobs kept, and getting back exactly the Procrastinate-compatible catalog.
/// Its behaviour is the shared behaviour suite (<c>PostgresLeanBehaviourTests</c>).
/// </summary>
public sealed class LayoutTests
{
    private static async Task<T> Scalar<T>(string cs, string sql)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string> TriggerNames(string cs) => await Scalar<string>(cs,
        "SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'procrastinate%'");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_database_gets_the_lean_layout_once_and_keeps_it(bool async)
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_new", withSchema: false);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var first = async ? await app.Schema.ApplyAsync(SchemaLayout.Lean) : app.Schema.Apply(SchemaLayout.Lean);
            Assert.True(first.InstalledBase);
            Assert.True(first.LayoutChanged);
            Assert.Equal(SchemaLayout.Lean, first.Layout);
            Assert.EndsWith("Converted to the lean layout.", first.ToString(), StringComparison.Ordinal);

            var status = await app.Schema.CheckAsync();
            Assert.True(status.IsUsable);
            Assert.Equal(SchemaLayout.Lean, status.Layout);
            Assert.Equal("procrastinate_jobs_notify_queue_job_aborted_v1,procrastinate_lean_jobs_deleted,procrastinate_lean_jobs_inserted,procrastinate_lean_jobs_updated,procrastinate_lean_workers_deleted",
                await TriggerNames(cs));
            // The foreign keys checked row by row are gone.
            Assert.Equal(0L, await Scalar<long>(cs,
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid IN ('procrastinate_jobs'::regclass, 'procrastinate_workers'::regclass) AND conrelid <> 'procrastinate_dotnet_workers'::regclass"));

            // Applying again without a layout keeps the lean one and changes nothing.
            var again = await app.Schema.ApplyAsync();
            Assert.False(again.Changed);
            Assert.Equal(SchemaLayout.Lean, again.Layout);
            Assert.Equal(SchemaLayout.Lean, (await app.Schema.CheckAsync()).Layout);
            Assert.False((await app.Schema.ApplyAsync(SchemaLayout.Lean)).Changed);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task Converting_to_lean_and_back_keeps_the_jobs_and_restores_the_compatible_catalog()
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_roundtrip", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var before = await task.DeferAsync(new Defer.SumArgs(1, 2));
            Assert.Equal(SchemaLayout.Compatible, (await app.Schema.CheckAsync()).Layout);

            var toLean = await app.Schema.ApplyAsync(SchemaLayout.Lean);
            Assert.True(toLean.LayoutChanged);
            Assert.False(toLean.InstalledBase);
            var during = await task.DeferAsync(new Defer.SumArgs(3, 4));
            // A worker that ran jobs and is gone: in the lean layout its ended jobs keep its id.
            await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });
            Assert.Equal(JobStatus.Succeeded, (await app.Jobs.GetAsync(before))!.Status);
            Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded],
                (await app.Jobs.ListEventsAsync(during)).Select(e => e.Type!.Value));
            Assert.NotNull((await app.Jobs.GetAsync(during))!.WorkerId);

            var back = await app.Schema.ApplyAsync(SchemaLayout.Compatible);
            Assert.True(back.LayoutChanged);
            Assert.Equal(SchemaLayout.Compatible, (await app.Schema.CheckAsync()).Layout);
            Assert.Equal(2L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_jobs"));
            Assert.Equal(6L, await Scalar<long>(cs, "SELECT count(*) FROM procrastinate_events"));
            // The dangling worker id was cleared so that the foreign key holds again.
            Assert.Null((await app.Jobs.GetAsync(during))!.WorkerId);

            // Exactly the contract's catalog again (COMPAT.md section 2).
            await using var ds = NpgsqlDataSource.Create(cs);
            var comparison = CatalogComparer.Compare(ExpectedCatalog.All, await CatalogReader.ReadAsync(ds));
            Assert.True(comparison.IsMatch, comparison.Describe());
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }

    [Fact]
    public async Task The_lean_layout_notifies_once_per_queue_and_statement()
    {
        var cs = await TestCluster.CreateDatabaseAsync("lean_notify", withSchema: true);
        try
        {
            await using var app = new App(new NpgsqlConnector(cs));
            await app.Schema.ApplyAsync(SchemaLayout.Lean);
            await using var ds = NpgsqlDataSource.Create(cs);
            await using var listener = await ds.OpenConnectionAsync();
            var received = new List<(string Channel, string Payload)>();
            listener.Notification += (_, e) => received.Add((e.Channel, e.Payload));
            await using (var listen = new NpgsqlCommand("LISTEN \"procrastinate_any_queue_v1\"; LISTEN \"procrastinate_queue_v1#b\"", listener))
                await listen.ExecuteNonQueryAsync();

            var task = app.Task<Defer.SumArgs>("sum", _ => { });
            var ids = await task.DeferManyAsync([new(1, 1), new(2, 2), new(3, 3)], new DeferOptions { Queue = "a" });
            var other = await task.DeferAsync(new Defer.SumArgs(4, 4), new DeferOptions { Queue = "b" });

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (received.Count < 3 && DateTime.UtcNow < deadline)
                await listener.WaitAsync(TimeSpan.FromMilliseconds(200));
            await listener.WaitAsync(TimeSpan.FromMilliseconds(300)); // nothing more arrives
            Assert.Equal(
            [
                ("procrastinate_any_queue_v1", $$"""{"type" : "job_inserted", "job_id" : {{ids.Min()}}}"""),
                ("procrastinate_queue_v1#b", $$"""{"type" : "job_inserted", "job_id" : {{other}}}"""),
                ("procrastinate_any_queue_v1", $$"""{"type" : "job_inserted", "job_id" : {{other}}}"""),
            ], received);
        }
        finally
        {
            await TestCluster.DropDatabaseAsync(cs);
        }
    }
}
