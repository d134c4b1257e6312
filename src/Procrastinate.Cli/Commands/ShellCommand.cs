using System.CommandLine;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary>
/// <c>shell</c>: an admin prompt running the same commands (all but <c>worker</c>), one per line,
/// over one session; or, with <c>-c "..."</c> or trailing words, one command and exit.
/// </summary>
internal sealed class ShellCommand : CliCommand
{
    public const string Prompt = "procrastinate> ";

    private readonly Option<string> _command = new("--command", "-c") { Description = "Run this command line and exit.", HelpName = "command" };
    private readonly Argument<string[]> _words = new("COMMAND")
    {
        Description = "A command to run, then exit (shell jobs --status failed).",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public override Command Build()
    {
        var command = new Command("shell", "An interactive admin prompt: jobs, queues, tasks, locks, workers, defer, cancel, abort, retry, delete, schema, healthchecks.")
        {
            _command, _words,
        };
        // Everything after the command's name belongs to the command run in the shell.
        command.TreatUnmatchedTokensAsErrors = false;
        return command;
    }

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var runner = invocation.Runner;
        var console = invocation.Console;
        // Load the app and connect once, with the shell's global flags.
        invocation.Session();
        runner.InShell = true;
        try
        {
            if (invocation.Settings.Get(_command) is { } line)
                return await RunLineAsync(runner, line, cancellationToken).ConfigureAwait(false);
            if (invocation.ParseResult.GetValue(_words) is { Length: > 0 } words)
                return await runner.RunAsync(words, cancellationToken).ConfigureAwait(false);

            if (console.InputIsTerminal)
                await console.Out.WriteLineAsync("Welcome to the procrastinate shell. Type help or ? to list commands, exit or Ctrl+D to leave.").ConfigureAwait(false);
            var last = ExitCodes.Ok;
            while (true)
            {
                await console.Out.WriteAsync(Prompt).ConfigureAwait(false);
                await console.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
                var input = await console.In.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (input is null)
                {
                    await console.Out.WriteLineAsync().ConfigureAwait(false);
                    return last;
                }
                var text = input.Trim();
                if (text.Length == 0 || text.StartsWith('#'))
                    continue;
                if (text is "exit" or "quit" or "EOF")
                    return last;
                last = text == "?" || text == "help" || text.StartsWith("help ", StringComparison.Ordinal)
                    ? await HelpAsync(runner, text, cancellationToken).ConfigureAwait(false)
                    : await RunLineAsync(runner, text, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            runner.InShell = false;
        }
    }

    private static async Task<int> RunLineAsync(CliRunner runner, string line, CancellationToken cancellationToken)
    {
        List<string> tokens;
        try
        {
            tokens = ShellWords.Split(line);
        }
        catch (CliUsageException e)
        {
            await runner.Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return e.ExitCode;
        }
        if (tokens.Count > 0 && tokens[0] == "procrastinate")
            tokens.RemoveAt(0);
        return await runner.RunAsync(tokens, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<int> HelpAsync(CliRunner runner, string text, CancellationToken cancellationToken)
    {
        var topic = text.Length > 4 && text.StartsWith("help ", StringComparison.Ordinal) ? text[5..].Trim() : "";
        if (topic.Length > 0)
            return await runner.RunAsync([topic, "--help"], cancellationToken).ConfigureAwait(false);
        var output = runner.Console.Out;
        await output.WriteLineAsync("Commands (help COMMAND for its flags):").ConfigureAwait(false);
        foreach (var command in runner.ShellCommands)
            await output.WriteLineAsync($"  {command.Name,-14} {command.Description}").ConfigureAwait(false);
        await output.WriteLineAsync($"  {"exit",-14} Leave the shell (also quit, Ctrl+D).").ConfigureAwait(false);
        return ExitCodes.Ok;
    }
}
