namespace Procrastinate.Dashboard.Tests.Infrastructure;

public sealed record EmailArgs(string To, string Template = "welcome");
public sealed record ImageArgs(string Path, int Width);
public sealed record ReportArgs(int Year, int Month);
public sealed record PaymentArgs(long OrderId, decimal Amount);
public sealed record TickArgs(long Timestamp);

/// <summary>Tasks that look like an application's: some fail on purpose, two are periodic.</summary>
public static class DemoTasks
{
    /// <summary>Registers the tasks; with <paramref name="periodic"/>, the two schedules too (a worker then defers their ticks).</summary>
    public static void Register(App app, bool periodic = false)
    {
        app.Task<EmailArgs>("emails.send_welcome", _ => { }, queue: "emails");
        app.Task<ImageArgs>("images.resize", args =>
        {
            if (args.Width > 4000)
                throw new InvalidOperationException($"{args.Path} is too wide to resize ({args.Width} px).");
        }, queue: "images", retry: RetryStrategy.None);
        app.Task<ReportArgs>("reports.build_monthly", _ => { }, queue: "reports", @lock: "reports");
        app.Task<PaymentArgs>("payments.capture", args =>
        {
            if (args.OrderId % 7 == 0)
                throw new TimeoutException($"The payment gateway timed out for order {args.OrderId}.");
        }, queue: "payments", priority: 10);
        var cleanup = app.Task<TickArgs>("maintenance.remove_expired_sessions", _ => { }, queue: "maintenance");
        var digest = app.Task<TickArgs>("emails.daily_digest", _ => { }, queue: "emails");
        if (!periodic)
            return;
        // Every 5 minutes: its latest tick is always within the 10-minute maximum delay, so a
        // starting worker defers it at once (a 15-minute schedule would not, 2 times in 3).
        cleanup.Periodic("*/5 * * * *");
        digest.Periodic("0 7 * * mon-fri", periodicId: "weekdays", timeZone: "Europe/Paris");
    }

    /// <summary>Runs every job that is due, then returns.</summary>
    public static Task RunWorkerOnceAsync(App app, params string[] queues) => app.RunWorkerAsync(new WorkerOptions
    {
        Name = "seed-worker",
        Queues = queues.Length == 0 ? null : queues,
        Concurrency = 4,
        Wait = false,
        HandleSignals = false,
        ListenNotify = false,
    });
}
