using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

public sealed class StalledJobTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await db.ResetAsync();
        await db.ExecAsync("CREATE TABLE IF NOT EXISTS test_ledger (job_id bigint, pid int, at timestamptz DEFAULT clock_timestamp())");
        await db.ExecAsync("TRUNCATE test_ledger");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>A job claimed by a worker that died: heartbeat and start both <paramref name="age"/> ago.</summary>
    private async Task<(long JobId, long WorkerId)> DeadWorkersJob(string task, TimeSpan age, string? queueingLock = null)
    {
        var workerId = await db.ScalarAsync<long>("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - make_interval(secs => $1)) RETURNING id", age.TotalSeconds);
        var jobId = await db.ScalarAsync<long>(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, queueing_lock) VALUES ('default', $1, '{\"a\": 1, \"b\": 2}', $2) RETURNING id", task, queueingLock);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", workerId, jobId);
        await db.ExecAsync("UPDATE procrastinate_events SET at = now() - make_interval(secs => $1) WHERE job_id = $2", age.TotalSeconds, jobId);
        return (jobId, workerId);
    }

    private static WorkerOptions FastRescue(StalledJobPolicy policy) => new()
    {
        HandleSignals = false, StalledJobs = policy, StalledWorkerTimeout = TimeSpan.FromSeconds(2),
        UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(500), StalledJobsCheckInterval = TimeSpan.FromMilliseconds(300),
        FetchJobPollingInterval = TimeSpan.FromSeconds(30),
    };

    [Fact]
    public async Task Stalled_jobs_are_listed_by_heartbeat_age()
    {
        await using var app = db.CreateApp();
        var (stalled, _) = await DeadWorkersJob("t", TimeSpan.FromMinutes(5));
        var liveWorker = await db.ScalarAsync<long>("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id");
        var live = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('default', 't') RETURNING id");
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", liveWorker, live);
        var orphan = await db.ScalarAsync<long>("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('other', 't2') RETURNING id");
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", orphan);

        Assert.Equal([stalled, orphan], (await app.Jobs.ListStalledJobsAsync()).Select(j => j.Id));
        Assert.Equal([orphan], app.Jobs.ListStalledJobs(queue: "other").Select(j => j.Id));
        Assert.Equal([stalled], (await app.Jobs.ListStalledJobsAsync(taskName: "t")).Select(j => j.Id));
        Assert.Equal([stalled, live, orphan], (await app.Jobs.ListStalledJobsAsync(TimeSpan.Zero)).Select(j => j.Id));
    }

    [Fact]
    public async Task A_worker_rescues_a_dead_workers_job_and_runs_it()
    {
        await using var app = db.CreateApp();
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task<SumArgs>("rescued", (_, ctx) => ran.TrySetResult(ctx.Job.Attempts));
        var (jobId, _) = await DeadWorkersJob("rescued", TimeSpan.FromMinutes(5));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(FastRescue(StalledJobPolicy.Retry), cts.Token);
        Assert.Equal(1, await ran.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await cts.CancelAsync();
        await run;
        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId));
        var events = await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", jobId);
        Assert.Contains("deferred_for_retry", events.Select(e => (string)e["type"]!));
    }

    [Theory]
    [InlineData(StalledJobPolicy.Fail, "failed")]
    [InlineData(StalledJobPolicy.RetryPerStrategy, "failed")] // the task has no retry strategy
    [InlineData(StalledJobPolicy.Ignore, "doing")]
    public async Task The_policy_decides_what_happens_to_a_stalled_job(StalledJobPolicy policy, string expected)
    {
        await using var app = db.CreateApp();
        app.Task<SumArgs>("policy", _ => { });
        var (jobId, _) = await DeadWorkersJob("policy", TimeSpan.FromMinutes(5));
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(FastRescue(policy), cts.Token);
        if (policy == StalledJobPolicy.Ignore)
            await Task.Delay(1500); // several rescue intervals: nothing may happen
        else
            await WaitUntil(async () => await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId) != "doing",
                TimeSpan.FromSeconds(15));
        await cts.CancelAsync();
        await run;
        Assert.Equal(expected, await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId));
    }

    [Fact]
    public async Task A_job_of_a_live_worker_is_left_alone()
    {
        await using var app = db.CreateApp();
        var (jobId, workerId) = await DeadWorkersJob("alive", TimeSpan.FromMinutes(5));
        await db.ExecAsync("UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = $1", workerId);
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(FastRescue(StalledJobPolicy.Retry), cts.Token);
        await Task.Delay(1200);
        await cts.CancelAsync();
        await run;
        Assert.Equal("doing", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId));
    }

    [Fact]
    public async Task A_rescue_into_a_taken_queueing_lock_fails_the_stalled_job()
    {
        await using var app = db.CreateApp();
        var (jobId, _) = await DeadWorkersJob("qlocked", TimeSpan.FromMinutes(5), queueingLock: "only");
        var waiting = await app.DeferAsync("qlocked", "{}", new DeferOptions { QueueingLock = "only", Queue = "parked" });
        using var cts = new CancellationTokenSource();
        var run = app.RunWorkerAsync(FastRescue(StalledJobPolicy.Retry) with { Queues = ["default"] }, cts.Token);
        await WaitUntil(async () => await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId) != "doing",
            TimeSpan.FromSeconds(15));
        await cts.CancelAsync();
        await run;
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId));
        Assert.Equal("todo", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", waiting));
    }

    [Fact]
    public async Task A_late_write_from_a_worker_presumed_dead_changes_nothing()
    {
        await using var app = db.CreateApp();
        var (jobId, deadWorker) = await DeadWorkersJob("late", TimeSpan.FromMinutes(5));
        var job = (await app.Jobs.GetAsync(jobId))!;
        // The rescue puts it back to todo (attempts + 1); then the presumed-dead worker finishes its old run.
        await app.Jobs.RetryAsync(jobId);
        var written = await ((NpgsqlConnector)app.Connector).FinishJobsAsync(
            [new Internal.JobOutcome(job, JobStatus.Succeeded, false, null, null, TimeSpan.Zero)], deadWorker, CancellationToken.None);
        Assert.Empty(written);
        Assert.Equal("todo", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", jobId));
        var retried = await ((NpgsqlConnector)app.Connector).RetryJobAsync(
            new Internal.JobOutcome(job, JobStatus.Failed, false, new Internal.ResolvedRetry(DateTimeOffset.UtcNow, null, null, null), null, TimeSpan.Zero),
            deadWorker, CancellationToken.None);
        Assert.False(retried);
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", jobId));
    }

    [Fact]
    public async Task A_worker_killed_mid_job_has_its_job_rerun_without_human_action()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("sleep", """{"ms": 60000, "honor_cancel": true}""");
        // A long first run in the doomed worker; after the kill, a second worker picks it up.
        await using var doomed = await WorkerProcess.StartAsync(db.ConnectionString, "heartbeat_ms=500", "stalled_s=2");
        await WaitUntil(async () => await db.ScalarAsync<long>("SELECT count(*) FROM test_ledger WHERE job_id = $1", id) == 1, TimeSpan.FromSeconds(20));
        doomed.Signal(WorkerProcess.SIGKILL);
        await doomed.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var killedAt = DateTimeOffset.UtcNow;
        // Make the rerun short so the test ends quickly.
        await db.ExecAsync("UPDATE procrastinate_jobs SET args = '{\"ms\": 10}' WHERE id = $1", id);

        await using var rescuer = await WorkerProcess.StartAsync(db.ConnectionString, "heartbeat_ms=500", "stalled_s=2", "rescue_ms=500");
        await WaitUntil(async () => await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id) == "succeeded",
            TimeSpan.FromSeconds(20));
        var elapsed = DateTimeOffset.UtcNow - killedAt;
        // Stalled timeout (2 s) + one rescue interval (0.5 s), plus start-up and slack.
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"rescued after {elapsed}");
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM test_ledger WHERE job_id = $1", id));
    }

    private static async Task WaitUntil(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }
}
