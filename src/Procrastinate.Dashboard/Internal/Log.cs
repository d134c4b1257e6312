using Microsoft.Extensions.Logging;

namespace Procrastinate.Dashboard.Internal;

/// <summary>The dashboard's log messages (event ids 7101-7199). Actions are logged with the user, as an audit trail.</summary>
internal static partial class Log
{
    [LoggerMessage(7101, LogLevel.Information, "Dashboard action {Action} on job {JobId} by {User}")]
    public static partial void ActionPerformed(ILogger logger, string action, long jobId, string user);

    [LoggerMessage(7102, LogLevel.Warning, "Dashboard action {Action} on job {JobId} by {User} failed: {Reason}")]
    public static partial void ActionFailed(ILogger logger, string action, long jobId, string user, string reason);

    [LoggerMessage(7103, LogLevel.Warning, "Dashboard action refused ({Path}, user {User}): {Reason}")]
    public static partial void ActionRefused(ILogger logger, string path, string user, string reason);

    [LoggerMessage(7104, LogLevel.Warning, "Dashboard form refused ({Path}, user {User}): antiforgery validation failed: {Reason}")]
    public static partial void AntiforgeryRejected(ILogger logger, string path, string user, string reason);

    [LoggerMessage(7105, LogLevel.Information, "Dashboard rescue: {Count} stalled job(s) set to {Outcome} by {User}")]
    public static partial void RescuePerformed(ILogger logger, int count, string outcome, string user);

    [LoggerMessage(7106, LogLevel.Warning, "Dashboard refused a request from {RemoteAddress}: no authorization policy is set, so only local requests are answered")]
    public static partial void RemoteRefused(ILogger logger, string remoteAddress);

    [LoggerMessage(7107, LogLevel.Error, "Dashboard page {Path} failed: the database could not be read")]
    public static partial void PageFailed(ILogger logger, string path, Exception exception);
}
