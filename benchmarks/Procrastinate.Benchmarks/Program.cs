using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Procrastinate.Benchmarks;

// Procrastinate.Benchmarks run --url URL [options]     the orchestrator (benchmarks/run.sh)
// Procrastinate.Benchmarks worker --connection CS ...  one worker process (started by the orchestrator)
try
{
    if (args.Length > 0 && args[0] == "worker")
        return await WorkerMode.RunAsync(args[1..]);
    return await Orchestrator.RunAsync(args.Length > 0 && args[0] == "run" ? args[1..] : args);
}
catch (UsageException e)
{
    Console.Out.WriteLine(e.Message);
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    Console.Error.WriteLine(Config.Usage);
    return 2;
}

internal static class Orchestrator
{
    public static async Task<int> RunAsync(string[] args)
    {
        var config = Config.Parse(args);
        using var cts = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref signals) == 1)
            {
                Console.Error.WriteLine("bench: interrupted; stopping the workers and dropping the current database (again to quit at once)");
                cts.Cancel();
            }
            else
            {
                WorkerProcess.KillAll();
                Environment.Exit(130);
            }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => WorkerProcess.KillAll();
        var ct = cts.Token;

        try
        {
            var report = new Report
            {
                StartedUtc = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
                Command = config.Command,
                Quick = config.Quick,
                Layout = config.Layout == Procrastinate.SchemaLayout.Lean ? "lean" : "compatible",
                Runs = config.Runs,
                Machine = MachineInfo(),
                Profiles = new(StringComparer.Ordinal)
                {
                    ["default"] = config.DefaultOptions,
                    ["best"] = config.BestOptions,
                    ["workerEnvironment"] = [.. config.WorkerEnvironment.Select(e => $"{e.Key}={e.Value}")],
                },
                Sizes = new(StringComparer.Ordinal)
                {
                    ["w1Jobs"] = config.W1Jobs, ["w2Jobs"] = config.W2Jobs, ["w3Jobs"] = config.W3Jobs,
                    ["w4Jobs"] = config.W4Jobs, ["w4Warmup"] = config.W4Warmup, ["w4IntervalMs"] = config.W4IntervalMs,
                    ["w5Seconds"] = config.W5Seconds, ["w5Rate"] = config.W5Rate, ["w5Producers"] = config.W5Producers, ["w5Batch"] = config.W5Batch,
                },
            };
            await using var server = await Server.ConnectAsync(config.Url, ct);
            var info = await server.DescribeAsync(ct);
            report.Server = info;
            Log($"server: {info.Version.Split(',')[0]}; synchronous_commit {info.Settings.GetValueOrDefault("synchronous_commit")}, fsync {info.Settings.GetValueOrDefault("fsync")}, shared_buffers {info.Settings.GetValueOrDefault("shared_buffers")}");
            if (info.Settings.GetValueOrDefault("synchronous_commit") != "on")
                Log("WARNING: synchronous_commit is not on; the figures are not comparable with the targets.");
            if (!info.PgStatStatements)
                Log("WARNING: pg_stat_statements is not in shared_preload_libraries; statements per job will be missing.");
            Log($"table layout: {report.Layout}");
            Log($"profiles: default [{string.Join(", ", config.DefaultOptions)}], best [{string.Join(", ", config.BestOptions)}]"
                + (config.WorkerEnvironment.Count > 0 ? $"; worker environment [{string.Join(", ", config.WorkerEnvironment.Select(e => $"{e.Key}={e.Value}"))}]" : ""));

            var workloads = new Workloads(server, config, ct);
            Log("warming up the producer code paths");
            await workloads.WarmUpAsync();

            var results = config.Workloads.ToDictionary(id => id, _ => new List<RunResult>(), StringComparer.Ordinal);
            var total = Stopwatch.StartNew();
            for (var run = 1; run <= config.Runs; run++)
            {
                foreach (var id in config.Workloads)
                {
                    Log($"[run {run}/{config.Runs}] {id}: {Workloads.Title(id, config)}");
                    var busy = await WaitQuietAsync(config, ct);
                    var r = await workloads.RunAsync(id, run);
                    r.MachineBusyBeforePercent = Math.Round(busy, 1);
                    results[id].Add(r);
                    Log($"[run {run}/{config.Runs}] {id}: {OneLine(r)}  (elapsed {total.Elapsed:mm\\:ss})");
                }
            }

            report.Workloads = [.. config.Workloads.Select(id => Reporter.Summarize(id, Workloads.Title(id, config), results[id]))];
            report.Memory = Reporter.Memory(report, config);
            report.Errors = [.. results.Values.SelectMany(r => r).Where(r => r.Error is not null).Select(r => $"{r.Workload} run {r.Run}: {r.Error}")];
            report.FinishedUtc = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture);

            var markdown = Reporter.Markdown(report);
            var jsonPath = Path.GetFullPath(config.JsonPath);
            Directory.CreateDirectory(Path.GetDirectoryName(jsonPath)!);
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(report, Json.Indented), CancellationToken.None);
            var mdPath = Path.ChangeExtension(jsonPath, ".md");
            await File.WriteAllTextAsync(mdPath, $"# Benchmark results\n\n{report.StartedUtc} — {config.Command}\n\n{markdown}", CancellationToken.None);
            Console.Out.WriteLine();
            Console.Out.WriteLine(markdown);
            Log($"wrote {jsonPath} and {mdPath} in {total.Elapsed:mm\\:ss}");
            if (report.Errors.Count > 0)
            {
                Log($"{report.Errors.Count} run(s) failed:");
                foreach (var e in report.Errors)
                    Log("  " + e);
                return 1;
            }
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Log("interrupted");
            return 130;
        }
        catch (BenchmarkException e)
        {
            Log("ERROR: " + e.Message);
            return 1;
        }
        finally
        {
            WorkerProcess.KillAll();
        }
    }

    /// <summary>Waits (bounded) until the machine is quiet; returns the busy percentage of the last second.</summary>
    private static async Task<double> WaitQuietAsync(Config config, CancellationToken ct)
    {
        var busy = await ProcStats.SampleMachineBusyAsync(TimeSpan.FromSeconds(1), ct) * 100;
        if (config.QuietBelowPercent <= 0 || busy < config.QuietBelowPercent)
            return busy;
        Log($"the machine is {busy:0}% busy (other processes); waiting up to {config.QuietTimeout.TotalSeconds:0} s for it to fall under {config.QuietBelowPercent}%");
        var waited = Stopwatch.StartNew();
        while (busy >= config.QuietBelowPercent)
        {
            if (waited.Elapsed > config.QuietTimeout)
            {
                Log($"WARNING: still {busy:0}% busy after {waited.Elapsed.TotalSeconds:0} s; running anyway (see 'Other CPU s' in the results)");
                return busy;
            }
            busy = await ProcStats.SampleMachineBusyAsync(TimeSpan.FromSeconds(1), ct) * 100;
        }
        Log($"quiet after {waited.Elapsed.TotalSeconds:0} s ({busy:0}% busy)");
        return busy;
    }

    private static string OneLine(RunResult r)
    {
        if (r.Error is not null)
            return "ERROR " + r.Error;
        var parts = new List<string>();
        if (r.LatencyMs is { } l)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"latency p50 {l.P50:0.00} p95 {l.P95:0.00} p99 {l.P99:0.00} max {l.Max:0.0} ms"));
        else if (r.JobsPerSecond is { } jps)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{jps:N0} jobs/s ({r.Jobs:N0} in {r.Seconds:0.00} s)"));
        if (r.BacklogGrowing is { } g)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"backlog {r.Details.GetValueOrDefault("backlogAtEnd"):N0} at end, {(g ? "GROWING" : "flat")}"));
        if (r.CommitsPerJob is { } c)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{c:0.00} commits/job"));
        if (r.StatementsPerJob is { } s)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{s:0.00} statements/job"));
        if (r.WorkerPeakRssMb is { } mb)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"worker {mb:0} MB, {r.WorkerCpuSeconds:0.00} s CPU"));
        parts.Add(string.Create(CultureInfo.InvariantCulture, $"machine {r.MachineUtilization * 100:0}% busy"));
        if (r.ServerCpuSeconds is { } server)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"PostgreSQL {server:0.00} s CPU (cluster {r.ClusterCpuSeconds:0.00}), other {r.OtherCpuSeconds:0.00} s"));
        return string.Join("; ", parts);
    }

    private static SortedDictionary<string, string> MachineInfo()
    {
        var m = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["processors"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["loadAverageAtStart"] = ProcStats.LoadAverage(),
        };
        try
        {
            var total = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            var kb = long.Parse(total.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            m["memoryGiB"] = (kb / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture);
            var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (cpu is not null)
                m["cpu"] = cpu.Split(':', 2)[1].Trim();
        }
        catch (IOException)
        {
            // not Linux: leave it out
        }
        return m;
    }

    private static void Log(string message) =>
        Console.Error.WriteLine($"bench {DateTime.Now:HH:mm:ss}: {message}");
}
