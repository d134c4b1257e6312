using System.CommandLine;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary><c>schema --apply | --read | --migrate</c>, with <c>--layout compatible|lean</c>.</summary>
internal sealed class SchemaCommand : CliCommand
{
    private readonly Option<bool> _apply = new("--apply") { Description = "Install the schema when missing, then the pending .NET migrations; idempotent (the default)." };
    private readonly Option<bool> _read = new("--read") { Description = "Print the SQL of Procrastinate's schema; touches no database." };
    private readonly Option<bool> _migrate = new("--migrate")
    {
        Description = "Apply the pending .NET migrations to an installed schema and say which. Procrastinate's Python migrations are not applied.",
    };

    private readonly Option<string> _layout = new("--layout")
    {
        Description = "With --apply: the table layout to install or convert to: 'compatible' (Procrastinate 3.x's; Python processes can share the database) or 'lean' (.NET only, faster). Without it, an installed schema keeps its layout and a new one is compatible. With --read: also print the conversion to that layout.",
        HelpName = "compatible|lean",
    };

    public override Command Build() => new("schema", "Install, print or migrate the database schema.") { _apply, _read, _migrate, _layout };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var chosen = new[] { _apply, _read, _migrate }.Where(o => settings.Get(o, false)).ToList();
        if (chosen.Count > 1)
            throw new CliUsageException($"choose one of --apply, --read, --migrate (got {string.Join(", ", chosen.Select(o => o.Name))}).");
        var action = chosen.Count == 0 ? _apply : chosen[0];
        SchemaLayout? layout = settings.Get(_layout)?.Trim().ToLowerInvariant() switch
        {
            null => null,
            "lean" => SchemaLayout.Lean,
            "compatible" => SchemaLayout.Compatible,
            var other => throw new CliUsageException($"--layout: '{other}' is not a layout; use 'compatible' or 'lean'."),
        };
        if (layout is not null && action == _migrate)
            throw new CliUsageException("--layout goes with --apply or --read, not --migrate.");

        if (action == _read)
        {
            await invocation.Console.Out.WriteAsync(SchemaManager.ReadSchemaSql()).ConfigureAwait(false);
            foreach (var migration in SchemaManager.KnownMigrations)
                await invocation.Console.Out.WriteAsync($"\n-- .NET migration {migration}\n{SchemaManager.ReadMigrationSql(migration)}").ConfigureAwait(false);
            if (layout is { } target)
                await invocation.Console.Out.WriteAsync($"\n-- .NET layout conversion to {target.ToString().ToLowerInvariant()}\n{SchemaManager.ReadLayoutSql(target)}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var session = invocation.Session();
        if (action == _apply)
        {
            var result = await session.App.Schema.ApplyAsync(layout, cancellationToken).ConfigureAwait(false);
            invocation.WriteLine(result.ToString());
            return ExitCodes.Ok;
        }

        var status = await session.App.Schema.CheckAsync(cancellationToken).ConfigureAwait(false);
        if (!status.Installed)
            throw new CliException($"no Procrastinate schema{In(session)} to migrate; install it with `procrastinate schema --apply`.");
        if (!status.AtSupportedLevel)
            throw new CliException($"the Procrastinate schema{In(session)} is older than 3.4; apply Procrastinate's Python migrations first (they are not part of this tool).");
        if (status.PendingMigrations.Count == 0 && status.UnknownMigrations.Count == 0)
        {
            invocation.WriteLine($"Nothing to migrate: the schema is up to date (.NET migrations: {string.Join(", ", SchemaManager.KnownMigrations)}).");
            return ExitCodes.Ok;
        }
        var applied = await session.App.Schema.ApplyAsync(cancellationToken).ConfigureAwait(false);
        invocation.WriteLine(applied.AppliedMigrations.Count > 0
            ? $"Applied .NET migration(s): {string.Join(", ", applied.AppliedMigrations)}."
            : applied.ToString());
        return ExitCodes.Ok;
    }

    private static string In(CliSession session) => session.Database is { } database ? $" in {database}" : "";
}
