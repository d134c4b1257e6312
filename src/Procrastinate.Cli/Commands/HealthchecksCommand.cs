using System.CommandLine;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary><c>healthchecks</c>: the app, the database connection and the schema.</summary>
internal sealed class HealthchecksCommand : CliCommand
{
    public override Command Build() => new("healthchecks", "Check the app, the database connection and the schema; exit 1 when something is wrong.");

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var session = invocation.Session();
        invocation.WriteLine(session.UserApp is { } app
            ? $"App: OK - {app.Description}, {app.App.Tasks.Count} task(s)."
            : "App: none loaded (database commands only).");
        var database = await session.App.Health.CheckDatabaseAsync(cancellationToken).ConfigureAwait(false);
        var where = session.Database is { } target ? $" ({target})" : "";
        invocation.WriteLine($"Database{where}: {(database.IsHealthy ? "OK" : "FAILED")} - {database.Description}");
        return database.IsHealthy ? ExitCodes.Ok : ExitCodes.Error;
    }
}
