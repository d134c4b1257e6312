using System.CommandLine;
using System.Globalization;

namespace Procrastinate.Cli.Internal;

/// <summary>
/// Reads the value of an option for one command: the flag on the command line wins; otherwise
/// <c>PROCRASTINATE_&lt;COMMAND&gt;_&lt;NAME&gt;</c>, then <c>PROCRASTINATE_&lt;NAME&gt;</c>
/// (upper case, dashes as underscores); otherwise the option's default.
/// </summary>
internal sealed class Settings(ParseResult parseResult, string commandName, Func<string, string?> getEnvironmentVariable)
{
    public const string Prefix = "PROCRASTINATE_";

    public ParseResult ParseResult { get; } = parseResult;

    public string CommandName { get; } = commandName;

    /// <summary>The two variables that can set <paramref name="option"/>, the command's own first.</summary>
    public IEnumerable<string> VariablesFor(Option option)
    {
        var name = ToVariablePart(option.Name);
        if (CommandName.Length > 0)
            yield return Prefix + ToVariablePart(CommandName) + "_" + name;
        yield return Prefix + name;
    }

    public static string ToVariablePart(string name) =>
        name.TrimStart('-').ToUpperInvariant().Replace('-', '_');

    /// <summary>True when the option was given on the command line.</summary>
    public bool IsExplicit(Option option) => ParseResult.GetResult(option) is { Implicit: false };

    /// <summary>True when the option was given on the command line or by an environment variable.</summary>
    public bool IsSet(Option option) => IsExplicit(option) || FromEnvironment(option) is not null;

    private (string Variable, string Value)? FromEnvironment(Option option)
    {
        foreach (var variable in VariablesFor(option))
            if (getEnvironmentVariable(variable) is { Length: > 0 } value)
                return (variable, value);
        return null;
    }

    /// <summary>The option's value, or <paramref name="fallback"/> when neither the flag nor a variable sets it.</summary>
    public T Get<T>(Option<T> option, T fallback)
    {
        if (IsExplicit(option))
            return ParseResult.GetValue(option)!;
        if (FromEnvironment(option) is var (variable, value))
            return Convert<T>(variable, value);
        return fallback;
    }

    /// <summary>The option's value, or null when not set.</summary>
    public string? Get(Option<string> option) => Get<string?>(option!, null);

    /// <summary>The option's value, or null when not set.</summary>
    public T? GetNullable<T>(Option<T> option) where T : struct
    {
        if (IsExplicit(option))
            return ParseResult.GetValue(option);
        if (FromEnvironment(option) is var (variable, value))
            return Convert<T>(variable, value);
        return null;
    }

    private static T Convert<T>(string variable, string value)
    {
        object result = typeof(T) switch
        {
            var t when t == typeof(string) => value,
            var t when t == typeof(bool) => ParseBool(variable, value),
            var t when t == typeof(int) => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)
                ? i : throw new CliUsageException($"{variable}: '{value}' is not a whole number."),
            var t when t == typeof(long) => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)
                ? l : throw new CliUsageException($"{variable}: '{value}' is not a whole number."),
            var t when t == typeof(double) => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                ? d : throw new CliUsageException($"{variable}: '{value}' is not a number."),
            var t when t == typeof(string[]) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            _ => throw new NotSupportedException($"Options of type {typeof(T).Name} cannot be read from the environment."),
        };
        return (T)result;
    }

    private static bool ParseBool(string variable, string value) => value.Trim().ToLowerInvariant() switch
    {
        "1" or "true" or "yes" or "on" => true,
        "0" or "false" or "no" or "off" => false,
        _ => throw new CliUsageException($"{variable}: '{value}' is not a boolean (true/false, 1/0, yes/no, on/off)."),
    };
}
