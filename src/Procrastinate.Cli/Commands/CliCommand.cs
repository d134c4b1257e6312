using System.CommandLine;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary>One command of the command line: its flags, and what it does.</summary>
internal abstract class CliCommand
{
    /// <summary>Creates the command with its arguments and options (called once per command tree).</summary>
    public abstract Command Build();

    /// <summary>Runs the command and returns the exit code. Errors are thrown; the runner prints them.</summary>
    public abstract Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken);

    protected static Option<bool> JsonOption() => new("--json")
    {
        Description = "Print JSON (for scripts) instead of a table.",
    };
}
