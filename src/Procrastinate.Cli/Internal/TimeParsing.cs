using System.Globalization;
using System.Text.RegularExpressions;

namespace Procrastinate.Cli.Internal;

/// <summary>Parses the instants and durations people type on the command line.</summary>
internal static partial class TimeParsing
{
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(?<offset>Z|z|[+-]\d{2}(:?\d{2})?)?$")]
    private static partial Regex IsoInstant();

    [GeneratedRegex(@"^(\d+(\.\d+)?)(ms|s|m|h|d)", RegexOptions.IgnoreCase)]
    private static partial Regex DurationPart();

    /// <summary>
    /// An ISO-8601 instant with an offset: <c>2030-01-01T09:00:00Z</c>, <c>2030-01-01 09:00+02:00</c>.
    /// An instant without an offset is refused: it would depend on the machine's time zone.
    /// </summary>
    public static DateTimeOffset ParseInstant(string value, string what)
    {
        var text = value.Trim();
        var match = IsoInstant().Match(text);
        if (!match.Success)
            throw new CliUsageException($"{what}: '{value}' is not an ISO-8601 date and time such as 2030-01-01T09:00:00Z or 2030-01-01T09:00:00+02:00.");
        if (!match.Groups["offset"].Success)
            throw new CliUsageException($"{what}: '{value}' has no time zone offset; add Z (UTC) or an offset such as +02:00.");
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var instant))
            throw new CliUsageException($"{what}: '{value}' is not a valid date and time.");
        return instant;
    }

    /// <summary>
    /// A delay: seconds (<c>10</c>, <c>1.5</c>), a time span (<c>1:30:00</c>, <c>2.03:00:00</c>),
    /// or numbers with units, combinable (<c>90s</c>, <c>5m</c>, <c>2h</c>, <c>1d</c>, <c>1h30m</c>, <c>250ms</c>).
    /// </summary>
    public static TimeSpan ParseDelay(string value, string what)
    {
        var text = value.Trim();
        TimeSpan result;
        if (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds))
            result = FromSeconds(seconds, value, what);
        else if (text.Contains(':', StringComparison.Ordinal))
        {
            if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out result))
                throw Invalid(value, what);
        }
        else
        {
            result = TimeSpan.Zero;
            var rest = text;
            if (rest.Length == 0)
                throw Invalid(value, what);
            while (rest.Length > 0)
            {
                var match = DurationPart().Match(rest);
                if (!match.Success)
                    throw Invalid(value, what);
                var amount = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                var unit = match.Groups[3].Value.ToLowerInvariant();
                result += FromSeconds(unit switch
                {
                    "ms" => amount / 1000,
                    "s" => amount,
                    "m" => amount * 60,
                    "h" => amount * 3600,
                    _ => amount * 86400,
                }, value, what);
                rest = rest[match.Length..];
            }
        }
        if (result < TimeSpan.Zero)
            throw new CliUsageException($"{what}: '{value}' is negative.");
        return result;
    }

    /// <summary>A non-negative number of seconds as a <see cref="TimeSpan"/>.</summary>
    public static TimeSpan FromSeconds(double seconds, string value, string what)
    {
        if (double.IsNaN(seconds) || seconds < 0 || seconds > TimeSpan.MaxValue.TotalSeconds)
            throw new CliUsageException($"{what}: '{value}' is not a number of seconds between 0 and {TimeSpan.MaxValue.TotalSeconds:F0}.");
        return TimeSpan.FromSeconds(seconds);
    }

    private static CliUsageException Invalid(string value, string what) =>
        new($"{what}: '{value}' is not a delay; use seconds (10), a time span (1:30:00) or units (90s, 5m, 2h, 1d, 1h30m).");
}
