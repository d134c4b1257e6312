using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;
using Procrastinate;
using Procrastinate.Reliability;

// Usage: Procrastinate.ReliabilityWorker <connection string> [key=value ...]
//   concurrency=N prefetch=N graceful_ms=N stalled_ms=N heartbeat_ms=N rescue_ms=N poll_ms=N abort_poll_ms=N
//   stalled_policy=retry|retry_per_strategy|fail|ignore  listen=true|false  one_shot=true  log=warning
//   queues_json=["a","b"]  name=...  connect_timeout_s=N (Npgsql's Timeout)
//   ledger_sync=true (the ledger's commits wait for the flush)  durable_claims=false
// Connections: the worker's own pool is named relw-<pid>, the ledger's relledger-<pid> (application_name),
// so the suite can find and terminate them.
var connectionString = args[0];
var settings = args.Skip(1).Select(a => a.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
int Int(string key, int fallback) => settings.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
string Str(string key, string fallback) => settings.TryGetValue(key, out var v) ? v : fallback;
var pid = Environment.ProcessId;

var level = Enum.Parse<LogLevel>(Str("log", "Warning"), ignoreCase: true);
using var loggerFactory = LoggerFactory.Create(b => b
    .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
    .SetMinimumLevel(level));

if (settings.TryGetValue("connect_timeout_s", out var connectTimeout))
    connectionString = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = int.Parse(connectTimeout, CultureInfo.InvariantCulture) }.ConnectionString;
var workerCs = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = $"relw-{pid}" }.ConnectionString;
// The ledger is the suite's instrument, not the system under test: asynchronous commit keeps it
// cheap (a clean shutdown, as in the restart scenario, still flushes it), except in scenarios
// that crash the server, where it must survive.
var ledgerCs = new NpgsqlConnectionStringBuilder(connectionString)
{
    ApplicationName = $"relledger-{pid}",
    Options = Str("ledger_sync", "false") == "true" ? null : "-c synchronous_commit=off",
}.ConnectionString;
await using var ledgerSource = NpgsqlDataSource.Create(ledgerCs);
var ledger = new Ledger(ledgerSource, pid);

var app = new App(new NpgsqlConnector(workerCs), new AppOptions { LoggerFactory = loggerFactory });

Task LedgerBody(LedgerArgs a, JobContext context) => ledger.RunAsync(context, async () =>
{
    var ms = context.Job.Attempts > 0 && a.LaterMs is { } later ? later : a.Ms;
    await Task.Delay(ms, a.HonorCancel ? context.CancellationToken : CancellationToken.None);
    if (context.Job.Attempts < a.FailBelowAttempt)
        throw new InvalidOperationException($"Deliberate failure on attempt {context.Job.Attempts}.");
});

app.Task<LedgerArgs>(Contract.Ledger, LedgerBody, retry: RetryStrategy.Times(Contract.LedgerRetries));
app.Task<LedgerArgs>(Contract.LedgerNoRetry, LedgerBody);
app.Task<LedgerArgs>(Contract.PoisonThrow, (_, context) => ledger.RunAsync(context,
    () => throw new InvalidOperationException("Poison: this job always throws.")), retry: RetryStrategy.Times(Contract.PoisonRetries));
app.Task<CrashArgs>(Contract.PoisonCrash, (a, context) => ledger.RunAsync(context, () =>
{
    Console.Out.Flush();
    switch (a.Mode)
    {
        case "stackoverflow":
            // A real stack overflow: the runtime kills the process, nothing can catch it.
            var thread = new Thread(() => Recurse(0), 256 * 1024);
            thread.Start();
            thread.Join();
            break;
        case "exit":
            Environment.Exit(42);
            break;
        default:
            Environment.FailFast("Poison: fail-fast.");
            break;
    }
    return Task.CompletedTask;
}), retry: RetryStrategy.Times(Contract.PoisonRetries));

var options = new WorkerOptions
{
    Name = Str("name", $"rel-worker-{pid}"),
    Concurrency = Int("concurrency", 4),
    PrefetchJobs = settings.ContainsKey("prefetch") ? Int("prefetch", 0) : null,
    Queues = settings.TryGetValue("queues_json", out var q) ? JsonSerializer.Deserialize<string[]>(q) : null,
    Wait = Str("one_shot", "false") != "true",
    ListenNotify = Str("listen", "true") == "true",
    DurableClaims = Str("durable_claims", "true") == "true",
    ShutdownGracefulTimeout = settings.ContainsKey("graceful_ms") ? TimeSpan.FromMilliseconds(Int("graceful_ms", 0)) : null,
    StalledWorkerTimeout = TimeSpan.FromMilliseconds(Int("stalled_ms", 3000)),
    UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(Int("heartbeat_ms", 500)),
    StalledJobsCheckInterval = TimeSpan.FromMilliseconds(Int("rescue_ms", 1000)),
    FetchJobPollingInterval = TimeSpan.FromMilliseconds(Int("poll_ms", 1000)),
    AbortJobPollingInterval = TimeSpan.FromMilliseconds(Int("abort_poll_ms", 1000)),
    StalledJobs = Str("stalled_policy", "retry") switch
    {
        "retry" => StalledJobPolicy.Retry,
        "retry_per_strategy" => StalledJobPolicy.RetryPerStrategy,
        "fail" => StalledJobPolicy.Fail,
        "ignore" => StalledJobPolicy.Ignore,
        var other => throw new ArgumentException($"Unknown stalled_policy '{other}'."),
    },
};

Console.WriteLine($"READY {pid}");
try
{
    await app.RunWorkerAsync(options);
}
catch (Exception e)
{
    Console.WriteLine($"WORKER FAILED {e}");
    return 3;
}
Console.WriteLine("STOPPED");
return 0;

[MethodImpl(MethodImplOptions.NoInlining)]
static int Recurse(int depth)
{
    Span<byte> frame = stackalloc byte[256];
    frame[depth % 256] = 1;
    return Recurse(depth + 1) + frame[0];
}

/// <summary>
/// Writes the ledger on its own pool. Writes are retried (for a minute) through dropped
/// connections and server restarts, and are idempotent (keyed by a run id), so a write whose
/// acknowledgement was lost is not counted twice.
/// </summary>
internal sealed class Ledger(NpgsqlDataSource source, int pid)
{
    public async Task RunAsync(JobContext context, Func<Task> body)
    {
        var runId = Guid.NewGuid();
        await ExecAsync("INSERT INTO ledger (run_id, job_id, pid, attempt) VALUES ($1, $2, $3, $4) ON CONFLICT (run_id) DO NOTHING",
            runId, context.Job.Id, pid, context.Job.Attempts);
        string outcome = "ok";
        try
        {
            await body();
        }
        catch (OperationCanceledException)
        {
            outcome = "aborted";
            throw;
        }
        catch (Exception)
        {
            outcome = "throw";
            throw;
        }
        finally
        {
            await ExecAsync("UPDATE ledger SET ended_at = clock_timestamp(), outcome = $2 WHERE run_id = $1 AND ended_at IS NULL", runId, outcome);
        }
    }

    private async Task ExecAsync(string sql, params object[] parameters)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await using var cmd = source.CreateCommand(sql);
                foreach (var p in parameters)
                    cmd.Parameters.Add(new NpgsqlParameter { Value = p });
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, CancellationToken.None);
            }
        }
    }
}
