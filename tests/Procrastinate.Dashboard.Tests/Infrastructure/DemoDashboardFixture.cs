using Procrastinate.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Procrastinate.Dashboard.Tests.Infrastructure;

/// <summary>
/// A database full of jobs that look like an application's, over the last hour, with a live worker,
/// a stalled job, periodic tasks, and a job whose arguments hold markup. The dashboard host is
/// read-only for viewers and lets operators act.
/// </summary>
public sealed class DemoDashboardFixture : IAsyncLifetime
{
    private CancellationTokenSource? _workerStop;
    private Task? _worker;

    public DatabaseFixture Database { get; } = new();

    public DashboardHost Host { get; private set; } = null!;

    public App App => Host.Services.GetRequiredService<App>();

    /// <summary>The job whose arguments try to inject markup.</summary>
    public long MarkupJobId { get; private set; }

    /// <summary>A failed job with a retry in its history, for the job page.</summary>
    public long FailedJobId { get; private set; }

    public async Task InitializeAsync()
    {
        await Database.InitializeAsync();
        Host = await DashboardHost.StartAsync(Database.ConnectionString, o =>
        {
            o.Title = "Acme jobs";
            o.AuthorizationPolicy = DashboardHost.ViewersPolicy;
            o.ActionsPolicy = DashboardHost.OperatorsPolicy;
        }, p => p.ConfigureApp((app, _) => DemoTasks.Register(app, periodic: true)));
        await SeedAsync();
    }

    private async Task SeedAsync()
    {
        var app = App;
        var emails = app.GetTask<EmailArgs>("emails.send_welcome")!;
        var images = app.GetTask<ImageArgs>("images.resize")!;
        var reports = app.GetTask<ReportArgs>("reports.build_monthly")!;
        var payments = app.GetTask<PaymentArgs>("payments.capture")!;
        string[] people = ["ada@example.com", "grace@example.com", "alan@example.com", "edsger@example.com", "barbara@example.com", "ken@example.com"];

        await emails.DeferManyAsync(Enumerable.Range(0, 60).Select(i => new EmailArgs(people[i % people.Length])));
        await images.DeferManyAsync(Enumerable.Range(0, 40).Select(i => new ImageArgs($"uploads/photo-{i:000}.jpg", i % 5 == 0 ? 6000 : 1200)));
        await reports.DeferManyAsync(Enumerable.Range(1, 12).Select(m => new ReportArgs(2025, m)));
        await payments.DeferManyAsync(Enumerable.Range(1000, 35).Select(i => new PaymentArgs(i, 19.90m + i % 13)));
        await DemoTasks.RunWorkerOnceAsync(app);

        // A failed payment retried by hand, then failed again: a job page with some history.
        FailedJobId = await Database.ScalarAsync<long>("SELECT min(id) FROM procrastinate_jobs WHERE status = 'failed' AND task_name = 'payments.capture'");
        await app.Jobs.RetryAsync(FailedJobId);
        await DemoTasks.RunWorkerOnceAsync(app, "payments");

        // Spread the history over the last hour, one shift per job, so the charts have a shape.
        await Database.ExecAsync("""
            WITH shift AS (SELECT id, (random() * 57 + 1) * interval '1 minute' AS by FROM procrastinate_jobs)
            UPDATE procrastinate_events e SET at = e.at - s.by FROM shift s WHERE s.id = e.job_id
            """);

        // Waiting work: some due now, some scheduled, some cancelled.
        await emails.DeferManyAsync(people.Select(p => new EmailArgs(p, "reminder")));
        await images.DeferManyAsync(Enumerable.Range(100, 9).Select(i => new ImageArgs($"uploads/photo-{i}.jpg", 800)));
        await reports.DeferAsync(new ReportArgs(2026, 1), new DeferOptions { ScheduleIn = TimeSpan.FromHours(3) });
        foreach (var id in await app.Jobs.ListAsync(new JobFilter { Task = "images.resize", Status = JobStatus.Todo }, new JobPage(3)))
            await app.Jobs.CancelAsync(id.Id);

        MarkupJobId = await app.DeferAsync("emails.send_welcome",
            """{"to": "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">", "template": "</pre><b>bold</b>"}""");

        // A job running on a worker that stopped heartbeating ten minutes ago.
        var dead = await Database.ScalarAsync<long>("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '10 minutes') RETURNING id");
        var stuck = await payments.DeferAsync(new PaymentArgs(4242, 99.00m), new DeferOptions { Queue = "payments", Lock = "order-4242" });
        await Database.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", dead, stuck);

        // A live worker, on a queue without jobs, so the waiting counts stay as they are.
        _workerStop = new CancellationTokenSource();
        _worker = app.RunWorkerAsync(new WorkerOptions
        {
            Name = "notifications", Queues = ["notifications"], Concurrency = 8, HandleSignals = false, StalledJobs = StalledJobPolicy.Ignore,
        }, _workerStop.Token);
        await WaitUntilAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '1 minute'") > 0);
        // Its periodic deferrer catches up with the latest tick of each schedule.
        await WaitUntilAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM procrastinate_periodic_defers WHERE task_name = 'maintenance.remove_expired_sessions'") > 0);
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, int timeoutSeconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("The condition did not hold in time.");
            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        if (_workerStop is not null)
        {
            await _workerStop.CancelAsync();
            try { await _worker!; } catch (OperationCanceledException) { }
            _workerStop.Dispose();
        }
        await Host.DisposeAsync();
        await Database.DisposeAsync();
    }
}
