using Microsoft.Extensions.Logging;
using Npgsql;
using Procrastinate;

// Usage: Procrastinate.TestWorker <connection string> [key=value ...]
//   concurrency=N  graceful_ms=N  stalled_s=N  heartbeat_ms=N  rescue_ms=N  poll_ms=N  queues=a,b  one_shot=true
// Tasks:
//   sleep {"ms": N, "honor_cancel": bool}  appends (job_id, pid) to test_ledger, then sleeps
var connectionString = args[0];
var settings = args.Skip(1).Select(a => a.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
int Int(string key, int fallback) => settings.TryGetValue(key, out var v) ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;

using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
await using var dataSource = NpgsqlDataSource.Create(connectionString);
var app = new App(new NpgsqlConnector(dataSource), new AppOptions { LoggerFactory = loggerFactory });

app.Task<SleepArgs>("sleep", async (args, context) =>
{
    await using (var cmd = dataSource.CreateCommand("INSERT INTO test_ledger (job_id, pid) VALUES ($1, $2)"))
    {
        cmd.Parameters.AddWithValue(context.Job.Id);
        cmd.Parameters.AddWithValue(Environment.ProcessId);
        await cmd.ExecuteNonQueryAsync();
    }
    await Task.Delay(args.Ms, args.HonorCancel ? context.CancellationToken : CancellationToken.None);
});

Console.WriteLine($"READY {Environment.ProcessId}");
await app.RunWorkerAsync(new WorkerOptions
{
    Name = $"test-worker-{Environment.ProcessId}",
    Concurrency = Int("concurrency", 1),
    Queues = settings.TryGetValue("queues", out var q) ? q.Split(',') : null,
    Wait = !(settings.TryGetValue("one_shot", out var os) && os == "true"),
    ShutdownGracefulTimeout = settings.ContainsKey("graceful_ms") ? TimeSpan.FromMilliseconds(Int("graceful_ms", 0)) : null,
    StalledWorkerTimeout = TimeSpan.FromSeconds(Int("stalled_s", 30)),
    UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(Int("heartbeat_ms", 10_000)),
    FetchJobPollingInterval = TimeSpan.FromMilliseconds(Int("poll_ms", 5_000)),
    StalledJobsCheckInterval = TimeSpan.FromMilliseconds(Int("rescue_ms", 15_000)),
});
Console.WriteLine("STOPPED");

internal sealed record SleepArgs(int Ms, bool HonorCancel = true);
