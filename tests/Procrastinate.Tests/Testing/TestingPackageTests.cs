using Procrastinate.Testing;

namespace Procrastinate.Tests.Testing;

// The README's example: a small service that defers a job, tested with no database.
public sealed record WelcomeEmail(string Address, string Name);

public sealed class SignupService(JobTask<WelcomeEmail> welcome)
{
    public async Task SignUpAsync(string address, string name)
    {
        // ... store the user ...
        await welcome.DeferAsync(new WelcomeEmail(address, name), new DeferOptions { ScheduleIn = TimeSpan.FromMinutes(10) });
    }
}

public sealed class TestingPackageTests
{
    [Fact]
    public async Task Readme_example_a_signup_defers_a_welcome_email_that_runs_ten_minutes_later()
    {
        var clock = new ManualTimeProvider();
        var app = new App(new InMemoryConnector(clock), new AppOptions { TimeProvider = clock });
        var sent = new List<string>();
        var welcome = app.Task<WelcomeEmail>("send_welcome", email => sent.Add(email.Address));
        var harness = new JobHarness(app);

        await new SignupService(welcome).SignUpAsync("ada@example.com", "Ada");

        app.AssertDeferred(welcome, e => e.Address == "ada@example.com");
        Assert.Empty(await harness.RunDueJobsAsync());     // not due yet
        clock.Advance(TimeSpan.FromMinutes(10));
        var run = Assert.Single(await harness.RunDueJobsAsync());
        Assert.Equal(JobStatus.Succeeded, run.Status);
        Assert.Equal(["ada@example.com"], sent);
    }

    [Fact]
    public void Assertions_match_arguments_options_and_counts_and_explain_failures()
    {
        var app = new App(new InMemoryConnector());
        var task = app.Task<WelcomeEmail>("mail", _ => { }, queue: "mails");
        var other = app.Task<WelcomeEmail>("other_mail", _ => { });
        task.Defer(new WelcomeEmail("a@x", "A"));
        task.Defer(new WelcomeEmail("b@x", "B"), new DeferOptions { Priority = 5, Lock = "b" });

        Assert.Equal("mail", app.AssertDeferred(task).TaskName);
        app.AssertDeferred(task, e => e.Name == "B", new DeferOptions { Priority = 5, Lock = "b", Queue = "mails" });
        app.AssertDeferred(2, task);
        app.AssertDeferred(1, task, e => e.Address.StartsWith('a'));
        app.AssertNotDeferred(other);
        app.AssertNotDeferred(task, e => e.Name == "C");
        Assert.Equal("b@x", task.Deserialize(app.AssertDeferred<WelcomeEmail>(e => e.Name == "B").ArgsJson).Address);
        Assert.Throws<JobAssertionException>(() => app.AssertDeferred<WelcomeEmail>(e => e.Name == "nobody"));

        var missing = Assert.Throws<JobAssertionException>(() => app.AssertDeferred(task, e => e.Name == "Z"));
        Assert.Contains("Expected a job of task 'mail' with matching arguments", missing.Message);
        Assert.Contains("mail on mails - [todo]", missing.Message);
        Assert.Contains("\"address\": \"b@x\"", missing.Message);
        Assert.Throws<JobAssertionException>(() => app.AssertDeferred(3, task));
        Assert.Throws<JobAssertionException>(() => app.AssertNotDeferred(task));
        Assert.Throws<JobAssertionException>(() => app.AssertDeferred(task, options: new DeferOptions { Priority = 9 }));
    }

    [Fact]
    public void The_harness_runs_sync_too_and_stops_a_job_that_retries_forever()
    {
        var app = new App(new InMemoryConnector());
        var task = app.Task<WelcomeEmail>("forever", _ => throw new InvalidOperationException(), retry: RetryStrategy.Forever);
        task.Defer(new WelcomeEmail("a", "b"));
        var harness = new JobHarness(app) { MaxRuns = 25 };
        var e = Assert.Throws<InvalidOperationException>(() => harness.RunDueJobs());
        Assert.Contains("25 runs", e.Message);
    }

    [Fact]
    public async Task An_idle_worker_polls_on_the_apps_clock()
    {
        var clock = new ManualTimeProvider();
        var connector = new InMemoryConnector(clock);
        var app = new App(connector, new AppOptions { TimeProvider = clock });
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<WelcomeEmail>("polled", _ => ran.TrySetResult());
        using var cts = new CancellationTokenSource();
        var worker = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, ListenNotify = false, FetchJobPollingInterval = TimeSpan.FromMinutes(1) }, cts.Token);
        while (app.Workers.Count == 0)
            await Task.Delay(10);
        await Task.Delay(200); // the worker found nothing and sleeps on the manual clock
        await task.DeferAsync(new WelcomeEmail("a", "b"));
        await Task.Delay(300);
        Assert.False(ran.Task.IsCompleted); // no notification, and the clock has not moved
        clock.Advance(TimeSpan.FromMinutes(1));
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await worker;
    }

    [Fact]
    public void The_manual_clock_fires_timers_in_order_when_advanced()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var fired = new List<string>();
        using var late = clock.CreateTimer(_ => fired.Add("late"), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
        using var early = clock.CreateTimer(_ => fired.Add($"early {clock.GetUtcNow():ss}"), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3));
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(["early 02", "early 05", "early 08"], fired);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("late", fired[^1]);
        Assert.Equal(new DateTimeOffset(2030, 1, 1, 0, 0, 10, TimeSpan.Zero), clock.GetUtcNow());
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.Advance(TimeSpan.FromSeconds(-1)));
    }

    [Fact]
    public async Task The_in_memory_connector_refuses_a_callers_transaction()
    {
        var app = new App(new InMemoryConnector());
        var task = app.Task<WelcomeEmail>("tx", _ => { });
        await using var connection = new Npgsql.NpgsqlConnection("Host=localhost");
        await Assert.ThrowsAsync<NotSupportedException>(() => task.DeferAsync(new WelcomeEmail("a", "b"), connection));
    }
}
