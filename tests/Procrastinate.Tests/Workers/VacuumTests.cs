using Microsoft.Extensions.Logging;
using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

/// <summary>
/// A busy worker vacuums the job table every <see cref="WorkerOptions.VacuumAfterClaimedJobs"/>
/// claimed jobs, so that claims do not walk past the index entries of every job claimed since
/// autovacuum last came (BENCHMARKS.md, W5). Checked on both layouts, against PostgreSQL's own
/// count of manual vacuums of the table.
/// </summary>
public abstract class VacuumTests(DatabaseFixture db) : IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Manual vacuums of the job table so far (autovacuum is counted apart).</summary>
    private async Task<long> VacuumCountAsync()
    {
        // Each statement is a transaction of its own: it reads the statistics afresh.
        return await db.ScalarAsync<long>("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'");
    }

    private async Task<long> CountAsync(string status) =>
        await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status::text = $1", status);

    /// <summary>Defers <paramref name="jobs"/> jobs and runs a one-shot worker until they are all done.</summary>
    private static async Task RunJobsAsync(App app, int jobs, int vacuumAfter)
    {
        // Bodies of 5 ms: the drain lasts about a second, long enough for several vacuums whatever
        // the speed of the claims (after each vacuum the next waits nine times its duration).
        var task = app.Task<SumArgs>("vacuumed", async _ => await Task.Delay(5));
        await task.DeferManyAsync(Enumerable.Range(0, jobs).Select(i => new SumArgs(i, i)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await app.RunWorkerAsync(new WorkerOptions
        {
            Concurrency = 10,
            PrefetchJobs = 40,
            Wait = false,
            HandleSignals = false,
            ListenNotify = false,
            VacuumAfterClaimedJobs = vacuumAfter,
        }, cts.Token);
    }

    [Fact]
    public async Task A_worker_vacuums_the_job_table_after_the_given_number_of_claimed_jobs()
    {
        var before = await VacuumCountAsync();
        await using var app = db.CreateApp();

        await RunJobsAsync(app, 2_000, vacuumAfter: 100);

        Assert.Equal(2_000, await CountAsync("succeeded"));
        // Claims of at most 50 jobs: a vacuum is due about every 100, and runs unless the last
        // one is still within its tenth of the time (each takes milliseconds here).
        var vacuums = await VacuumCountAsync() - before;
        Assert.InRange(vacuums, 2, 20);
    }

    [Fact]
    public async Task With_zero_the_worker_never_vacuums()
    {
        var before = await VacuumCountAsync();
        await using var app = db.CreateApp();

        await RunJobsAsync(app, 500, vacuumAfter: 0);

        Assert.Equal(500, await CountAsync("succeeded"));
        Assert.Equal(before, await VacuumCountAsync());
    }

    [Fact]
    public async Task Below_the_threshold_the_worker_does_not_vacuum()
    {
        var before = await VacuumCountAsync();
        await using var app = db.CreateApp();

        await RunJobsAsync(app, 500, vacuumAfter: 501);

        Assert.Equal(500, await CountAsync("succeeded"));
        Assert.Equal(before, await VacuumCountAsync());
    }

    [Fact]
    public async Task A_vacuum_that_would_wait_for_another_one_is_skipped()
    {
        await using var connector = new NpgsqlConnector(db.ConnectionString);
        await using (var holder = await db.DataSource.OpenConnectionAsync())
        {
            // The lock a running vacuum holds.
            await using var tx = await holder.BeginTransactionAsync();
            await using (var lockCmd = new NpgsqlCommand("LOCK TABLE procrastinate_jobs IN SHARE UPDATE EXCLUSIVE MODE", holder, tx))
                await lockCmd.ExecuteNonQueryAsync();
            var before = await VacuumCountAsync();

            var skipped = await connector.VacuumJobsAsync(CancellationToken.None);

            Assert.Equal(VacuumOutcomeKind.Skipped, skipped.Kind);
            Assert.Equal(before, await VacuumCountAsync());
        }

        var done = await connector.VacuumJobsAsync(CancellationToken.None);
        Assert.Equal(VacuumOutcomeKind.Done, done.Kind);
    }

    [Fact]
    public async Task A_role_that_does_not_own_the_table_is_refused_and_the_worker_says_so_once_and_goes_on()
    {
        var role = $"procrastinate_not_owner_{Environment.ProcessId}_{GetType().Name.ToLowerInvariant()}";
        await db.ExecAsync($"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF;
            END $$;
            GRANT USAGE ON SCHEMA public TO {role};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
            GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};
            GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role};
            """);
        try
        {
            var asRole = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString;
            await using (var connector = new NpgsqlConnector(asRole))
            {
                var refused = await connector.VacuumJobsAsync(CancellationToken.None);
                Assert.Equal(VacuumOutcomeKind.Refused, refused.Kind);
                Assert.Contains("procrastinate_jobs", refused.Message, StringComparison.Ordinal);
            }

            var logs = new CapturingLoggerProvider();
            using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
            var before = await VacuumCountAsync();
            await using (var app = new App(new NpgsqlConnector(asRole), new AppOptions { LoggerFactory = factory }))
                await RunJobsAsync(app, 600, vacuumAfter: 100);

            Assert.Equal(600, await CountAsync("succeeded"));
            Assert.Equal(before, await VacuumCountAsync());
            var warnings = logs.Entries.Where(e => e.EventId.Id == 2013).ToList();
            var warning = Assert.Single(warnings);
            Assert.Equal(LogLevel.Warning, warning.Level);
            Assert.Contains("VacuumAfterClaimedJobs", warning.Message, StringComparison.Ordinal);
        }
        finally
        {
            await db.ExecAsync($"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    [Fact]
    public void A_negative_threshold_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new WorkerOptions { VacuumAfterClaimedJobs = -1 }.Validate());
        Assert.Equal(nameof(WorkerOptions.VacuumAfterClaimedJobs), e.ParamName);
    }
}

public sealed class VacuumCompatibleTests(DatabaseFixture db) : VacuumTests(db), IClassFixture<DatabaseFixture>;

public sealed class VacuumLeanTests(LeanDatabaseFixture db) : VacuumTests(db), IClassFixture<LeanDatabaseFixture>;
