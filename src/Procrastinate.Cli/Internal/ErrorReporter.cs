using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;
using Npgsql;

namespace Procrastinate.Cli.Internal;

/// <summary>Turns an exception into the one line a person reads, and its exit code.</summary>
internal static class ErrorReporter
{
    /// <param name="exception">What was thrown.</param>
    /// <param name="database">Where the app connects (host, port, database, user), when known.</param>
    public static (string Message, int ExitCode) Describe(Exception exception, string? database)
    {
        var e = Unwrap(exception);
        var message = e switch
        {
            CliException cli => cli.Message,
            AlreadyEnqueuedException already => already.ExistingJobId is { } existing
                ? $"{already.Message} (job #{existing}); nothing was deferred. Pass --ignore-already-enqueued to get its id instead."
                : $"{already.Message}; nothing was deferred. Pass --ignore-already-enqueued to get its id instead.",
            PostgresException pg => DescribePostgres(pg, database),
            NpgsqlException or SocketException or TimeoutException when IsConnectionFailure(e) =>
                $"cannot connect to PostgreSQL{At(database)}: {Innermost(e).Message}",
            ConnectorException connector => $"{connector.Message}: {Innermost(connector).Message}",
            ArgumentException argument => WithoutParameterName(argument),
            JsonException or FormatException or ProcrastinateException or InvalidOperationException or NotSupportedException => e.Message,
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        var code = e is CliException c ? c.ExitCode : ExitCodes.Error;
        return (OneLine(message), code);
    }

    /// <summary>Replaces every secret with <c>***</c>.</summary>
    public static string Scrub(string text, IReadOnlyList<string> secrets)
    {
        foreach (var secret in secrets)
            if (secret.Length > 0)
                text = text.Replace(secret, "***", StringComparison.Ordinal);
        return text;
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is TargetInvocationException or AggregateException or TypeInitializationException && e.InnerException is not null)
            e = e.InnerException;
        if (e is ConnectorException { InnerException: NpgsqlException inner })
            return inner;
        return e;
    }

    private static bool IsConnectionFailure(Exception e) =>
        e is SocketException or TimeoutException || e.InnerException is SocketException or TimeoutException or IOException
        || e.Message.Contains("connect", StringComparison.OrdinalIgnoreCase);

    private static string DescribePostgres(PostgresException e, string? database) => e.SqlState switch
    {
        PostgresErrorCodes.InvalidCatalogName => $"cannot connect to PostgreSQL{At(database)}: {e.MessageText}",
        PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification =>
            $"cannot connect to PostgreSQL{At(database)}: {e.MessageText}",
        PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedFunction =>
            $"the Procrastinate schema is missing or incomplete{In(database)} ({e.MessageText}); install it with `procrastinate schema --apply`",
        _ => $"PostgreSQL error {e.SqlState}: {e.MessageText}",
    };

    private static string At(string? database) => database is null ? "" : $" at {database}";

    private static string In(string? database) => database is null ? "" : $" in {database}";

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e;
    }

    private static string WithoutParameterName(ArgumentException e)
    {
        var message = e.Message;
        var suffix = e.ParamName is null ? null : $" (Parameter '{e.ParamName}')";
        return suffix is not null && message.EndsWith(suffix, StringComparison.Ordinal) ? message[..^suffix.Length] : message;
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
