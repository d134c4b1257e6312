using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Procrastinate.Benchmarks;

/// <summary>The arguments of every benchmark job: stored as <c>{"n": 1, "t": 0}</c>.</summary>
/// <param name="N">A sequence number.</param>
/// <param name="T">For W4, the producer's <c>DateTime.UtcNow.Ticks</c> just before the defer; 0 otherwise.</param>
public sealed record BenchArgs(int N, long T);

/// <summary>What a worker process reports when it exits (written as JSON to its result file).</summary>
internal sealed record WorkerResult(
    int Pid,
    double UserCpuSeconds,
    double SystemCpuSeconds,
    long PeakRssKb,
    long JobsRun,
    long FirstJobStartTicks,
    long LastJobStartTicks,
    IReadOnlyList<double> LatenciesMs,
    string? Error,
    long AllocatedBytes = 0,
    int Gen0Collections = 0,
    int Gen2Collections = 0,
    double GcPauseMs = 0,
    long JitMethods = 0,
    double JitMs = 0)
{
    public double CpuSeconds => UserCpuSeconds + SystemCpuSeconds;
}

/// <summary>Records what the no-op task saw: counts, first/last start, and W4 start latencies.</summary>
internal sealed class JobRecorder
{
    private readonly Lock _gate = new();
    private readonly List<double> _latenciesMs = [];
    private long _count;
    private long _firstStart;
    private long _lastStart;

    public long Count => Interlocked.Read(ref _count);

    public long FirstStartTicks => Interlocked.Read(ref _firstStart);

    public long LastStartTicks => Interlocked.Read(ref _lastStart);

    /// <summary>The body of <c>bench_noop</c>.</summary>
    public void Run(BenchArgs args)
    {
        var now = DateTime.UtcNow.Ticks;
        if (Interlocked.Increment(ref _count) == 1)
            Interlocked.Exchange(ref _firstStart, now);
        Interlocked.Exchange(ref _lastStart, now);
        if (args.T > 0)
        {
            var latency = (now - args.T) / (double)TimeSpan.TicksPerMillisecond;
            lock (_gate)
                _latenciesMs.Add(latency);
        }
    }

    public double[] Latencies()
    {
        lock (_gate)
            return [.. _latenciesMs];
    }
}

/// <summary>
/// <c>Procrastinate.Benchmarks worker --connection CS [--concurrency N] [--one-shot]
/// [--worker-option Name=Value]... [--result-file PATH] [--log-level Warning]</c>:
/// runs one worker with the <c>bench_noop</c> task until SIGTERM/SIGINT (or, one-shot, until the
/// queue is empty), then writes its <see cref="WorkerResult"/> (CPU from /proc/self/stat, peak RSS
/// from VmHWM) to the result file, or as a <c>RESULT {json}</c> line on stdout.
/// </summary>
internal static class WorkerMode
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? connection = null, resultFile = null, logLevel = null;
        var concurrency = 1;
        var oneShot = false;
        var settings = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--connection": connection = Next(); break;
                case "--concurrency": concurrency = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--one-shot": oneShot = true; break;
                case "--worker-option": settings.Add(Next()); break;
                case "--result-file": resultFile = Next(); break;
                case "--log-level": logLevel = Next(); break;
                default: throw new ArgumentException($"Unknown worker argument '{args[i]}'.");
            }
        }
        if (connection is null)
            throw new ArgumentException("worker mode needs --connection.");

        var options = WorkerOptionsBinder.Apply(
            new WorkerOptions { Name = $"bench-{Environment.ProcessId}", Concurrency = concurrency, Wait = !oneShot },
            settings);

        using var loggerFactory = logLevel is null
            ? null
            : LoggerFactory.Create(b => b
                .AddSimpleConsole(o => o.SingleLine = true)
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
                .SetMinimumLevel(Enum.Parse<LogLevel>(logLevel, ignoreCase: true)));
        var recorder = new JobRecorder();
        string? error = null;
        await using (var app = new App(new NpgsqlConnector(connection),
            new AppOptions { LoggerFactory = (ILoggerFactory?)loggerFactory ?? NullLoggerFactory.Instance }))
        {
            app.Task<BenchArgs>("bench_noop", args => recorder.Run(args));
            StartParentWatchdog();
            Console.Out.WriteLine($"READY {Environment.ProcessId}");
            Console.Out.Flush();
            try
            {
                await app.RunWorkerAsync(options);
            }
            catch (Exception e)
            {
                error = e.ToString();
                await Console.Error.WriteLineAsync($"worker: {e}");
            }
        }

        var self = ProcStats.ReadSelf();
        var result = new WorkerResult(Environment.ProcessId, self.UserCpuSeconds, self.SystemCpuSeconds, self.PeakRssKb,
            recorder.Count, recorder.FirstStartTicks, recorder.LastStartTicks, recorder.Latencies(), error,
            GC.GetTotalAllocatedBytes(precise: true), GC.CollectionCount(0), GC.CollectionCount(2),
            GC.GetTotalPauseDuration().TotalMilliseconds,
            System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds);
        var json = JsonSerializer.Serialize(result, Json.Compact);
        if (resultFile is null)
        {
            Console.Out.WriteLine("RESULT " + json);
        }
        else
        {
            var temp = resultFile + ".tmp";
            await File.WriteAllTextAsync(temp, json);
            File.Move(temp, resultFile, overwrite: true);
        }
        Console.Out.WriteLine("STOPPED");
        return error is null ? 0 : 1;
    }

    /// <summary>Exits when the orchestrator dies (the parent pid changes), so no worker outlives a killed run.</summary>
    private static void StartParentWatchdog()
    {
        var parent = ProcStats.ReadParentPid();
        var thread = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(500);
                int now;
                try
                {
                    now = ProcStats.ReadParentPid();
                }
                catch (IOException)
                {
                    continue;
                }
                if (now != parent)
                {
                    Console.Error.WriteLine($"worker: parent process {parent} is gone; exiting.");
                    Environment.Exit(70);
                }
            }
        })
        { IsBackground = true, Name = "parent-watchdog" };
        thread.Start();
    }
}
