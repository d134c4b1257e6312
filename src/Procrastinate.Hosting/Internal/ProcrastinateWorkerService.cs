using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Procrastinate.Hosting.Internal;

/// <summary>
/// Runs every worker added with <c>AddProcrastinateWorker</c>, side by side, in one hosted
/// service: on host stop they all stop at once, so each gets the whole shutdown budget.
/// </summary>
/// <remarks>
/// A worker that cannot start because the database is unreachable (a transient error) starts
/// again after a growing delay, and the health check says so meanwhile. Any other failure stops
/// the other workers and surfaces through <see cref="BackgroundService.ExecuteTask"/>, so the host
/// applies its <c>BackgroundServiceExceptionBehavior</c> (by default, it stops).
/// </remarks>
internal sealed class ProcrastinateWorkerService : BackgroundService
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan HealthyRunResetsBackoff = TimeSpan.FromMinutes(1);

    private readonly App _app;
    private readonly IOptionsMonitor<ProcrastinateWorkerOptions> _options;
    private readonly TimeSpan _hostShutdownTimeout;
    private readonly ILogger _logger;

    public ProcrastinateWorkerService(IServiceProvider services, WorkerRegistry registry,
        IOptionsMonitor<ProcrastinateWorkerOptions> options, IOptions<HostOptions> hostOptions, ILogger<ProcrastinateWorkerService> logger)
    {
        _app = services.GetService<App>() ?? throw new InvalidOperationException(
            "AddProcrastinateWorker needs the Procrastinate App: call services.AddProcrastinate(...) too.");
        _options = options;
        _hostShutdownTimeout = hostOptions.Value.ShutdownTimeout;
        _logger = logger;
        Workers = [.. registry.Names.Select(n => new HostedWorker(n))];
    }

    /// <summary>The hosted workers and their states.</summary>
    public IReadOnlyList<HostedWorker> Workers { get; }

    /// <summary>The app the workers run.</summary>
    public App App => _app;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // One worker failing for good stops the others, so the failure reaches the host now.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        await Task.WhenAll(Workers.Select(w => RunAsync(w, stop))).ConfigureAwait(false);
    }

    /// <summary>Reads and maps a worker's options (validated by <see cref="ProcrastinateWorkerOptionsValidator"/>).</summary>
    internal WorkerOptions ResolveOptions(string registrationName) =>
        _options.Get(registrationName).ToWorkerOptions(registrationName, ProcrastinateWorkerOptions.DefaultGracefulTimeout(_hostShutdownTimeout));

    private async Task RunAsync(HostedWorker worker, CancellationTokenSource stop)
    {
        // Each worker runs on its own task: the first awaits of one must not delay the others.
        await Task.Yield();
        WorkerOptions options;
        try
        {
            options = ResolveOptions(worker.RegistrationName);
        }
        catch (Exception e)
        {
            worker.Set(HostedWorkerState.Faulted, null, e);
            Log.WorkerFailed(_logger, worker.DisplayName, e);
            await stop.CancelAsync().ConfigureAwait(false);
            throw;
        }
        if (options.ShutdownGracefulTimeout is { } graceful && _hostShutdownTimeout != Timeout.InfiniteTimeSpan && graceful >= _hostShutdownTimeout)
            Log.GracefulTimeoutTooLong(_logger, options.Name, graceful, _hostShutdownTimeout);

        var time = _app.Options.TimeProvider;
        var failures = 0;
        while (true)
        {
            var token = stop.Token;
            if (token.IsCancellationRequested)
            {
                worker.Set(HostedWorkerState.Stopped, options);
                return;
            }
            worker.Set(HostedWorkerState.Running, options);
            var started = time.GetTimestamp();
            try
            {
                await EnsureReachableAsync(token).ConfigureAwait(false);
                await _app.RunWorkerAsync(options, token).ConfigureAwait(false);
                worker.Set(HostedWorkerState.Stopped, options);
                return;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                worker.Set(HostedWorkerState.Stopped, options);
                return;
            }
            catch (Exception e) when (IsTransient(e) && !token.IsCancellationRequested)
            {
                if (time.GetElapsedTime(started) > HealthyRunResetsBackoff)
                    failures = 0;
                var delay = Backoff(++failures);
                worker.Set(HostedWorkerState.Retrying, options, e);
                Log.WorkerRetrying(_logger, options.Name, delay, e);
                try
                {
                    await Task.Delay(delay, time, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    worker.Set(HostedWorkerState.Stopped, options, e);
                    return;
                }
            }
            catch (Exception e)
            {
                worker.Set(HostedWorkerState.Faulted, options, e);
                Log.WorkerFailed(_logger, options.Name, e);
                await stop.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>
    /// Opens (and returns to the pool) one connection, so that an unreachable database is told
    /// apart from an unusable one: the first is retried, the second stops the host.
    /// </summary>
    private async Task EnsureReachableAsync(CancellationToken cancellationToken)
    {
        if (_app.Connector is NpgsqlConnector connector)
        {
            var connection = await connector.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static bool IsTransient(Exception e) =>
        e is NpgsqlException { IsTransient: true } or TimeoutException or IOException or SocketException;

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromSeconds(Math.Min(Math.Pow(2, Math.Min(failures - 1, 10)), MaxRetryDelay.TotalSeconds));
}
