using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary><c>worker</c>: runs the app's tasks until stopped (SIGINT, SIGTERM), or until the queues are empty with --one-shot.</summary>
internal sealed partial class WorkerCommand : CliCommand
{
    private readonly Option<string> _name = new("--name", "-n") { Description = "The worker's name, in logs and job contexts (default: worker).", HelpName = "name" };
    private readonly Option<string[]> _queues = new("--queues", "-q")
    {
        Description = "The queues to serve, comma-separated or repeated (default: every queue).",
        HelpName = "queue,...",
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };
    private readonly Option<int> _concurrency = new("--concurrency", "-c") { Description = "How many jobs run at once (default: 1).", HelpName = "n" };
    private readonly Option<double> _fetchPolling = new("--fetch-job-polling-interval")
    {
        Description = "Seconds between two fetches when no notification arrives (default: 5).",
        HelpName = "seconds",
    };
    private readonly Option<double> _abortPolling = new("--abort-job-polling-interval")
    {
        Description = "Seconds between two checks for abort requests (default: 5).",
        HelpName = "seconds",
    };
    private readonly Option<double> _gracefulTimeout = new("--shutdown-graceful-timeout")
    {
        Description = "On stop, seconds running jobs may take before they are aborted (default: wait for them).",
        HelpName = "seconds",
    };
    private readonly Option<bool> _oneShot = new("--one-shot") { Description = "Stop when no job is left to run, after the running ones end." };
    private readonly Option<bool> _listenNotify = new("--listen-notify") { Description = "Wake up on PostgreSQL notifications (the default)." };
    private readonly Option<bool> _noListenNotify = new("--no-listen-notify") { Description = "Rely on polling only." };
    private readonly Option<string> _deleteJobs = new("--delete-jobs")
    {
        Description = "Delete finished jobs: never (default), successful, always.",
        HelpName = "never|successful|always",
    };
    private readonly Option<int> _prefetch = new("--prefetch-jobs")
    {
        Description = "Jobs claimed ahead of the free executors, into a local buffer; 0: none (default: adapts to the jobs' run time, from the concurrency up to 300).",
        HelpName = "n",
    };
    private readonly Option<int> _claimsInFlight = new("--claims-in-flight")
    {
        Description = "Claims on their way to the database at once, 1 to 4; 2 pays when the claims, not the jobs, bound the worker (default: 1).",
        HelpName = "n",
    };
    private readonly Option<bool> _noDurableClaims = new("--no-durable-claims")
    {
        Description = "Let a claim's commit return before PostgreSQL flushes it to disk: jobs start sooner, but a crash of the server can undo the claims of its last fraction of a second, and their jobs may run twice (default: claims wait for the flush).",
    };
    private readonly Option<int> _vacuumAfter = new("--vacuum-after-claimed-jobs")
    {
        Description = "Vacuum the job table after this many claimed jobs, so claims stay fast under a sustained load; 0 leaves it to autovacuum (default: 50000).",
        HelpName = "n",
    };

    public override Command Build() => new("worker", "Run a worker: fetch jobs of the app's tasks and run them. SIGINT or SIGTERM stops it gracefully; a second one aborts running jobs.")
    {
        _name, _queues, _concurrency, _prefetch, _claimsInFlight, _noDurableClaims, _fetchPolling, _abortPolling, _gracefulTimeout, _oneShot, _listenNotify, _noListenNotify, _deleteJobs, _vacuumAfter,
    };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var counter = new JobCounter();
        var options = ReadOptions(invocation.Settings) with { Middleware = [counter] };
        options.Validate();
        var session = invocation.Session(LogLevel.Information);
        if (session.UserApp is not { } userApp)
            throw new CliException("the worker needs the app whose tasks it runs: pass --app MyCode.dll or set PROCRASTINATE_APP.");

        var app = session.App;
        // The loaded app was built without the CLI's logging: the worker logs through the CLI's.
        options = options with { LoggerFactory = session.LoggerFactory };
        var queues = options.Queues is { Count: > 0 } q ? string.Join(", ", q) : "all queues";
        LogStarting(session.Logger, options.Name, userApp.Description, queues, options.Concurrency,
            options.PrefetchJobs is { } prefetch ? prefetch.ToString(CultureInfo.InvariantCulture) : "adaptive", options.ClaimsInFlight,
            options.DurableClaims ? "on" : "off", app.Tasks.Count,
            options.ListenNotify ? "on" : "off", options.FetchJobPollingInterval.TotalSeconds, options.AbortJobPollingInterval.TotalSeconds,
            options.ShutdownGracefulTimeout is { } graceful ? string.Create(CultureInfo.InvariantCulture, $"{graceful.TotalSeconds:0.###} s") : "none", options.DeleteJobs.ToString().ToLowerInvariant(),
            options.VacuumAfterClaimedJobs > 0 ? string.Create(CultureInfo.InvariantCulture, $"after {options.VacuumAfterClaimedJobs} claimed jobs") : "off",
            options.Wait ? "off" : "on");
        var started = DateTimeOffset.UtcNow;
        var run = app.RunWorkerAsync(options, cancellationToken);
        if (!options.Wait)
            await WorkerProgress.ShowAsync(invocation.Console, app, options, counter, run, session.Logger, cancellationToken).ConfigureAwait(false);
        await run.ConfigureAwait(false);
        LogStopped(session.Logger, options.Name, (DateTimeOffset.UtcNow - started).TotalSeconds, counter.Completed);
        return ExitCodes.Ok;
    }

    private WorkerOptions ReadOptions(Settings settings)
    {
        var listen = settings.GetNullable(_listenNotify);
        var noListen = settings.GetNullable(_noListenNotify);
        if (settings.IsExplicit(_listenNotify) && settings.IsExplicit(_noListenNotify))
            throw new CliUsageException("--listen-notify and --no-listen-notify cannot be combined.");
        var listenNotify = settings.IsExplicit(_noListenNotify) ? noListen != true
            : settings.IsExplicit(_listenNotify) ? listen != false
            : noListen is { } n ? !n : listen ?? true;
        var defaults = new WorkerOptions();
        return new WorkerOptions
        {
            Name = settings.Get(_name) ?? defaults.Name,
            Queues = settings.Get(_queues, []) is { Length: > 0 } queues
                ? [.. queues.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct(StringComparer.Ordinal)]
                : null,
            Concurrency = settings.Get(_concurrency, defaults.Concurrency),
            PrefetchJobs = settings.GetNullable(_prefetch),
            ClaimsInFlight = settings.Get(_claimsInFlight, defaults.ClaimsInFlight),
            DurableClaims = !settings.Get(_noDurableClaims, !defaults.DurableClaims),
            FetchJobPollingInterval = Seconds(settings, _fetchPolling) ?? defaults.FetchJobPollingInterval,
            AbortJobPollingInterval = Seconds(settings, _abortPolling) ?? defaults.AbortJobPollingInterval,
            ShutdownGracefulTimeout = Seconds(settings, _gracefulTimeout),
            Wait = !settings.Get(_oneShot, false),
            ListenNotify = listenNotify,
            DeleteJobs = settings.Get(_deleteJobs)?.Trim().ToLowerInvariant() switch
            {
                null or "never" => DeleteJobsMode.Never,
                "successful" => DeleteJobsMode.Successful,
                "always" => DeleteJobsMode.Always,
                var other => throw new CliUsageException($"--delete-jobs: '{other}' is not one of never, successful, always."),
            },
            VacuumAfterClaimedJobs = settings.Get(_vacuumAfter, defaults.VacuumAfterClaimedJobs),
            HandleSignals = true,
        };
    }

    private static TimeSpan? Seconds(Settings settings, Option<double> option) =>
        settings.GetNullable(option) is { } seconds ? TimeParsing.FromSeconds(seconds, seconds.ToString(CultureInfo.InvariantCulture), option.Name) : null;

    [LoggerMessage(1, LogLevel.Information,
        "Starting worker '{Name}' of {App} on {Queues}: concurrency {Concurrency}, prefetch {Prefetch}, claims in flight {ClaimsInFlight}, durable claims {DurableClaims}, {TaskCount} task(s), listen/notify {ListenNotify}, " +
        "fetch polling {FetchPolling:0.###} s, abort polling {AbortPolling:0.###} s, graceful timeout {Graceful}, delete jobs {DeleteJobs}, vacuum {Vacuum}, one-shot {OneShot}")]
    private static partial void LogStarting(ILogger logger, string name, string app, string queues, int concurrency, string prefetch, int claimsInFlight, string durableClaims, int taskCount,
        string listenNotify, double fetchPolling, double abortPolling, string graceful, string deleteJobs, string vacuum, string oneShot);

    [LoggerMessage(2, LogLevel.Information, "Worker '{Name}' stopped after {Seconds:F1} s; it ran {Completed} job(s)")]
    private static partial void LogStopped(ILogger logger, string name, double seconds, long completed);
}
