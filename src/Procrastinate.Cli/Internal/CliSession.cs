using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Procrastinate.Cli.Loading;

namespace Procrastinate.Cli.Internal;

/// <summary>The global settings of one run: which app, which database, how much logging.</summary>
internal sealed record GlobalSettings(string? AppSpec, string? AppSource, string? ConnectionString, LogLevel? LogLevel, bool Verbose);

/// <summary>
/// What the commands work with: the app (the user's, or one the tool builds over the connection
/// string when there is none), and the tool's logging. One per process, shared by a shell's commands.
/// </summary>
internal sealed class CliSession : IAsyncDisposable
{
    private readonly bool _ownsApp;

    private CliSession(App app, LoadedApp? userApp, ILoggerFactory loggerFactory, bool ownsApp, IReadOnlyList<string> secrets)
    {
        App = app;
        UserApp = userApp;
        LoggerFactory = loggerFactory;
        Logger = loggerFactory.CreateLogger("Procrastinate.Cli");
        _ownsApp = ownsApp;
        Secrets = secrets;
    }

    /// <summary>The app the commands use.</summary>
    public App App { get; }

    /// <summary>The user's app (loaded with --app, or the program hosting the CLI), when there is one.</summary>
    public LoadedApp? UserApp { get; }

    public ILoggerFactory LoggerFactory { get; }

    public ILogger Logger { get; }

    /// <summary>Passwords never to print.</summary>
    public IReadOnlyList<string> Secrets { get; }

    /// <summary>Where the app connects, for messages.</summary>
    public string? Database => ConnectionInfo.Describe(App.Connector);

    public static CliSession Create(CliConsole console, GlobalSettings globals, App? hostedApp, LogLevel defaultLevel)
    {
        var loggerFactory = CreateLoggerFactory(globals.LogLevel ?? (globals.Verbose ? LogLevel.Debug : defaultLevel));
        var secrets = ConnectionInfo.Secrets(globals.ConnectionString, console.GetEnvironmentVariable);
        try
        {
            LoadedApp? userApp = null;
            if (hostedApp is not null)
                userApp = new LoadedApp(hostedApp, "the program's app");
            else if (globals.AppSpec is { Length: > 0 } spec)
            {
                // An app built with `new NpgsqlConnector()` reads this variable when it first connects,
                // so --connection-string reaches it.
                if (globals.ConnectionString is { } connectionString)
                    Environment.SetEnvironmentVariable("PROCRASTINATE_DATABASE_URL", connectionString);
                userApp = AppLoader.Load(spec, globals.AppSource ?? "--app");
            }

            if (userApp is not null)
            {
                if (globals.ConnectionString is { } connectionString)
                    CheckSameDatabase(userApp, connectionString);
                return new CliSession(userApp.App, userApp, loggerFactory, ownsApp: hostedApp is null, secrets);
            }

            var connector = globals.ConnectionString is { } cs ? new NpgsqlConnector(cs) : new NpgsqlConnector();
            var app = new App(connector, new AppOptions { LoggerFactory = loggerFactory });
            return new CliSession(app, null, loggerFactory, ownsApp: true, secrets);
        }
        catch
        {
            loggerFactory.Dispose();
            throw;
        }
    }

    private static void CheckSameDatabase(LoadedApp userApp, string connectionString)
    {
        if (userApp.App.Connector is not NpgsqlConnector connector)
            throw new CliUsageException(
                $"--connection-string does not apply: {userApp.Description} uses a {userApp.App.Connector.GetType().Name}, not a PostgreSQL connection.");
        var wanted = ConnectionInfo.Parse(connectionString);
        var actual = new Npgsql.NpgsqlConnectionStringBuilder(connector.DataSource.ConnectionString);
        if (!ConnectionInfo.SameTarget(wanted, actual))
            throw new CliUsageException(
                $"{userApp.Description} connects to {ConnectionInfo.Describe(actual)}, not to {ConnectionInfo.Describe(wanted)} given by --connection-string; " +
                "configure the app's connection instead (an app built with new NpgsqlConnector() reads PROCRASTINATE_DATABASE_URL).");
    }

    private static ILoggerFactory CreateLoggerFactory(LogLevel level) => Microsoft.Extensions.Logging.LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(level);
        builder.AddSimpleConsole(options =>
        {
            options.SingleLine = true;
            options.TimestampFormat = "HH:mm:ss ";
        });
        // Logs go to stderr, so stdout holds only what a command prints (ids, tables, JSON).
        builder.Services.Configure<ConsoleLoggerOptions>(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    public async ValueTask DisposeAsync()
    {
        if (_ownsApp)
            await App.DisposeAsync().ConfigureAwait(false);
        LoggerFactory.Dispose();
    }
}
