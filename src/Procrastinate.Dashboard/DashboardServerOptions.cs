using Microsoft.Extensions.Logging;

namespace Procrastinate.Dashboard;

/// <summary>Settings of the standalone dashboard (<see cref="DashboardServer"/>, <c>procrastinate dashboard</c>).</summary>
public sealed class DashboardServerOptions
{
    /// <summary>The port by default: 5380.</summary>
    public const int DefaultPort = 5380;

    /// <summary>The TCP port to listen on (0: any free port; see <see cref="DashboardServer.Url"/>). Default 5380.</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>
    /// The address to listen on: an IP address, or <c>localhost</c>. Default <c>127.0.0.1</c>, this machine
    /// only. Another address serves the network over plain HTTP, where the token can be read by others on
    /// the path: put a TLS proxy in front.
    /// </summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>
    /// The secret a browser or a script presents (at least 16 characters). When null, a random one is
    /// generated and printed with the URL. It is presented once as <c>?token=</c> (the dashboard then keeps
    /// it in an HTTP-only, same-site cookie), or with every request as <c>Authorization: Bearer</c>.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// Whoever holds the token may retry, cancel, abort and delete jobs and rescue stalled ones, after a
    /// confirmation. Off by default: the standalone dashboard is read-only.
    /// </summary>
    public bool AllowActions { get; set; }

    /// <summary>The title shown in the header and the browser tab.</summary>
    public string Title { get; set; } = "Procrastinate";

    /// <summary>How often pages refresh (<see cref="DashboardOptions.RefreshInterval"/>).</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Where the server logs; null: the app's <see cref="AppOptions.LoggerFactory"/>.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Where <see cref="DashboardServer.RunAsync"/> prints the address (and the generated token); null: standard output.</summary>
    public TextWriter? Output { get; set; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        if (Port is < 0 or > 65535)
            throw new ArgumentException($"Port must be between 0 and 65535, not {Port}.", nameof(Port));
        if (string.IsNullOrWhiteSpace(Host))
            throw new ArgumentException("Host is empty.", nameof(Host));
        if (Token is not null && Token.Trim().Length < 16)
            throw new ArgumentException("Token must have at least 16 characters (leave it unset to get a random one).", nameof(Token));
        if (Token is not null && Token.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new ArgumentException("Token cannot contain spaces or control characters.", nameof(Token));
        new DashboardOptions { Title = Title, RefreshInterval = RefreshInterval }.Validate();
    }
}
