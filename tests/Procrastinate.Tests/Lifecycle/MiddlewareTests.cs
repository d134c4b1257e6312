using System.Collections.Concurrent;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

public sealed class MiddlewareTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    private sealed record Args(int N, bool Fail = false);

    private sealed class BodyException(string message) : Exception(message);

    private sealed class MiddlewareException(string message) : Exception(message);

    /// <summary>A middleware written as a lambda.</summary>
    private sealed class Inline(Func<JobContext, JobDelegate, Task> invoke) : IJobMiddleware
    {
        public Task InvokeAsync(JobContext context, JobDelegate next) => invoke(context, next);
    }

    /// <summary>Records "enter X" and "exit X" around the rest of the pipeline.</summary>
    private sealed class Recorder(string name, ConcurrentQueue<string> log) : IJobMiddleware
    {
        public async Task InvokeAsync(JobContext context, JobDelegate next)
        {
            log.Enqueue("enter " + name);
            await next(context);
            log.Enqueue("exit " + name);
        }
    }

    /// <summary>A handler-class task; it logs through the worker's additional context.</summary>
    private sealed class LoggingHandler : IJobHandler<Args>
    {
        public Task HandleAsync(Args args, JobContext context, CancellationToken cancellationToken)
        {
            var log = (ConcurrentQueue<string>)context.AdditionalContext["log"]!;
            log.Enqueue($"handler {args.N}");
            return Task.CompletedTask;
        }
    }

    private Task<string> Status(long id) => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    private Task<int> Attempts(long id) => db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id);

    private async Task<List<string>> Events(long id) =>
        [.. (await db.QueryAsync("SELECT type::text AS type FROM procrastinate_events WHERE job_id = $1 ORDER BY id", id)).Select(r => (string)r["type"]!)];

    [Fact]
    public async Task Worker_middleware_wraps_task_middleware_which_wraps_the_body_first_registered_outermost()
    {
        await using var app = db.CreateApp();
        var log = new ConcurrentQueue<string>();
        var task = app.Task<Args>("ordered", _ => log.Enqueue("body"));
        task.Use(new Recorder("T1", log)).Use(new Recorder("T2", log));
        var id = await task.DeferAsync(new Args(1));

        await app.RunWorkerAsync(OneShot with { Middleware = [new Recorder("W1", log), new Recorder("W2", log)] });

        Assert.Equal(
            ["enter W1", "enter W2", "enter T1", "enter T2", "body", "exit T2", "exit T1", "exit W2", "exit W1"],
            log);
        Assert.Equal("succeeded", await Status(id));
    }

    [Fact]
    public async Task Use_returns_the_task_and_lists_its_middleware_in_registration_order()
    {
        await using var app = db.CreateApp();
        var task = app.Task<Args>("listed", _ => { });
        var first = new Recorder("T1", new ConcurrentQueue<string>());
        var second = new Recorder("T2", new ConcurrentQueue<string>());

        var returned = task.Use(first).Use(second);

        Assert.Same(task, returned);
        Assert.Equal<IJobMiddleware>([first, second], task.Middleware);
        Assert.Throws<ArgumentNullException>(() => task.Use(null!));
    }

    [Fact]
    public async Task Middleware_sees_the_body_exception_through_next_and_the_job_fails()
    {
        await using var app = db.CreateApp();
        var seen = new ConcurrentQueue<string>();
        var task = app.Task<Args>("outcome", async a =>
        {
            await Task.Yield();
            if (a.Fail)
                throw new BodyException($"body {a.N} failed");
        });
        task.Use(new Inline(async (context, next) =>
        {
            try
            {
                await next(context);
                seen.Enqueue($"task ok {context.Job.Id}");
            }
            catch (BodyException e)
            {
                seen.Enqueue($"task caught {context.Job.Id}: {e.Message}");
                throw;
            }
        }));
        var workerMiddleware = new Inline(async (context, next) =>
        {
            try
            {
                await next(context);
                seen.Enqueue($"worker ok {context.Job.Id}");
            }
            catch (Exception e)
            {
                seen.Enqueue($"worker caught {context.Job.Id}: {e.GetType().Name} {e.Message}");
                throw;
            }
        });
        var failing = await task.DeferAsync(new Args(1, Fail: true));
        var passing = await task.DeferAsync(new Args(2));

        await app.RunWorkerAsync(OneShot with { Middleware = [workerMiddleware] });

        Assert.Equal(
            [
                $"task caught {failing}: body 1 failed",
                $"worker caught {failing}: BodyException body 1 failed",
                $"task ok {passing}",
                $"worker ok {passing}",
            ],
            seen);
        Assert.Equal("failed", await Status(failing));
        Assert.Equal(["deferred", "started", "failed"], await Events(failing));
        Assert.Equal("succeeded", await Status(passing));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(passing));
    }

    [Fact]
    public async Task Middleware_can_read_the_job_and_the_worker_from_the_context()
    {
        await using var app = db.CreateApp();
        var task = app.Task<Args>("inspected", _ => { }, queue: "inspect");
        Job? seenJob = null;
        WorkerInfo? seenWorker = null;
        long? storedWorkerId = null;
        var middleware = new Inline(async (context, next) =>
        {
            seenJob = context.Job;
            seenWorker = context.Worker;
            storedWorkerId = await db.ScalarAsync<long?>("SELECT worker_id FROM procrastinate_jobs WHERE id = $1", context.Job.Id);
            await next(context);
        });
        var id = await task.DeferAsync(new Args(42));

        await app.RunWorkerAsync(OneShot with { Name = "inspector", Queues = ["inspect"], Middleware = [middleware] });

        Assert.NotNull(seenJob);
        Assert.Equal(id, seenJob.Id);
        Assert.Equal("inspected", seenJob.TaskName);
        Assert.Equal("inspect", seenJob.Queue);
        Assert.Equal(0, seenJob.Attempts);
        Assert.Equal(42, seenJob.Args.GetProperty("n").GetInt32());
        Assert.Equal(new Args(42), task.Deserialize(seenJob.ArgsJson));
        Assert.NotNull(seenWorker);
        Assert.Equal("inspector", seenWorker.Name);
        Assert.Equal(["inspect"], seenWorker.Queues!);
        Assert.True(seenWorker.Id > 0);
        Assert.Equal(seenWorker.Id, storedWorkerId);
        Assert.Equal("succeeded", await Status(id));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_middleware_that_throws_before_next_fails_the_job_without_running_the_body(bool synchronousThrow)
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var task = app.Task<Args>("guarded", _ => Interlocked.Increment(ref ran));
        IJobMiddleware middleware = synchronousThrow
            ? new Inline((_, _) => throw new MiddlewareException("refused"))
            : new Inline(async (_, _) =>
            {
                await Task.Yield();
                throw new MiddlewareException("refused");
            });
        var id = await task.DeferAsync(new Args(1));
        var other = await task.DeferAsync(new Args(2));

        await app.RunWorkerAsync(OneShot with { Middleware = [middleware] });

        Assert.Equal(0, ran);
        Assert.Equal("failed", await Status(id));
        Assert.Equal(["deferred", "started", "failed"], await Events(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal("failed", await Status(other));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"));
    }

    [Fact]
    public async Task A_task_middleware_that_throws_fails_the_job_and_the_retry_strategy_sees_its_exception()
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var strategySaw = new ConcurrentQueue<Exception>();
        var task = app.Task<Args>("strategy.sees", _ => Interlocked.Increment(ref ran),
            retry: RetryStrategy.Custom((e, _) =>
            {
                strategySaw.Enqueue(e);
                return null;
            }));
        task.Use(new Inline((_, _) => throw new MiddlewareException("from middleware")));
        var id = await task.DeferAsync(new Args(1));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal(0, ran);
        var seen = Assert.Single(strategySaw);
        Assert.IsType<MiddlewareException>(seen);
        Assert.Equal("from middleware", seen.Message);
        Assert.Equal("failed", await Status(id));
    }

    [Fact]
    public async Task A_middleware_that_throws_on_the_first_attempt_only_lets_the_retry_succeed()
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var attemptsSeen = new ConcurrentQueue<int>();
        var task = app.Task<Args>("retried", _ => Interlocked.Increment(ref ran), retry: RetryStrategy.Times(1));
        var middleware = new Inline((context, next) =>
        {
            attemptsSeen.Enqueue(context.Job.Attempts);
            return context.Job.Attempts == 0 ? throw new MiddlewareException("first attempt") : next(context);
        });
        var id = await task.DeferAsync(new Args(1));

        // The retry is due at once; it may run in the same one-shot run or need another one.
        for (var run = 0; run < 3 && await Status(id) != "succeeded"; run++)
            await app.RunWorkerAsync(OneShot with { Middleware = [middleware] });

        Assert.Equal("succeeded", await Status(id));
        Assert.Equal([0, 1], attemptsSeen);
        Assert.Equal(1, ran);
        Assert.Equal(2, await Attempts(id));
        // The retry also writes a "scheduled" event (the trigger sees scheduled_at set), as with Python.
        Assert.Equal(["deferred", "started", "scheduled", "deferred_for_retry", "started", "succeeded"], await Events(id));
    }

    [Fact]
    public async Task A_middleware_failure_with_a_delayed_retry_puts_the_job_back_to_todo()
    {
        await using var app = db.CreateApp();
        var ran = 0;
        var task = app.Task<Args>("delayed.retry", _ => Interlocked.Increment(ref ran),
            retry: new RetryStrategy { MaxAttempts = 1, Wait = TimeSpan.FromHours(1) });
        var throwing = true;
        task.Use(new Inline((context, next) => Volatile.Read(ref throwing) ? throw new MiddlewareException("not yet") : next(context)));
        var id = await task.DeferAsync(new Args(1));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal(0, ran);
        Assert.Equal("todo", await Status(id));
        Assert.Equal(1, await Attempts(id));
        Assert.True(await db.ScalarAsync<bool>("SELECT scheduled_at > now() + interval '50 minutes' FROM procrastinate_jobs WHERE id = $1", id));

        Volatile.Write(ref throwing, false);
        await db.ExecAsync("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = $1", id);
        await app.RunWorkerAsync(OneShot);

        Assert.Equal(1, ran);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(2, await Attempts(id));
    }

    [Fact]
    public async Task A_middleware_that_swallows_the_body_exception_makes_the_job_succeed()
    {
        await using var app = db.CreateApp();
        var swallowed = new ConcurrentQueue<Exception>();
        Action<Args> body = _ => throw new BodyException("ignored");
        var task = app.Task("swallowed", body, retry: RetryStrategy.Forever);
        task.Use(new Inline(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (BodyException e)
            {
                swallowed.Enqueue(e);
            }
        }));
        var id = await task.DeferAsync(new Args(1));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal("ignored", Assert.Single(swallowed).Message);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(1, await Attempts(id));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(id));
    }

    [Fact]
    public async Task A_middleware_that_does_not_call_next_skips_the_body_and_the_job_succeeds()
    {
        await using var app = db.CreateApp();
        var log = new ConcurrentQueue<string>();
        var task = app.Task<Args>("short.circuit", _ => log.Enqueue("body"));
        task.Use(new Recorder("inner", log));
        var id = await task.DeferAsync(new Args(1));
        var shortCircuit = new Inline((_, _) =>
        {
            log.Enqueue("short-circuit");
            return Task.CompletedTask;
        });

        await app.RunWorkerAsync(OneShot with { Middleware = [shortCircuit] });

        Assert.Equal(["short-circuit"], log);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal(["deferred", "started", "succeeded"], await Events(id));
    }

    [Fact]
    public async Task Middleware_applies_to_handler_class_tasks()
    {
        await using var app = db.CreateApp();
        var log = new ConcurrentQueue<string>();
        var task = app.Task<Args, LoggingHandler>("handled");
        task.Use(new Recorder("T", log));
        var id = await task.DeferAsync(new Args(7));

        await app.RunWorkerAsync(OneShot with
        {
            Middleware = [new Recorder("W", log)],
            AdditionalContext = new Dictionary<string, object?> { ["log"] = log },
        });

        Assert.Equal(["enter W", "enter T", "handler 7", "exit T", "exit W"], log);
        Assert.Equal("succeeded", await Status(id));
    }

    [Fact]
    public async Task One_worker_middleware_instance_wraps_the_jobs_of_every_task()
    {
        await using var app = db.CreateApp();
        var ran = new ConcurrentQueue<string>();
        var first = app.Task<Args>("first", a => ran.Enqueue($"first {a.N}"));
        var second = app.Task<Args>("second", async a =>
        {
            await Task.Yield();
            ran.Enqueue($"second {a.N}");
        });
        var seen = new ConcurrentQueue<(string Task, long Id)>();
        var middleware = new Inline((context, next) =>
        {
            seen.Enqueue((context.Job.TaskName, context.Job.Id));
            return next(context);
        });
        var ids = new[]
        {
            await first.DeferAsync(new Args(1)),
            await second.DeferAsync(new Args(2)),
            await first.DeferAsync(new Args(3)),
        };

        await app.RunWorkerAsync(OneShot with { Middleware = [middleware] });

        Assert.Equal([("first", ids[0]), ("second", ids[1]), ("first", ids[2])], seen);
        Assert.Equal(["first 1", "second 2", "first 3"], ran);
        foreach (var id in ids)
            Assert.Equal("succeeded", await Status(id));
    }

    [Fact]
    public async Task Task_middleware_only_wraps_its_own_task()
    {
        await using var app = db.CreateApp();
        var log = new ConcurrentQueue<string>();
        var wrapped = app.Task<Args>("wrapped", _ => log.Enqueue("wrapped body"));
        var plain = app.Task<Args>("plain", _ => log.Enqueue("plain body"));
        wrapped.Use(new Recorder("T", log));
        await wrapped.DeferAsync(new Args(1));
        await plain.DeferAsync(new Args(2));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal(["enter T", "wrapped body", "exit T", "plain body"], log);
    }
}
