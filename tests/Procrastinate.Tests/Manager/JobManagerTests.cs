using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Manager;

public sealed class JobManagerTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<(App App, long[] Ids)> Seed()
    {
        var app = db.CreateApp();
        // q1: sum x3 (one failed, one with lock L), q2: other x2 (one cancelled)
        var a = await app.DeferAsync("sum", "{}", new DeferOptions { Queue = "q1" });
        var b = await app.DeferAsync("sum", "{}", new DeferOptions { Queue = "q1", Lock = "L", QueueingLock = "QL" });
        var c = await app.DeferAsync("sum", "{}", new DeferOptions { Queue = "q1", Lock = "L" });
        var d = await app.DeferAsync("other", "{}", new DeferOptions { Queue = "q2" });
        var e = await app.DeferAsync("other", "{}", new DeferOptions { Queue = "q2", Lock = "M" });
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", a);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = $1", a);
        await app.Jobs.CancelAsync(d);
        return (app, [a, b, c, d, e]);
    }

    [Fact]
    public async Task Listing_jobs_filters_on_every_field_in_id_order_with_the_shells_fields()
    {
        var (app, ids) = await Seed();
        await using var _ = app;
        Assert.Equal(ids, (await app.Jobs.ListAsync()).Select(j => j.Id));
        Assert.Equal([ids[1], ids[2]], app.Jobs.List(new JobFilter { Lock = "L" }).Select(j => j.Id));
        Assert.Equal([ids[3], ids[4]], (await app.Jobs.ListAsync(new JobFilter { Queue = "q2" })).Select(j => j.Id));
        Assert.Equal([ids[0]], (await app.Jobs.ListAsync(new JobFilter { Status = JobStatus.Failed })).Select(j => j.Id));
        Assert.Equal([ids[1]], (await app.Jobs.ListAsync(new JobFilter { QueueingLock = "QL" })).Select(j => j.Id));
        Assert.Equal([ids[2]], (await app.Jobs.ListAsync(new JobFilter { Id = ids[2] })).Select(j => j.Id));
        Assert.Equal([ids[3], ids[4]], (await app.Jobs.ListAsync(new JobFilter { Task = "other" })).Select(j => j.Id));
        Assert.Empty(await app.Jobs.ListAsync(new JobFilter { WorkerId = 12345 }));

        var job = (await app.Jobs.ListAsync(new JobFilter { Id = ids[3] })).Single();
        Assert.Equal($"#{ids[3]} other on q2 - [cancelled]", job.ToString());
        Assert.Equal(("q2", "other", 0, null, null, "{}", JobStatus.Cancelled, null, 0, false, null),
            (job.Queue, job.TaskName, job.Priority, job.Lock, job.QueueingLock, job.ArgsJson, job.Status, job.ScheduledAt, job.Attempts, job.AbortRequested, job.WorkerId));
    }

    [Fact]
    public async Task Listing_jobs_pages_forwards_and_backwards()
    {
        var (app, ids) = await Seed();
        await using var _ = app;
        var first = await app.Jobs.ListAsync(page: new JobPage(Limit: 2));
        var second = await app.Jobs.ListAsync(page: new JobPage(Limit: 2, After: first[^1].Id));
        var third = await app.Jobs.ListAsync(page: new JobPage(Limit: 2, After: second[^1].Id));
        Assert.Equal(ids, first.Concat(second).Concat(third).Select(j => j.Id));
        var newest = await app.Jobs.ListAsync(page: new JobPage(Limit: 3, NewestFirst: true));
        Assert.Equal(ids.Reverse().Take(3), newest.Select(j => j.Id));
        var older = await app.Jobs.ListAsync(page: new JobPage(Limit: 3, After: newest[^1].Id, NewestFirst: true));
        Assert.Equal(ids.Reverse().Skip(3), older.Select(j => j.Id));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => app.Jobs.ListAsync(page: new JobPage(Limit: 0)));
    }

    [Fact]
    public async Task Queues_tasks_and_locks_are_counted_per_status()
    {
        var (app, _) = await Seed();
        await using var __ = app;
        Assert.Equal(
            [new JobCounts("q1", 3, 2, 0, 0, 1, 0, 0), new JobCounts("q2", 2, 1, 0, 0, 0, 1, 0)],
            await app.Jobs.ListQueuesAsync());
        Assert.Equal(
            [new JobCounts("other", 2, 1, 0, 0, 0, 1, 0), new JobCounts("sum", 3, 2, 0, 0, 1, 0, 0)],
            app.Jobs.ListTasks());
        Assert.Equal([new JobCounts("L", 2, 2, 0, 0, 0, 0, 0), new JobCounts("M", 1, 1, 0, 0, 0, 0, 0)], await app.Jobs.ListLocksAsync());
        Assert.Equal([new JobCounts("q1", 1, 0, 0, 0, 1, 0, 0)], await app.Jobs.ListQueuesAsync(new JobFilter { Status = JobStatus.Failed }));
        Assert.Equal([new JobCounts("L", 2, 2, 0, 0, 0, 0, 0)], await app.Jobs.ListLocksAsync(new JobFilter { Queue = "q1" }));
    }

    [Fact]
    public async Task Details_include_the_event_history()
    {
        var (app, ids) = await Seed();
        await using var _ = app;
        var details = await app.Jobs.GetDetailsAsync(ids[0]);
        Assert.NotNull(details);
        Assert.Equal(JobStatus.Failed, details.Job.Status);
        Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Failed], details.Events.Select(e => e.Type!.Value));
        Assert.Null(await app.Jobs.GetDetailsAsync(-1));
        Assert.NotNull(app.Jobs.GetDetails(ids[1]));
    }

    [Fact]
    public async Task Delete_removes_a_job_that_is_not_running()
    {
        var (app, ids) = await Seed();
        await using var _ = app;
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", ids[4]);
        Assert.True(await app.Jobs.DeleteAsync(ids[0]));
        Assert.True(app.Jobs.Delete(ids[3]));
        Assert.False(await app.Jobs.DeleteAsync(ids[4])); // running
        Assert.False(await app.Jobs.DeleteAsync(ids[0])); // gone
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_events WHERE job_id = $1", ids[0]));
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using (var tx = await connection.BeginTransactionAsync())
        {
            Assert.True(await app.Jobs.DeleteAsync(ids[1], tx));
            await tx.RollbackAsync();
        }
        Assert.NotNull(await app.Jobs.GetAsync(ids[1]));
    }

    [Fact]
    public async Task Stalled_jobs_can_be_rescued_by_hand()
    {
        await using var app = db.CreateApp();
        var dead = await db.ScalarAsync<long>("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id");
        var id = await app.DeferAsync("t", "{}");
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", dead, id);
        await db.ExecAsync("UPDATE procrastinate_events SET at = now() - interval '1 hour' WHERE job_id = $1", id);
        Assert.Equal([id], (await app.Jobs.ListStalledJobsAsync()).Select(j => j.Id));
        Assert.Equal([id], (await app.Jobs.RescueStalledJobsAsync()).Select(j => j.Id));
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
        Assert.Empty(await app.Jobs.ListStalledJobsAsync());
    }

    [Fact]
    public async Task Workers_are_listed_with_their_metadata()
    {
        await using var app = db.CreateApp();
        var seen = new TaskCompletionSource<IReadOnlyList<WorkerRow>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("probe", async (_, ctx) => seen.TrySetResult(await ctx.App.Jobs.ListWorkersAsync()));
        await task.DeferAsync(new SumArgs(1, 1));
        var python = await db.ScalarAsync<long>("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id");
        await app.RunWorkerAsync(new WorkerOptions { Name = "lister", Wait = false, HandleSignals = false, ListenNotify = false, Queues = ["default"] });
        var rows = await seen.Task;
        var ours = Assert.Single(rows, r => r.Name == "lister");
        Assert.Equal((Environment.ProcessId, 1, 1L), (ours.ProcessId!.Value, ours.Concurrency!.Value, ours.RunningJobs));
        Assert.Equal(["default"], ours.Queues);
        var other = Assert.Single(rows, r => r.Id == python);
        Assert.Null(other.Name);
    }
}
