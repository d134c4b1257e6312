using System.CommandLine;
using Microsoft.Extensions.Logging;

namespace Procrastinate.Cli.Internal;

/// <summary>One command being run: its parsed flags, the console, and the session it works in.</summary>
internal sealed class Invocation(CliRunner runner, ParseResult parseResult, string commandName)
{
    public Settings Settings { get; } = new(parseResult, commandName, runner.Console.GetEnvironmentVariable);

    public ParseResult ParseResult => parseResult;

    public CliConsole Console => runner.Console;

    public CliRunner Runner => runner;

    /// <summary>The session, created on first use (loading the app and configuring logging).</summary>
    public CliSession Session(LogLevel defaultLogLevel = LogLevel.Warning) => runner.GetSession(this, defaultLogLevel);

    /// <summary>The value of a required argument.</summary>
    public T Argument<T>(Argument<T> argument) => parseResult.GetValue(argument)!;

    public void WriteLine(string text = "") => Console.Out.WriteLine(text);
}
