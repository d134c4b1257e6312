using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Procrastinate.Cli.Commands;

namespace Procrastinate.Cli.Internal;

/// <summary>
/// Builds the command tree, runs one command line (or, for the shell, many), turns errors into one
/// line, and holds the session the commands share.
/// </summary>
internal sealed class CliRunner : IAsyncDisposable
{
    private static readonly ParserConfiguration ParserConfiguration = new() { ResponseFileTokenReplacer = null };

    private readonly App? _hostedApp;
    private readonly Command _root;
    private CliSession? _session;

    public CliRunner(CliConsole console, App? hostedApp)
    {
        Console = console;
        _hostedApp = hostedApp;
        Globals = new GlobalOptions(hostedApp is null);
        _root = BuildRoot();
    }

    public CliConsole Console { get; }

    public GlobalOptions Globals { get; }

    /// <summary>True while the interactive shell runs commands.</summary>
    public bool InShell { get; set; }

    /// <summary>The commands of the shell: every command but <c>worker</c> and <c>shell</c>.</summary>
    public IEnumerable<Command> ShellCommands => _root.Subcommands.Where(c => c.Name is not ("worker" or "shell" or "dashboard"));

    private Command BuildRoot()
    {
        // The tool is `procrastinate` whatever its assembly is called; a hosting program keeps its own name.
        var root = new Command(_hostedApp is null ? "procrastinate" : RootCommand.ExecutableName,
            "Procrastinate for .NET: a PostgreSQL job queue compatible with Procrastinate 3.x.\n" +
            "Every flag can also be set with PROCRASTINATE_<COMMAND>_<FLAG> or PROCRASTINATE_<FLAG> (for example PROCRASTINATE_WORKER_CONCURRENCY=4).");
        foreach (var option in Globals.All)
            root.Options.Add(option);
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption { Action = new VersionAction(Console) });
        CliCommand[] commands =
        [
            new DeferCommand(), new WorkerCommand(), new SchemaCommand(), new HealthchecksCommand(), new DashboardCommand(),
            new JobsCommand(), new CountsCommand("queues"), new CountsCommand("tasks"), new CountsCommand("locks"), new WorkersCommand(),
            new CancelCommand(), new AbortCommand(), new RetryCommand(), new DeleteCommand(),
            new ShellCommand(),
        ];
        foreach (var command in commands)
        {
            var built = command.Build();
            built.SetAction((parseResult, cancellationToken) => ExecuteAsync(parseResult, command, built.Name, cancellationToken));
            root.Subcommands.Add(built);
        }
        root.SetAction(parseResult =>
        {
            new HelpAction().Invoke(parseResult);
            return ExitCodes.Ok;
        });
        return root;
    }

    /// <summary>Runs one command line and returns its exit code.</summary>
    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var parseResult = _root.Parse(args, ParserConfiguration);
        if (parseResult.Action is ParseErrorAction)
        {
            foreach (var error in parseResult.Errors)
                await Console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"Run '{CommandPath(parseResult.CommandResult.Command)} --help' for usage.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var configuration = new InvocationConfiguration
        {
            Output = Console.Out,
            Error = Console.Error,
            EnableDefaultExceptionHandler = false,
            // The worker handles SIGINT and SIGTERM itself, with a graceful shutdown.
            ProcessTerminationTimeout = null,
        };
        return await parseResult.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private string CommandPath(Command command) =>
        command == _root ? _root.Name : $"{_root.Name} {command.Name}";

    private async Task<int> ExecuteAsync(ParseResult parseResult, CliCommand command, string name, CancellationToken cancellationToken)
    {
        var invocation = new Invocation(this, parseResult, name);
        try
        {
            if (InShell && name is "worker" or "shell" or "dashboard")
                throw new CliUsageException($"'{name}' is not available in the shell.");
            return await command.ExecuteAsync(invocation, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("error: cancelled").ConfigureAwait(false);
            return ExitCodes.Error;
        }
        catch (Exception e)
        {
            return await ReportAsync(e, invocation).ConfigureAwait(false);
        }
    }

    private async Task<int> ReportAsync(Exception exception, Invocation invocation)
    {
        var (message, exitCode) = ErrorReporter.Describe(exception, SafeDatabase());
        var secrets = _session?.Secrets ?? ConnectionInfo.Secrets(SafeConnectionString(invocation), Console.GetEnvironmentVariable);
        await Console.Error.WriteLineAsync("error: " + ErrorReporter.Scrub(message, secrets)).ConfigureAwait(false);
        if (IsVerbose(invocation))
            await Console.Error.WriteLineAsync(ErrorReporter.Scrub(exception.ToString(), secrets)).ConfigureAwait(false);
        return exitCode;
    }

    private string? SafeDatabase()
    {
        try
        {
            return _session?.Database;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    private string? SafeConnectionString(Invocation invocation)
    {
        try
        {
            return invocation.Settings.Get(Globals.ConnectionString);
        }
        catch (CliException)
        {
            return null;
        }
    }

    private bool IsVerbose(Invocation invocation)
    {
        try
        {
            return invocation.Settings.Get(Globals.Verbose, false);
        }
        catch (CliException)
        {
            return false;
        }
    }

    /// <summary>The session, created by the first command that needs it; the shell's commands share it.</summary>
    public CliSession GetSession(Invocation invocation, LogLevel defaultLogLevel)
    {
        var settings = invocation.Settings;
        if (_session is not null)
        {
            var explicitGlobals = Globals.Connection.Where(settings.IsExplicit).Select(o => o.Name).ToList();
            if (explicitGlobals.Count > 0)
                throw new CliUsageException($"{string.Join(", ", explicitGlobals)} apply to the whole shell: give them before 'shell'.");
            return _session;
        }
        string? appSpec = null;
        string? appSource = null;
        if (Globals.App is { } appOption && settings.Get(appOption) is { Length: > 0 } spec)
        {
            appSpec = spec;
            appSource = settings.IsExplicit(appOption) ? "--app" : settings.VariablesFor(appOption).First(v => Console.GetEnvironmentVariable(v) is { Length: > 0 });
        }
        var globals = new GlobalSettings(appSpec, appSource, settings.Get(Globals.ConnectionString),
            ParseLogLevel(settings.Get(Globals.LogLevel)), settings.Get(Globals.Verbose, false));
        _session = CliSession.Create(Console, globals, _hostedApp, defaultLogLevel);
        return _session;
    }

    private static LogLevel? ParseLogLevel(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" or "information" => LogLevel.Information,
        "warn" or "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        "none" => LogLevel.None,
        _ => throw new CliUsageException($"--log-level: '{value}' is not a level (trace, debug, information, warning, error, critical, none)."),
    };

    public async ValueTask DisposeAsync()
    {
        if (_session is not null)
            await _session.DisposeAsync().ConfigureAwait(false);
        _session = null;
    }

    private sealed class VersionAction(CliConsole console) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            console.Out.WriteLine($"procrastinate {Version(typeof(CliRunner).Assembly)} (Procrastinate for .NET {Version(typeof(App).Assembly)})");
            return ExitCodes.Ok;
        }

        private static string Version(Assembly assembly)
        {
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? assembly.GetName().Version?.ToString() ?? "unknown";
            var plus = version.IndexOf('+', StringComparison.Ordinal);
            return plus < 0 ? version : version[..plus];
        }
    }
}

/// <summary>The options every command takes.</summary>
internal sealed class GlobalOptions
{
    public GlobalOptions(bool withApp)
    {
        if (withApp)
            App = new Option<string>("--app", "-a")
            {
                Description = "The app: a compiled assembly (MyCode.dll), optionally with the member holding the App (MyCode.dll:MyCode.Tasks.App). [env: PROCRASTINATE_APP]",
                HelpName = "path[:member]",
                Recursive = true,
            };
    }

    public Option<string>? App { get; }

    public Option<string> ConnectionString { get; } = new("--connection-string")
    {
        Description = "PostgreSQL connection string or postgresql:// URL. Default: PROCRASTINATE_DATABASE_URL, else the PG* variables; an app's own connection when an app is loaded.",
        HelpName = "string",
        Recursive = true,
    };

    public Option<string> LogLevel { get; } = new("--log-level")
    {
        Description = "Logging on stderr: trace, debug, information, warning, error, critical, none. Default: information for the worker, warning otherwise.",
        HelpName = "level",
        Recursive = true,
    };

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Show full errors (with stack traces), and debug logs unless --log-level says otherwise.",
        Recursive = true,
    };

    /// <summary>The options that choose the app and the database (fixed for a whole shell).</summary>
    public IEnumerable<Option> Connection => new Option?[] { App, ConnectionString, LogLevel }.OfType<Option>();

    public IEnumerable<Option> All => new Option?[] { App, ConnectionString, LogLevel, Verbose }.OfType<Option>();
}
