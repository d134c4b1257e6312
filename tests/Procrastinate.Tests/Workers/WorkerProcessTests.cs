using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Workers;

public sealed class WorkerProcessTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await db.ResetAsync();
        await db.ExecAsync("CREATE TABLE IF NOT EXISTS test_ledger (job_id bigint, pid int, at timestamptz DEFAULT clock_timestamp())");
        await db.ExecAsync("TRUNCATE test_ledger");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task WaitUntil(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task SIGTERM_mid_job_lets_the_job_finish_and_leaves_no_doing_row()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("sleep", """{"ms": 1500, "honor_cancel": false}""");
        await using var worker = await WorkerProcess.StartAsync(db.ConnectionString);
        await WaitUntil(async () => await db.ScalarAsync<long>("SELECT count(*) FROM test_ledger WHERE job_id = $1", id) == 1, TimeSpan.FromSeconds(20));

        worker.Signal(WorkerProcess.SIGTERM);
        var exit = await worker.WaitForExitAsync(TimeSpan.FromSeconds(20));

        Assert.True(exit == 0, worker.Output);
        Assert.Contains("STOPPED", worker.Output);
        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers"));
    }

    [Fact]
    public async Task SIGTERM_with_a_graceful_timeout_aborts_a_long_job_and_leaves_no_doing_row()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("sleep", """{"ms": 60000, "honor_cancel": true}""");
        await using var worker = await WorkerProcess.StartAsync(db.ConnectionString, "graceful_ms=300");
        await WaitUntil(async () => await db.ScalarAsync<long>("SELECT count(*) FROM test_ledger WHERE job_id = $1", id) == 1, TimeSpan.FromSeconds(20));

        worker.Signal(WorkerProcess.SIGTERM);
        var exit = await worker.WaitForExitAsync(TimeSpan.FromSeconds(20));

        Assert.True(exit == 0, worker.Output);
        Assert.Equal("aborted", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
    }
}
