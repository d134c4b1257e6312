using System.Diagnostics;
using Npgsql;

namespace Procrastinate.Benchmarks;

/// <summary>
/// Runs the workloads. Each run of each workload gets a fresh database: created, schema applied,
/// prepared (W3 pre-inserts), then statistics are reset and read around the measured phase.
/// </summary>
internal sealed class Workloads(Server server, Config config, CancellationToken stop)
{
    /// <summary>The current run's token: <c>stop</c> (Ctrl+C) or the run's own time limit.</summary>
    private CancellationToken cancellationToken;

    private const string TaskName = "bench_noop";
    private static readonly TimeSpan WorkerReadyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan WorkerStopTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ClientsGoneTimeout = TimeSpan.FromSeconds(20);

    public static string Title(string id, Config c) => id switch
    {
        "W1-1" => $"W1 enqueue one by one, 1 client ({c.W1Jobs:N0} defers)",
        "W1-8" => $"W1 enqueue one by one, {c.W1Clients8} clients ({c.W1Jobs:N0} defers)",
        "W2" => $"W2 enqueue in one batch ({c.W2Jobs:N0} jobs, one DeferManyAsync)",
        "W3-default" => $"W3 drain {c.W3Jobs:N0}, default options ({string.Join(", ", c.DefaultOptions)})",
        "W3-best" => $"W3 drain {c.W3Jobs:N0}, best options ({string.Join(", ", c.BestOptions)})",
        "W4" => $"W4 defer-to-start latency, 1 defer every {c.W4IntervalMs} ms × {c.W4Jobs:N0} (idle worker: {string.Join(", ", c.BestOptions)})",
        "W5" => $"W5 steady state {c.W5Seconds} s, {c.W5Producers} producers × batches of {c.W5Batch} at {c.W5Rate:N0} jobs/s offered (worker: {string.Join(", ", c.BestOptions)})",
        _ => id,
    };

    public Task<RunResult> RunAsync(string id, int run) => id switch
    {
        "W1-1" => MeasureAsync(id, run, null, ctx => EnqueueOneByOneAsync(ctx, 1)),
        "W1-8" => MeasureAsync(id, run, null, ctx => EnqueueOneByOneAsync(ctx, config.W1Clients8)),
        "W2" => MeasureAsync(id, run, null, EnqueueBatchAsync),
        "W3-default" => MeasureAsync(id, run, PreInsertAsync, ctx => DrainAsync(ctx, config.DefaultOptions)),
        "W3-best" => MeasureAsync(id, run, PreInsertAsync, ctx => DrainAsync(ctx, config.BestOptions)),
        "W4" => MeasureAsync(id, run, null, LatencyAsync),
        "W5" => MeasureAsync(id, run, null, SteadyStateAsync),
        _ => throw new ArgumentException($"Unknown workload {id}."),
    };

    /// <summary>What a workload's phases share.</summary>
    private sealed class Context(RunResult result, string connectionString)
    {
        public RunResult Result { get; } = result;

        public string ConnectionString { get; } = connectionString;

        /// <summary>The setup data source (prepare phase only).</summary>
        public NpgsqlDataSource? Setup { get; set; }

        public App? SetupApp { get; set; }

        public Observer Observer { get; set; } = null!;

        public WorkerProcess? Worker { get; set; }

        public BackendCpuTracker Backends { get; set; } = null!;

        public long LastBackendSample { get; set; }
    }

    /// <summary>Samples the worker's /proc figures and (at most every 100 ms unless forced) the database backends' CPU.</summary>
    private async Task SampleAsync(Context ctx, bool force = false)
    {
        ctx.Worker?.Sample();
        if (force || Stopwatch.GetElapsedTime(ctx.LastBackendSample) > TimeSpan.FromMilliseconds(100))
        {
            await ctx.Backends.SampleAsync(cancellationToken);
            ctx.LastBackendSample = Stopwatch.GetTimestamp();
        }
    }

    // ---- The measurement frame ---------------------------------------------------------------

    private async Task<RunResult> MeasureAsync(string id, int run, Func<Context, Task>? prepare, Func<Context, Task> measure)
    {
        var db = $"bench_{id.ToLowerInvariant().Replace('-', '_')}_{run}";
        var result = new RunResult { Workload = id, Run = run, Database = db };
        var ctx = new Context(result, server.ConnectionStringFor(db));
        Observer? observer = null;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop);
        limit.CancelAfter(config.RunTimeout);
        cancellationToken = limit.Token;
        try
        {
            await server.CreateDatabaseAsync(db, cancellationToken);
            var setupBuilder = new NpgsqlConnectionStringBuilder(ctx.ConnectionString) { ApplicationName = "procrastinate-bench-setup", CommandTimeout = 600 };
            await using (var setup = NpgsqlDataSource.Create(setupBuilder))
            await using (var setupApp = NewApp(new NpgsqlConnector(setup)))
            {
                await setupApp.Schema.ApplyAsync(config.Layout, cancellationToken);
                if (server.HasPgStatStatements)
                    await ExecuteAsync(setup, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
                ctx.Setup = setup;
                ctx.SetupApp = setupApp;
                if (prepare is not null)
                    await prepare(ctx);
                ctx.Setup = null;
                ctx.SetupApp = null;
            }
            await server.WaitForNoClientsAsync(db, ClientsGoneTimeout, cancellationToken);
            await server.CheckpointAsync(cancellationToken);
            var dbid = await server.GetDatabaseOidAsync(db, cancellationToken);
            await server.ResetStatementsAsync(dbid, cancellationToken);
            observer = await Observer.OpenAsync(ctx.ConnectionString, cancellationToken);
            ctx.Observer = observer;
            ctx.Backends = new BackendCpuTracker(server, db);
            var before = await server.ReadCountersAsync(db, cancellationToken);

            result.LoadAverageBefore = ProcStats.LoadAverage();
            var server0 = server.PostmasterPid is { } pm ? ProcStats.TryReadClusterCpu(pm) : null;
            var machine0 = ProcStats.ReadMachineCpu();
            var self0 = ProcStats.ReadSelf();
            var t0 = Stopwatch.GetTimestamp();
            await measure(ctx);
            result.PhaseSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var machine = ProcStats.ReadMachineCpu() - machine0;
            result.HarnessCpuSeconds = ProcStats.ReadSelf().CpuSeconds - self0.CpuSeconds;
            result.MachineBusyCpuSeconds = machine.BusySeconds;
            result.MachineUtilization = machine.Utilization;
            if (server0 is not null)
            {
                result.ServerCpuSeconds = ctx.Backends.TotalSeconds;
                result.Details["serverBackendsSeen"] = ctx.Backends.BackendsSeen;
                result.OtherCpuSeconds = Math.Max(0, machine.BusySeconds - result.ServerCpuSeconds.Value - result.HarnessCpuSeconds - (result.WorkerCpuSeconds ?? 0));
            }
            if (result.JobsForPerJob > 0)
            {
                // CPU per job depends much less on other tenants of the machine than jobs/s does.
                result.Details["harnessCpuMsPerJob"] = result.HarnessCpuSeconds * 1000 / result.JobsForPerJob;
                if (result.WorkerCpuSeconds is { } w)
                    result.Details["workerCpuMsPerJob"] = w * 1000 / result.JobsForPerJob;
                if (result.ServerCpuSeconds is { } sv)
                    result.Details["serverCpuMsPerJob"] = sv * 1000 / result.JobsForPerJob;
            }

            var harnessTransactions = observer.Transactions;
            await observer.DisposeAsync();
            observer = null;
            await server.WaitForNoClientsAsync(db, ClientsGoneTimeout, cancellationToken);
            // Read the cluster's CPU once this workload's backends have exited and been reaped (their
            // time is then in the postmaster's cutime); a backend exiting during the reading would be missed.
            await Task.Delay(100, cancellationToken);
            if (server0 is { } s0 && ProcStats.TryReadClusterCpu(server.PostmasterPid!.Value) is { } s1)
                result.ClusterCpuSeconds = s1 - s0;
            var delta = await server.ReadCountersAsync(db, cancellationToken) - before;
            result.Commits = delta.Commits - harnessTransactions;
            result.Rollbacks = delta.Rollbacks;
            result.RowsInserted = delta.Inserted;
            result.RowsUpdated = delta.Updated;
            result.RowsDeleted = delta.Deleted;
            var statements = await server.ReadStatementsAsync(dbid, cancellationToken);
            if (statements is not null)
            {
                result.Statements = statements.Sum(s => s.Calls);
                result.TopStatements = [.. statements.Select(s => s with { Query = OneLine(s.Query, 400) })];
            }
            if (result.JobsForPerJob > 0)
            {
                result.CommitsPerJob = (double)result.Commits / result.JobsForPerJob;
                result.StatementsPerJob = result.Statements is { } n ? (double)n / result.JobsForPerJob : null;
                // Rows written per job, all tables (jobs, events, workers...): the triggers' share shows here.
                result.Details["rowsInsertedPerJob"] = (double)delta.Inserted / result.JobsForPerJob;
                result.Details["rowsUpdatedPerJob"] = (double)delta.Updated / result.JobsForPerJob;
                result.Details["rowsDeletedPerJob"] = (double)delta.Deleted / result.JobsForPerJob;
            }
        }
        catch (Exception e) when (!stop.IsCancellationRequested)
        {
            result.Error = limit.IsCancellationRequested
                ? $"The run did not finish within {config.RunTimeout.TotalMinutes:0} min (--run-timeout); stopped it."
                : e is BenchmarkException or NpgsqlException or TimeoutException ? e.Message : e.ToString();
        }
        finally
        {
            cancellationToken = stop;
            if (observer is not null)
                await observer.DisposeAsync();
            if (ctx.Worker is not null)
                await ctx.Worker.DisposeAsync();
            try
            {
                await server.DropDatabaseAsync(db, CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                Console.Error.WriteLine($"bench: could not drop {db}: {e.Message}");
            }
        }
        return result;
    }

    private static App NewApp(NpgsqlConnector connector)
    {
        var app = new App(connector);
        app.Task<BenchArgs>(TaskName, _ => { });
        return app;
    }

    /// <summary>The app a producer uses: the library's own data source settings, from the connection string.</summary>
    private static (App App, JobTask<BenchArgs> Task) NewProducer(string connectionString)
    {
        var app = new App(new NpgsqlConnector(connectionString));
        var task = app.Task<BenchArgs>(TaskName, _ => { });
        return (app, task);
    }

    private async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string OneLine(string text, int max)
    {
        var s = string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return s.Length <= max ? s : s[..max] + "…";
    }

    // ---- Worker helpers -------------------------------------------------------------------------

    private async Task<WorkerProcess> StartWorkerAsync(Context ctx, IReadOnlyList<string> profile, bool waitListening)
    {
        var worker = WorkerProcess.Start(ctx.ConnectionString, Config.ConcurrencyOf(profile), profile, oneShot: false, config.WorkerLogLevel,
            config.WorkerEnvironment);
        ctx.Worker = worker;
        ctx.Result.WorkerOptions = profile;
        ctx.Result.WorkerArguments = worker.Arguments;
        await worker.WaitReadyAsync(WorkerReadyTimeout, cancellationToken);
        if (!waitListening)
            return worker;

        // Registered in procrastinate_workers, then (when notifications are on) LISTENing.
        var deadline = Stopwatch.GetTimestamp();
        while (await ctx.Observer.CountWorkersAsync(cancellationToken) == 0)
        {
            worker.Sample();
            if (Stopwatch.GetElapsedTime(deadline) > WorkerReadyTimeout)
                throw new BenchmarkException($"The worker did not register within {WorkerReadyTimeout.TotalSeconds:0} s. Output:\n  {worker.OutputTail}");
            await Task.Delay(20, cancellationToken);
        }
        var listen = WorkerOptionsBinder.Find(profile, nameof(WorkerOptions.ListenNotify));
        if (listen is null || bool.Parse(listen))
        {
            var started = Stopwatch.GetTimestamp();
            while (!await server.HasListenerAsync(ctx.Result.Database, cancellationToken))
            {
                worker.Sample();
                if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(20))
                    throw new BenchmarkException($"The worker did not LISTEN within 20 s. Output:\n  {worker.OutputTail}");
                await Task.Delay(20, cancellationToken);
            }
        }
        // Let the first fetch (which finds nothing) and its poll-delay query settle.
        await Task.Delay(300, cancellationToken);
        return worker;
    }

    private async Task<WorkerResult> StopWorkerAsync(Context ctx)
    {
        var worker = ctx.Worker ?? throw new InvalidOperationException("No worker.");
        await SampleAsync(ctx, force: true);
        var r = await worker.StopAsync(WorkerStopTimeout);
        ctx.Result.WorkerPeakRssMb = r.PeakRssKb / 1024.0;
        ctx.Result.WorkerCpuSeconds = r.CpuSeconds;
        ctx.Result.WorkerUserCpuSeconds = r.UserCpuSeconds;
        ctx.Result.WorkerSystemCpuSeconds = r.SystemCpuSeconds;
        ctx.Result.Details["workerJobsRun"] = r.JobsRun;
        // Over the worker's whole life (start-up included), per job it ran: what its garbage
        // collector had to do.
        if (r.JobsRun > 0)
        {
            ctx.Result.Details["workerAllocatedBytesPerJob"] = Math.Round(r.AllocatedBytes / (double)r.JobsRun);
            ctx.Result.Details["workerGen0Collections"] = r.Gen0Collections;
            ctx.Result.Details["workerGen2Collections"] = r.Gen2Collections;
            ctx.Result.Details["workerGcPauseMs"] = Math.Round(r.GcPauseMs, 1);
            // Methods compiled (tier 0, then again optimized when hot) and the time spent on it.
            ctx.Result.Details["workerJitMethods"] = r.JitMethods;
            ctx.Result.Details["workerJitMs"] = Math.Round(r.JitMs);
        }
        await worker.DisposeAsync();
        ctx.Worker = null;
        return r;
    }

    /// <summary>Polls until no job is todo or doing; returns the Stopwatch timestamp when that was seen.</summary>
    private async Task<long> WaitUntilDrainedAsync(Context ctx, TimeSpan timeout, TimeSpan pollEvery)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var before = Stopwatch.GetTimestamp();
            if (!await ctx.Observer.AnyPendingAsync(cancellationToken))
                return before;
            await SampleAsync(ctx);
            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                var counts = await ctx.Observer.CountByStatusAsync(cancellationToken);
                throw new BenchmarkException(
                    $"Jobs still pending after {timeout.TotalSeconds:0} s ({string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value:N0}"))}).");
            }
            await Task.Delay(pollEvery, cancellationToken);
        }
    }

    // ---- W1, W2: enqueue ------------------------------------------------------------------------

    private async Task EnqueueOneByOneAsync(Context ctx, int clients)
    {
        var (app, task) = NewProducer(ctx.ConnectionString);
        await using (app)
        {
            await using (await app.OpenAsync(cancellationToken))
            {
                var perClient = config.W1Jobs / clients;
                var t0 = Stopwatch.GetTimestamp();
                await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
                {
                    for (var i = 0; i < perClient; i++)
                        await task.DeferAsync(new BenchArgs(c * perClient + i, 0), cancellationToken: cancellationToken);
                }, cancellationToken)));
                var elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                SetThroughput(ctx.Result, config.W1Jobs, elapsed);
                await SampleAsync(ctx, force: true);
            }
        }
        await VerifyCountAsync(ctx, "todo", config.W1Jobs);
    }

    private async Task EnqueueBatchAsync(Context ctx)
    {
        var (app, task) = NewProducer(ctx.ConnectionString);
        await using (app)
        {
            await using (await app.OpenAsync(cancellationToken))
            {
                var args = Enumerable.Range(0, config.W2Jobs).Select(i => new BenchArgs(i, 0)).ToList();
                var t0 = Stopwatch.GetTimestamp();
                var ids = await task.DeferManyAsync(args, cancellationToken: cancellationToken);
                var elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (ids.Count != config.W2Jobs)
                    throw new BenchmarkException($"DeferManyAsync returned {ids.Count} ids for {config.W2Jobs} jobs.");
                SetThroughput(ctx.Result, config.W2Jobs, elapsed);
                await SampleAsync(ctx, force: true);
            }
        }
        await VerifyCountAsync(ctx, "todo", config.W2Jobs);
    }

    private static void SetThroughput(RunResult result, long jobs, double seconds)
    {
        result.Jobs = jobs;
        result.JobsForPerJob = jobs;
        result.Seconds = seconds;
        result.JobsPerSecond = jobs / seconds;
    }

    private async Task VerifyCountAsync(Context ctx, string status, long expected)
    {
        var counts = await ctx.Observer.CountByStatusAsync(cancellationToken);
        ctx.Result.FinalStatusCounts = counts;
        if (counts.GetValueOrDefault(status) != expected)
            throw new BenchmarkException($"Expected {expected:N0} jobs {status}, found: {string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value:N0}"))}.");
    }

    // ---- W3: drain ------------------------------------------------------------------------------

    private async Task PreInsertAsync(Context ctx)
    {
        var task = (JobTask<BenchArgs>)ctx.SetupApp!.FindTask(TaskName)!;
        for (var start = 0; start < config.W3Jobs; start += config.W3Chunk)
        {
            var n = Math.Min(config.W3Chunk, config.W3Jobs - start);
            await task.DeferManyAsync(Enumerable.Range(start, n).Select(i => new BenchArgs(i, 0)), cancellationToken: cancellationToken);
        }
        // A settled table (visibility map, hint bits, statistics) makes runs comparable.
        await ExecuteAsync(ctx.Setup!, "VACUUM (ANALYZE) procrastinate_jobs");
    }

    private async Task DrainAsync(Context ctx, IReadOnlyList<string> profile)
    {
        var worker = await StartWorkerAsync(ctx, profile, waitListening: false);
        var end = await WaitUntilDrainedAsync(ctx, config.DrainTimeout, TimeSpan.FromMilliseconds(10));
        var seconds = Stopwatch.GetElapsedTime(worker.StartTimestamp, end).TotalSeconds;
        SetThroughput(ctx.Result, config.W3Jobs, seconds);
        var ready = Stopwatch.GetElapsedTime(worker.StartTimestamp, worker.ReadyTimestamp).TotalSeconds;
        var r = await StopWorkerAsync(ctx);
        var firstJob = (r.FirstJobStartTicks - worker.StartUtcTicks) / (double)TimeSpan.TicksPerSecond;
        ctx.Result.Details["processStartToReadySeconds"] = ready;
        ctx.Result.Details["processStartToFirstJobSeconds"] = firstJob;
        ctx.Result.Details["jobsPerSecondFromFirstJob"] = config.W3Jobs / (seconds - firstJob);
        if (r.JobsRun != config.W3Jobs)
            throw new BenchmarkException($"The worker ran {r.JobsRun:N0} jobs; expected {config.W3Jobs:N0}.");
        var counts = await ctx.Observer.CountByStatusAsync(cancellationToken);
        ctx.Result.FinalStatusCounts = counts;
        if (counts.Any(kv => kv.Key != "succeeded" && kv.Value > 0))
            throw new BenchmarkException($"Unexpected job states after the drain: {string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value:N0}"))}.");
    }

    // ---- W4: latency ----------------------------------------------------------------------------

    private async Task LatencyAsync(Context ctx)
    {
        var worker = await StartWorkerAsync(ctx, config.BestOptions, waitListening: true);
        var total = config.W4Warmup + config.W4Jobs;
        var deferMs = new List<double>(config.W4Jobs);
        var (app, task) = NewProducer(ctx.ConnectionString);
        await using (app)
        {
            await using (await app.OpenAsync(cancellationToken))
            {
                var interval = TimeSpan.FromMilliseconds(config.W4IntervalMs);
                var t0 = Stopwatch.GetTimestamp();
                for (var i = 0; i < total; i++)
                {
                    var wait = interval * i - Stopwatch.GetElapsedTime(t0);
                    if (wait > TimeSpan.Zero)
                        await Task.Delay(wait, cancellationToken);
                    var measured = i >= config.W4Warmup;
                    var sent = Stopwatch.GetTimestamp();
                    await task.DeferAsync(new BenchArgs(i, measured ? DateTime.UtcNow.Ticks : 0), cancellationToken: cancellationToken);
                    if (measured)
                        deferMs.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                    if (i % 50 == 0)
                        await SampleAsync(ctx, force: true);
                }
                ctx.Result.Seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                await SampleAsync(ctx, force: true);
            }
        }
        await WaitUntilDrainedAsync(ctx, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20));
        var r = await StopWorkerAsync(ctx);
        ctx.Result.Jobs = config.W4Jobs;
        ctx.Result.JobsForPerJob = total;
        ctx.Result.LatencyMs = LatencySummary.Of(r.LatenciesMs.ToArray());
        if (LatencySummary.Of(deferMs) is { } defer)
        {
            ctx.Result.Details["deferCallP50Ms"] = defer.P50;
            ctx.Result.Details["deferCallP99Ms"] = defer.P99;
        }
        if (r.LatenciesMs.Count != config.W4Jobs || r.JobsRun != total)
            throw new BenchmarkException($"The worker recorded {r.LatenciesMs.Count:N0} latencies and ran {r.JobsRun:N0} jobs; expected {config.W4Jobs:N0} and {total:N0}.");
    }

    // ---- W5: steady state -----------------------------------------------------------------------

    private async Task SteadyStateAsync(Context ctx)
    {
        var worker = await StartWorkerAsync(ctx, config.BestOptions, waitListening: true);
        var window = TimeSpan.FromSeconds(config.W5Seconds);
        // Each producer sends one batch every `interval`, on an absolute schedule (late batches go at once).
        var interval = TimeSpan.FromSeconds((double)config.W5Producers * config.W5Batch / config.W5Rate);
        long produced = 0;
        var samples = new List<BacklogSample>();
        var (app, task) = NewProducer(ctx.ConnectionString);
        double windowSeconds;
        Dictionary<string, long> counts;
        await using (app)
        {
            await using (await app.OpenAsync(cancellationToken))
            {
                var t0 = Stopwatch.GetTimestamp();
                var producers = Enumerable.Range(0, config.W5Producers).Select(p => Task.Run(async () =>
                {
                    var offset = interval * p / config.W5Producers;
                    for (long k = 0; ; k++)
                    {
                        var due = offset + interval * k;
                        if (due >= window)
                            break;
                        var wait = due - Stopwatch.GetElapsedTime(t0);
                        if (wait > TimeSpan.Zero)
                            await Task.Delay(wait, cancellationToken);
                        if (Stopwatch.GetElapsedTime(t0) >= window)
                            break;
                        var batch = new BenchArgs[config.W5Batch];
                        for (var j = 0; j < batch.Length; j++)
                            batch[j] = new BenchArgs(j, 0);
                        await task.DeferManyAsync(batch, cancellationToken: cancellationToken);
                        Interlocked.Add(ref produced, batch.Length);
                    }
                }, cancellationToken)).ToList();

                // Backlog every second, while the producers run.
                for (var s = 1; s <= config.W5Seconds; s++)
                {
                    var wait = TimeSpan.FromSeconds(s) - Stopwatch.GetElapsedTime(t0);
                    if (wait > TimeSpan.Zero)
                        await Task.Delay(wait, cancellationToken);
                    if (producers.FirstOrDefault(p => p.IsFaulted) is { } failed)
                        await failed; // surfaces the producer's exception
                    await SampleAsync(ctx, force: true);
                    var at = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    var todo = await ctx.Observer.CountTodoAsync(cancellationToken);
                    samples.Add(new BacklogSample(Math.Round(at, 3), todo, Interlocked.Read(ref produced)));
                }
                await Task.WhenAll(producers);
                windowSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                counts = await ctx.Observer.CountByStatusAsync(cancellationToken);
                await SampleAsync(ctx, force: true);
            }
        }
        var r = await StopWorkerAsync(ctx);
        var pending = counts.GetValueOrDefault("todo") + counts.GetValueOrDefault("doing");
        var completed = produced - pending;
        var result = ctx.Result;
        result.FinalStatusCounts = counts;
        result.Jobs = completed;
        result.JobsForPerJob = completed;
        result.Seconds = windowSeconds;
        result.JobsPerSecond = completed / windowSeconds;
        result.BacklogSamples = samples;
        result.Details["producedJobs"] = produced;
        result.Details["producedPerSecond"] = produced / windowSeconds;
        result.Details["backlogAtEnd"] = counts.GetValueOrDefault("todo");
        result.Details["doingAtEnd"] = counts.GetValueOrDefault("doing");
        var half = samples.Where(s => s.Seconds >= config.W5Seconds / 2.0).ToList();
        if (half.Count >= 2)
        {
            var slope = Slope(half.Select(s => (s.Seconds, (double)s.Todo)).ToList());
            result.Details["backlogAtHalf"] = half[0].Todo;
            result.Details["backlogSlopeSecondHalfPerSecond"] = slope;
            // Growing: the backlog rose by more than 1 % of the offered rate per second over the second half.
            result.BacklogGrowing = slope > Math.Max(0.01 * config.W5Rate, 50);
        }
        if (r.JobsRun < completed)
            throw new BenchmarkException($"The worker ran {r.JobsRun:N0} jobs but the database shows {completed:N0} completed.");
    }

    /// <summary>Least-squares slope.</summary>
    private static double Slope(List<(double X, double Y)> points)
    {
        var mx = points.Average(p => p.X);
        var my = points.Average(p => p.Y);
        var sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx == 0 ? 0 : points.Sum(p => (p.X - mx) * (p.Y - my)) / sxx;
    }

    // ---- Warm-up --------------------------------------------------------------------------------

    /// <summary>
    /// Runs the producer code paths once in a throwaway database so that the first measured run is
    /// not the one paying for JIT compilation in this process (each worker process starts cold).
    /// </summary>
    public async Task WarmUpAsync()
    {
        const string db = "bench_warmup";
        cancellationToken = stop;
        try
        {
            await server.CreateDatabaseAsync(db, cancellationToken);
            var cs = server.ConnectionStringFor(db);
            var (app, task) = NewProducer(cs);
            await using (app)
            {
                await app.Schema.ApplyAsync(config.Layout, cancellationToken);
                for (var i = 0; i < 300; i++)
                    await task.DeferAsync(new BenchArgs(i, DateTime.UtcNow.Ticks), cancellationToken: cancellationToken);
                await Task.WhenAll(Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
                {
                    for (var i = 0; i < 50; i++)
                        await task.DeferAsync(new BenchArgs(i, 0), cancellationToken: cancellationToken);
                }, cancellationToken)));
                for (var i = 0; i < 5; i++)
                    await task.DeferManyAsync(Enumerable.Range(0, 2000).Select(n => new BenchArgs(n, 0)), cancellationToken: cancellationToken);
            }
            await using var observer = await Observer.OpenAsync(cs, cancellationToken);
            await observer.AnyPendingAsync(cancellationToken);
            await observer.CountTodoAsync(cancellationToken);
            await observer.CountByStatusAsync(cancellationToken);
        }
        finally
        {
            await server.DropDatabaseAsync(db, CancellationToken.None);
        }
    }
}
