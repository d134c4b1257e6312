using System.CommandLine;
using Procrastinate.Cli.Internal;
using Procrastinate.Dashboard;

namespace Procrastinate.Cli.Commands;

/// <summary><c>dashboard</c>: serves the web dashboard on 127.0.0.1 until Ctrl+C or SIGTERM, behind a token.</summary>
internal sealed class DashboardCommand : CliCommand
{
    private readonly Option<int> _port = new("--port", "-p")
    {
        Description = $"The port to listen on (default: {DashboardServerOptions.DefaultPort}; 0: any free port).",
        HelpName = "port",
    };
    private readonly Option<string> _host = new("--host")
    {
        Description = "The address to listen on: an IP address or localhost (default: 127.0.0.1, this machine only).",
        HelpName = "address",
    };
    private readonly Option<string> _token = new("--token")
    {
        Description = "The token browsers and scripts present, at least 16 characters (default: a random one, printed). Prefer PROCRASTINATE_DASHBOARD_TOKEN to the flag.",
        HelpName = "token",
    };
    private readonly Option<bool> _allowActions = new("--allow-actions")
    {
        Description = "Let token holders retry, cancel, abort and delete jobs and rescue stalled ones (default: read-only).",
    };
    private readonly Option<string> _title = new("--title") { Description = "The title in the header (default: Procrastinate).", HelpName = "text" };

    public override Command Build() => new("dashboard", "Serve the web dashboard (read-only unless --allow-actions) on 127.0.0.1, behind a token, until Ctrl+C or SIGTERM.")
    {
        _port, _host, _token, _allowActions, _title,
    };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var options = new DashboardServerOptions
        {
            Port = settings.Get(_port, DashboardServerOptions.DefaultPort),
            Host = settings.Get(_host) ?? "127.0.0.1",
            Token = settings.Get(_token),
            AllowActions = settings.Get(_allowActions, false),
            Title = settings.Get(_title) ?? "Procrastinate",
            Output = invocation.Console.Out,
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
        var session = invocation.Session();
        var health = await session.App.Health.CheckDatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (!health.IsHealthy)
            throw new CliException(health.Description);
        options.LoggerFactory = session.LoggerFactory;
        // Blocks until Ctrl+C or SIGTERM (the server handles both) or the token fires.
        await DashboardServer.RunAsync(session.App, options, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Ok;
    }
}
