using Procrastinate.Cli.Internal;

namespace Procrastinate;

/// <summary>Runs the <c>procrastinate</c> command line inside the user's own program.</summary>
public static class CliExtensions
{
    /// <summary>
    /// Runs the commands of the <c>procrastinate</c> tool (<c>defer</c>, <c>worker</c>, <c>schema</c>,
    /// <c>jobs</c>, <c>shell</c>, ...) against <paramref name="app"/>, with the process's console, and
    /// returns the exit code. There is no <c>--app</c> flag: the app is this one.
    /// </summary>
    /// <example>
    /// <code>
    /// // Program.cs of MyCode: `dotnet run -- worker -q sums`, `dotnet run -- jobs --status failed`
    /// return await Tasks.App.RunCliAsync(args);
    /// </code>
    /// </example>
    /// <param name="app">The app whose tasks and connection the commands use. It is not disposed.</param>
    /// <param name="args">The command line, without the program's name.</param>
    /// <param name="cancellationToken">Stops the running command (a worker stops gracefully).</param>
    /// <returns>0 on success, 1 on an error (printed as one line on stderr), 2 on bad usage.</returns>
    public static async Task<int> RunCliAsync(this App app, string[] args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(args);
        var runner = new CliRunner(CliConsole.System(), app);
        await using (runner.ConfigureAwait(false))
            return await runner.RunAsync(args, cancellationToken).ConfigureAwait(false);
    }
}
