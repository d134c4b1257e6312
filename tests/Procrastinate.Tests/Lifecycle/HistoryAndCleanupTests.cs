using Procrastinate.Tests.Defer;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

/// <summary>Job history, manual retry and old-job cleanup (COMPAT.md 2.6.6, 3.10, 4.9, W6).</summary>
public sealed class HistoryAndCleanupTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    private Task<string> Status(long id) => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    private Task<int> Attempts(long id) => db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id);

    private Task<bool> AbortRequested(long id) => db.ScalarAsync<bool>("SELECT abort_requested FROM procrastinate_jobs WHERE id = $1", id);

    private async Task<bool> Exists(long id) => await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", id) == 1;

    private Task<long> EventCount(long id) => db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_events WHERE job_id = $1", id);

    private async Task<List<string>> Events(long id) =>
        [.. (await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id)).Select(r => (string)r["type"]!)];

    private static DateTimeOffset Microseconds(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % 10, TimeSpan.Zero);

    // ---- Events ----------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ListEvents_returns_the_history_of_a_job_run_by_a_worker_in_order(bool async)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("history", _ => { });
        var before = DateTimeOffset.UtcNow.AddMinutes(-1);
        var id = await task.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);

        var events = async ? await app.Jobs.ListEventsAsync(id) : app.Jobs.ListEvents(id);

        Assert.Equal([JobEventType.Deferred, JobEventType.Started, JobEventType.Succeeded], events.Select(e => e.Type));
        Assert.All(events, e => Assert.Equal(id, e.JobId));
        Assert.All(events, e => Assert.NotNull(e.At));
        Assert.All(events, e => Assert.InRange(e.At!.Value, before, DateTimeOffset.UtcNow.AddMinutes(1)));
        Assert.Equal(events.Select(e => e.Id).Order(), events.Select(e => e.Id));
        Assert.Equal(events.Select(e => e.At).Order(), events.Select(e => e.At));
        // The same rows as in the table.
        var rows = await db.QueryAsync("SELECT id, at FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id);
        Assert.Equal(rows.Select(r => (long)r["id"]!), events.Select(e => e.Id));
        Assert.Equal(rows.Select(r => new DateTimeOffset((DateTime)r["at"]!, TimeSpan.Zero)), events.Select(e => e.At!.Value));
    }

    [Fact]
    public async Task ListEvents_of_a_job_scheduled_in_the_future_has_a_scheduled_event_at_the_schedule()
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("later", _ => { });
        var at = Microseconds(DateTimeOffset.UtcNow.AddHours(3).AddTicks(1234567));
        var id = await task.DeferAsync(new SumArgs(1, 2), new DeferOptions { ScheduleAt = at });

        var events = await app.Jobs.ListEventsAsync(id);

        // On insert, the 'scheduled' trigger fires before the 'deferred' one (COMPAT.md 2.8).
        Assert.Equal([JobEventType.Scheduled, JobEventType.Deferred], events.Select(e => e.Type));
        Assert.Equal(at, events[0].At);
        Assert.True(events[1].At < at.AddHours(-2), "the deferred event is at the defer time");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ListEvents_of_an_unknown_job_is_empty(bool async)
    {
        await using var app = db.CreateApp();
        Assert.Empty(async ? await app.Jobs.ListEventsAsync(123456) : app.Jobs.ListEvents(123456));
    }

    [Fact]
    public async Task ListEvents_reads_cancel_and_abort_events()
    {
        await using var app = db.CreateApp();
        var id = await app.DeferAsync("history.cancel", "{}");
        Assert.True(await app.Jobs.AbortAsync(id));
        var events = app.Jobs.ListEvents(id);
        Assert.Equal([JobEventType.Deferred, JobEventType.AbortRequested, JobEventType.Cancelled], events.Select(e => e.Type));
    }

    // ---- Manual retry ------------------------------------------------------------------------------

    /// <summary>A job that failed once through a worker (attempts 1).</summary>
    private async Task<long> FailedJobAsync(App app, string name = "fails_once")
    {
        var runs = 0;
        var task = app.Task<SumArgs>(name, _ =>
        {
            if (Interlocked.Increment(ref runs) == 1)
                throw new InvalidOperationException("first run fails");
        });
        var id = await task.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);
        Assert.Equal("failed", await Status(id));
        Assert.Equal(1, await Attempts(id));
        return id;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Retry_of_a_failed_job_puts_it_back_to_todo_with_one_more_attempt(bool async)
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app);

        if (async) await app.Jobs.RetryAsync(id);
        else app.Jobs.Retry(id);

        Assert.Equal("todo", await Status(id));
        Assert.Equal(2, await Attempts(id));
        var events = await app.Jobs.ListEventsAsync(id);
        Assert.Equal(JobEventType.Retried, events[^1].Type);
        Assert.Equal(
            [JobEventType.Deferred, JobEventType.Started, JobEventType.Failed, JobEventType.Retried],
            events.Select(e => e.Type).Where(t => t != JobEventType.Scheduled));
        var job = await app.Jobs.GetAsync(id);
        Assert.NotNull(job);
        Assert.Equal(("default", 0, (string?)null), (job.Queue, job.Priority, job.Lock));
        Assert.False(job.AbortRequested);
    }

    [Fact]
    public async Task Retry_at_a_time_schedules_the_job_then()
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app);
        var at = Microseconds(DateTimeOffset.UtcNow.AddHours(2));

        await app.Jobs.RetryAsync(id, retryAt: at);

        var job = await app.Jobs.GetAsync(id);
        Assert.NotNull(job);
        Assert.Equal(JobStatus.Todo, job.Status);
        Assert.Equal(at, job.ScheduledAt);
        var events = await app.Jobs.ListEventsAsync(id);
        Assert.Contains(events, e => e.Type == JobEventType.Scheduled && e.At == at);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Retry_with_a_new_priority_queue_and_lock_changes_them(bool async)
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app);

        if (async) await app.Jobs.RetryAsync(id, priority: 9, queue: "elsewhere", @lock: "new_lock");
        else app.Jobs.Retry(id, priority: 9, queue: "elsewhere", @lock: "new_lock");

        var job = await app.Jobs.GetAsync(id);
        Assert.NotNull(job);
        Assert.Equal((JobStatus.Todo, 2, 9, "elsewhere", "new_lock"), (job.Status, job.Attempts, job.Priority, job.Queue, job.Lock));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Retry_of_a_succeeded_job_throws_and_changes_nothing(bool async)
    {
        await using var app = db.CreateApp();
        var task = app.Task<SumArgs>("ok", _ => { });
        var id = await task.DeferAsync(new SumArgs(1, 2));
        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);
        Assert.Equal("succeeded", await Status(id));

        var e = async
            ? await Assert.ThrowsAsync<InvalidOperationException>(() => app.Jobs.RetryAsync(id))
            : Assert.Throws<InvalidOperationException>(() => app.Jobs.Retry(id));

        Assert.Contains("invalid status to retry", e.Message);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(1, await Attempts(id));
    }

    [Fact]
    public async Task Retry_of_an_unknown_or_todo_job_throws()
    {
        await using var app = db.CreateApp();
        var todo = await app.DeferAsync("not_run", "{}");
        var unknown = await Assert.ThrowsAsync<InvalidOperationException>(() => app.Jobs.RetryAsync(todo + 1000));
        Assert.Contains("invalid status to retry", unknown.Message);
        var waiting = Assert.Throws<InvalidOperationException>(() => app.Jobs.Retry(todo));
        Assert.Contains("invalid status to retry", waiting.Message);
        Assert.Equal("todo", await Status(todo));
        Assert.Equal(0, await Attempts(todo));
    }

    [Fact]
    public async Task Retry_of_a_job_that_failed_through_the_abort_path_succeeds_and_clears_the_flag()
    {
        await using var app = db.CreateApp();
        // The row state a Python worker leaves (COMPAT.md W6): a flagged 'doing' job sent to retry.
        var id = await db.ScalarAsync<long>("""
            SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
                ROW('default', 'aborted_then_failed', 0, NULL, NULL, '{}'::jsonb, NULL)::procrastinate_job_to_defer_v1]))
            """);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);
        await db.ExecAsync("SELECT procrastinate_cancel_job_v1($1, true, false)", id);
        await db.ExecAsync("SELECT procrastinate_retry_job_v2($1, now(), NULL, NULL, NULL)", id);
        Assert.Equal("failed", await Status(id));
        Assert.True(await AbortRequested(id));
        Assert.Equal(0, await Attempts(id));

        await app.Jobs.RetryAsync(id);

        Assert.Equal("todo", await Status(id));
        Assert.False(await AbortRequested(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal(["deferred", "started", "abort_requested", "failed", "retried"],
            (await Events(id)).Where(e => e != "scheduled"));
    }

    [Fact]
    public async Task A_retry_that_hits_a_queueing_lock_changes_nothing_not_even_the_abort_flag()
    {
        await using var app = db.CreateApp();
        // A failed job with the abort flag (W6) and a queueing lock, while another job waits under that lock.
        var id = await db.ScalarAsync<long>("""
            SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
                ROW('default', 'locked_retry', 0, NULL, 'qlock', '{}'::jsonb, NULL)::procrastinate_job_to_defer_v1]))
            """);
        await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);
        await db.ExecAsync("SELECT procrastinate_cancel_job_v1($1, true, false)", id);
        await db.ExecAsync("SELECT procrastinate_retry_job_v2($1, now(), NULL, NULL, NULL)", id);
        var waiting = await app.DeferAsync("locked_retry", "{}", new DeferOptions { QueueingLock = "qlock" });

        await Assert.ThrowsAnyAsync<Exception>(() => app.Jobs.RetryAsync(id));

        // The flag is cleared only together with the retry (COMPAT.md W6: same transaction).
        Assert.Equal("failed", await Status(id));
        Assert.True(await AbortRequested(id));
        Assert.Equal(0, await Attempts(id));
        Assert.Equal("todo", await Status(waiting));
    }

    [Fact]
    public async Task A_retried_job_runs_again_on_a_worker()
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app, "second_time_lucky");

        await app.Jobs.RetryAsync(id);
        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);

        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(3, await Attempts(id));
        Assert.Equal(["deferred", "started", "failed", "retried", "started", "succeeded"],
            (await Events(id)).Where(e => e != "scheduled"));
    }

    [Fact]
    public async Task Retry_inside_a_rolled_back_transaction_leaves_the_job_failed()
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await app.Jobs.RetryAsync(id, tx);
            Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id, tx));
            await tx.RollbackAsync();
        }

        Assert.Equal("failed", await Status(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal(["deferred", "started", "failed"], await Events(id));
    }

    [Fact]
    public async Task Retry_inside_a_committed_transaction_puts_the_job_back_to_todo()
    {
        await using var app = db.CreateApp();
        var id = await FailedJobAsync(app);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await app.Jobs.RetryAsync(id, tx, priority: 3);
            await tx.CommitAsync();
        }

        Assert.Equal("todo", await Status(id));
        Assert.Equal(2, await Attempts(id));
        Assert.Equal(3, await db.ScalarAsync<int>("SELECT priority FROM procrastinate_jobs WHERE id = $1", id));
    }

    // ---- Delete old jobs -------------------------------------------------------------------------------

    /// <summary>A job brought to <paramref name="status"/> through the SQL functions, with all its events <paramref name="age"/> old.</summary>
    private async Task<long> JobAsync(App app, string status, string queue = "default", string? age = "5 hours")
    {
        var id = await app.DeferAsync("cleanup.dummy", "{}", new DeferOptions { Queue = queue });
        switch (status)
        {
            case "todo":
                break;
            case "doing":
                await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);
                break;
            case "cancelled":
                await db.ExecAsync("SELECT procrastinate_cancel_job_v1($1, false, false)", id);
                break;
            default:
                await db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = $1", id);
                await db.ExecAsync("SELECT procrastinate_finish_job_v1($1, $2::text::procrastinate_job_status, false)", id, status);
                break;
        }
        Assert.Equal(status, await Status(id));
        if (age is not null)
            await AgeAsync(id, age);
        return id;
    }

    private Task AgeAsync(long id, string age) =>
        db.ExecAsync("UPDATE procrastinate_events SET at = now() - $2::text::interval WHERE job_id = $1", id, age);

    private static readonly string[] AllStatuses = ["succeeded", "failed", "cancelled", "aborted", "todo", "doing"];

    [Theory]
    [InlineData(false, false, false, false)]
    [InlineData(true, false, false, false)]
    [InlineData(false, true, false, false)]
    [InlineData(false, false, true, false)]
    [InlineData(true, true, true, false)]
    [InlineData(false, false, false, true)]
    [InlineData(true, true, true, true)]
    public async Task DeleteOldJobs_deletes_old_succeeded_jobs_and_other_final_statuses_only_when_asked(
        bool failed, bool cancelled, bool aborted, bool sync)
    {
        await using var app = db.CreateApp();
        var ids = new Dictionary<string, long>();
        foreach (var status in AllStatuses)
            ids[status] = await JobAsync(app, status);

        var count = sync
            ? app.Jobs.DeleteOldJobs(2, includeFailed: failed, includeCancelled: cancelled, includeAborted: aborted)
            : await app.Jobs.DeleteOldJobsAsync(2, includeFailed: failed, includeCancelled: cancelled, includeAborted: aborted);

        var expectedGone = new HashSet<string> { "succeeded" };
        if (failed) expectedGone.Add("failed");
        if (cancelled) expectedGone.Add("cancelled");
        if (aborted) expectedGone.Add("aborted");
        Assert.Equal(expectedGone.Count, count);
        foreach (var (status, id) in ids)
        {
            var gone = expectedGone.Contains(status);
            Assert.True(gone != await Exists(id), $"{status} job: expected {(gone ? "deleted" : "kept")}");
            if (gone)
                Assert.Equal(0L, await EventCount(id)); // events go by cascade
            else
                Assert.NotEqual(0L, await EventCount(id));
        }
    }

    [Fact]
    public async Task DeleteOldJobs_never_deletes_todo_or_doing_jobs()
    {
        await using var app = db.CreateApp();
        var todo = await JobAsync(app, "todo", age: "100 hours");
        var doing = await JobAsync(app, "doing", age: "100 hours");

        Assert.Equal(0, await app.Jobs.DeleteOldJobsAsync(1, includeFailed: true, includeCancelled: true, includeAborted: true));

        Assert.True(await Exists(todo));
        Assert.True(await Exists(doing));
    }

    [Fact]
    public async Task DeleteOldJobs_with_a_queue_deletes_only_that_queue()
    {
        await using var app = db.CreateApp();
        var inA = await JobAsync(app, "succeeded", queue: "a");
        var failedInA = await JobAsync(app, "failed", queue: "a");
        var inB = await JobAsync(app, "succeeded", queue: "b");

        Assert.Equal(1, await app.Jobs.DeleteOldJobsAsync(2, queue: "a"));

        Assert.False(await Exists(inA));
        Assert.True(await Exists(failedInA));
        Assert.True(await Exists(inB));

        Assert.Equal(1, app.Jobs.DeleteOldJobs(2, queue: "b", includeFailed: true));
        Assert.False(await Exists(inB));
        Assert.True(await Exists(failedInA));
    }

    [Fact]
    public async Task DeleteOldJobs_looks_at_the_latest_event_and_keeps_jobs_newer_than_the_threshold()
    {
        await using var app = db.CreateApp();
        var justOlder = await JobAsync(app, "succeeded", age: "2 hours 1 minute");
        var justNewer = await JobAsync(app, "succeeded", age: "1 hour 59 minutes");
        // Old events, but the latest one is recent: kept (the max, not the min, counts).
        var recentLast = await JobAsync(app, "succeeded", age: "10 hours");
        await db.ExecAsync(
            "UPDATE procrastinate_events SET at = now() - interval '30 minutes' WHERE id = (SELECT max(id) FROM procrastinate_events WHERE job_id = $1)",
            recentLast);
        var fresh = await JobAsync(app, "succeeded", age: null);

        Assert.Equal(1, await app.Jobs.DeleteOldJobsAsync(2));

        Assert.False(await Exists(justOlder));
        Assert.True(await Exists(justNewer));
        Assert.True(await Exists(recentLast));
        Assert.True(await Exists(fresh));
    }

    [Fact]
    public async Task DeleteOldJobs_keeps_a_job_without_events_and_a_job_with_an_event_without_time()
    {
        await using var app = db.CreateApp();
        var noEvents = await JobAsync(app, "succeeded");
        await db.ExecAsync("DELETE FROM procrastinate_events WHERE job_id = $1", noEvents);
        var nullAt = await JobAsync(app, "succeeded");
        await db.ExecAsync(
            "UPDATE procrastinate_events SET at = NULL WHERE id = (SELECT min(id) FROM procrastinate_events WHERE job_id = $1)", nullAt);
        var normal = await JobAsync(app, "succeeded");

        Assert.Equal(1, await app.Jobs.DeleteOldJobsAsync(2));

        Assert.True(await Exists(noEvents));
        Assert.True(await Exists(nullAt));
        Assert.False(await Exists(normal));
    }

    [Fact]
    public async Task DeleteOldJobs_unlinks_periodic_defers_of_deleted_jobs()
    {
        await using var app = db.CreateApp();
        var id = await JobAsync(app, "succeeded");
        await db.ExecAsync(
            "INSERT INTO procrastinate_periodic_defers (task_name, defer_timestamp, job_id, periodic_id) VALUES ('cleanup.dummy', 1, $1, '')", id);

        Assert.Equal(1, await app.Jobs.DeleteOldJobsAsync(2));

        Assert.False(await Exists(id));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_periodic_defers WHERE job_id IS NULL"));
    }

    // ---- The builtin remove_old_jobs task ------------------------------------------------------------------

    [Fact]
    public async Task The_builtin_remove_old_jobs_task_has_Procrastinates_name_alias_and_queue()
    {
        await using var app = db.CreateApp();
        var task = app.BuiltinTasks.RemoveOldJobs;
        Assert.Equal("builtin:procrastinate.builtin_tasks.remove_old_jobs", task.Name);
        Assert.Equal(["procrastinate.builtin_tasks.remove_old_jobs"], task.Aliases);
        Assert.Equal("builtin", task.Queue);
        Assert.Equal(0, task.Priority);
        Assert.Null(task.Lock);
        Assert.Same(task, app.FindTask("procrastinate.builtin_tasks.remove_old_jobs"));
        Assert.Same(task, app.FindTask("builtin:procrastinate.builtin_tasks.remove_old_jobs"));
    }

    [Theory]
    [InlineData("task")]
    [InlineData("name")]
    [InlineData("alias")]
    public async Task The_builtin_remove_old_jobs_job_deletes_old_jobs_as_asked(string how)
    {
        await using var app = db.CreateApp();
        var succeeded = await JobAsync(app, "succeeded");
        var failed = await JobAsync(app, "failed");
        var cancelled = await JobAsync(app, "cancelled");
        var aborted = await JobAsync(app, "aborted");
        var recent = await JobAsync(app, "succeeded", age: "1 hour");
        var todo = await JobAsync(app, "todo");

        const string json = """{"max_hours": 2, "remove_failed": true}""";
        var builtin = how switch
        {
            "task" => await app.BuiltinTasks.RemoveOldJobs.DeferAsync(new RemoveOldJobsArgs(2, RemoveFailed: true)),
            "name" => await app.DeferAsync(BuiltinTasks.RemoveOldJobsName, json),
            _ => await app.DeferAsync("procrastinate.builtin_tasks.remove_old_jobs", json), // how Python defers under the old name
        };
        var row = (await db.QueryAsync("SELECT queue_name, task_name, args::text AS args FROM procrastinate_jobs WHERE id = $1", builtin)).Single();
        Assert.Equal("builtin", row["queue_name"]);
        Assert.Equal(how == "alias" ? BuiltinTasks.RemoveOldJobsAlias : BuiltinTasks.RemoveOldJobsName, row["task_name"]);

        await app.RunWorkerAsync(OneShot with { Queues = ["builtin"] }).WaitAsync(Generous);

        Assert.Equal("succeeded", await Status(builtin));
        Assert.False(await Exists(succeeded));
        Assert.False(await Exists(failed));
        Assert.True(await Exists(cancelled));
        Assert.True(await Exists(aborted));
        Assert.True(await Exists(recent));
        Assert.True(await Exists(todo));
    }

    [Fact]
    public async Task The_builtin_remove_old_jobs_job_honours_queue_and_the_cancelled_and_aborted_flags()
    {
        await using var app = db.CreateApp();
        var cancelledA = await JobAsync(app, "cancelled", queue: "a");
        var abortedA = await JobAsync(app, "aborted", queue: "a");
        var failedA = await JobAsync(app, "failed", queue: "a");
        var succeededB = await JobAsync(app, "succeeded", queue: "b");

        var builtin = await app.DeferAsync("procrastinate.builtin_tasks.remove_old_jobs",
            """{"max_hours": 2, "queue": "a", "remove_cancelled": true, "remove_aborted": true}""");
        await app.RunWorkerAsync(OneShot with { Queues = ["builtin"] }).WaitAsync(Generous);

        Assert.Equal("succeeded", await Status(builtin));
        Assert.False(await Exists(cancelledA));
        Assert.False(await Exists(abortedA));
        Assert.True(await Exists(failedA));
        Assert.True(await Exists(succeededB));
    }

    [Fact]
    public async Task The_builtin_remove_old_jobs_job_is_not_run_by_a_worker_of_other_queues()
    {
        await using var app = db.CreateApp();
        var succeeded = await JobAsync(app, "succeeded");
        var builtin = await app.BuiltinTasks.RemoveOldJobs.DeferAsync(new RemoveOldJobsArgs(2));

        await app.RunWorkerAsync(OneShot with { Queues = ["default"] }).WaitAsync(Generous);
        Assert.Equal("todo", await Status(builtin));
        Assert.True(await Exists(succeeded));

        // A worker of all queues runs it.
        await app.RunWorkerAsync(OneShot).WaitAsync(Generous);
        Assert.Equal("succeeded", await Status(builtin));
        Assert.False(await Exists(succeeded));
    }
}
