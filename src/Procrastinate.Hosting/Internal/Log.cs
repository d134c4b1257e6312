using Microsoft.Extensions.Logging;

namespace Procrastinate.Hosting.Internal;

/// <summary>The log records of the hosting package; event ids 7001 and up, stable.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Worker {WorkerName} could not run; starting it again in {Delay}")]
    public static partial void WorkerRetrying(ILogger logger, string workerName, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Error, Message = "Worker {WorkerName} failed; the hosted workers stop")]
    public static partial void WorkerFailed(ILogger logger, string workerName, Exception exception);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning,
        Message = "Worker {WorkerName}: ShutdownGracefulTimeout ({GracefulTimeout}) is not shorter than the host's ShutdownTimeout ({HostTimeout}); running jobs may be cut off at shutdown before their cancellation token fires")]
    public static partial void GracefulTimeoutTooLong(ILogger logger, string workerName, TimeSpan gracefulTimeout, TimeSpan hostTimeout);
}
