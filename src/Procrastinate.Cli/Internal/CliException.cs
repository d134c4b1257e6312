namespace Procrastinate.Cli.Internal;

/// <summary>
/// An error meant for the person at the terminal: its message is printed as one line, without a
/// stack trace (unless <c>--verbose</c>), and the process exits with <see cref="ExitCode"/>.
/// </summary>
internal class CliException(string message, int exitCode = ExitCodes.Error, Exception? innerException = null)
    : Exception(message, innerException)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Bad usage: a missing or malformed flag, conflicting flags. Exit code 2, as click does.</summary>
internal sealed class CliUsageException(string message) : CliException(message, ExitCodes.Usage);

/// <summary>The process exit codes.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Error = 1;
    public const int Usage = 2;
}
