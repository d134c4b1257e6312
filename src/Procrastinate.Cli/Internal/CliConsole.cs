using Spectre.Console;

namespace Procrastinate.Cli.Internal;

/// <summary>Where the command line reads and writes, and whether a person is at the other end.</summary>
internal sealed class CliConsole
{
    public CliConsole(TextReader input, TextWriter output, TextWriter error, bool inputIsTerminal, bool outputIsTerminal,
        Func<string, string?> getEnvironmentVariable)
    {
        In = input;
        Out = output;
        Error = error;
        InputIsTerminal = inputIsTerminal;
        OutputIsTerminal = outputIsTerminal;
        GetEnvironmentVariable = getEnvironmentVariable;
        Ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = outputIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = outputIsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = outputIsTerminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!outputIsTerminal)
            Ansi.Profile.Width = 240;   // tables written to a file or a pipe are not cut at 80 columns
    }

    /// <summary>The process's own console.</summary>
    public static CliConsole System() => new(Console.In, Console.Out, Console.Error,
        !Console.IsInputRedirected, !Console.IsOutputRedirected, Environment.GetEnvironmentVariable);

    public TextReader In { get; }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Tables and live progress, on <see cref="Out"/>.</summary>
    public IAnsiConsole Ansi { get; }

    public bool InputIsTerminal { get; }

    public bool OutputIsTerminal { get; }

    public Func<string, string?> GetEnvironmentVariable { get; }
}
