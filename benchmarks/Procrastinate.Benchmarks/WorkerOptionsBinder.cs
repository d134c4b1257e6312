using System.Globalization;
using System.Reflection;

namespace Procrastinate.Benchmarks;

/// <summary>
/// Maps <c>Name=Value</c> settings onto the public settable properties of <see cref="WorkerOptions"/>
/// by reflection, so that a new option is usable from the command line without touching the harness.
/// Values: numbers, booleans, enum names (<c>DeleteJobs=Successful</c>), durations (<c>250ms</c>,
/// <c>5s</c>, <c>2m</c> or <c>hh:mm:ss</c>), comma-separated lists, and <c>null</c> for nullable properties.
/// </summary>
internal static class WorkerOptionsBinder
{
    private static PropertyInfo[] Settable =>
        [.. typeof(WorkerOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && IsSupported(p.PropertyType))];

    public static IEnumerable<string> SettableNames => Settable.Select(p => p.Name).Order(StringComparer.Ordinal);

    /// <summary>Splits <c>Name=Value</c>.</summary>
    public static KeyValuePair<string, string> ParseSetting(string setting)
    {
        var i = setting.IndexOf('=', StringComparison.Ordinal);
        if (i <= 0)
            throw new ArgumentException($"Expected Name=Value, got '{setting}'.");
        return new(setting[..i].Trim(), setting[(i + 1)..].Trim());
    }

    /// <summary>Applies settings in order (a later one wins) to a new <see cref="WorkerOptions"/> made from <paramref name="seed"/>.</summary>
    public static WorkerOptions Apply(WorkerOptions seed, IEnumerable<string> settings)
    {
        var options = seed with { };
        foreach (var setting in settings)
        {
            var (name, value) = ParseSetting(setting);
            var property = Settable.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentException(
                    $"WorkerOptions has no settable option '{name}'. Known: {string.Join(", ", SettableNames)}.");
            object? converted;
            try
            {
                converted = Convert(value, property.PropertyType);
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                throw new ArgumentException($"Bad value '{value}' for WorkerOptions.{property.Name} ({property.PropertyType.Name}): {e.Message}", e);
            }
            property.SetValue(options, converted);
        }
        return options;
    }

    /// <summary>Checks that the settings bind and give valid options (fails fast, before any workload runs).</summary>
    public static void Validate(IEnumerable<string> settings) => Apply(new WorkerOptions(), settings).Validate();

    /// <summary>Merges settings: later ones replace earlier ones with the same name (case-insensitive).</summary>
    public static List<string> Merge(params IEnumerable<string>[] lists)
    {
        var result = new List<string>();
        foreach (var setting in lists.SelectMany(l => l))
        {
            var name = ParseSetting(setting).Key;
            result.RemoveAll(s => string.Equals(ParseSetting(s).Key, name, StringComparison.OrdinalIgnoreCase));
            result.Add(setting);
        }
        return result;
    }

    /// <summary>The value of a setting in a list, or null.</summary>
    public static string? Find(IEnumerable<string> settings, string name) =>
        settings.Select(ParseSetting).LastOrDefault(s => string.Equals(s.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    private static bool IsSupported(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t == typeof(string) || t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(bool)
            || t == typeof(TimeSpan) || t.IsEnum || t == typeof(IReadOnlyList<string>) || t == typeof(string[]);
    }

    private static object? Convert(string text, Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if ((underlying is not null || !type.IsValueType) && text.Equals("null", StringComparison.OrdinalIgnoreCase))
            return null;
        var t = underlying ?? type;
        if (t == typeof(string))
            return text;
        if (t == typeof(int))
            return int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);
        if (t == typeof(long))
            return long.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);
        if (t == typeof(double))
            return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (t == typeof(bool))
            return bool.Parse(text);
        if (t == typeof(TimeSpan))
            return ParseDuration(text);
        if (t.IsEnum)
            return Enum.Parse(t, text, ignoreCase: true);
        if (t == typeof(IReadOnlyList<string>) || t == typeof(string[]))
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        throw new ArgumentException($"Unsupported option type {type}.");
    }

    /// <summary><c>250ms</c>, <c>1.5s</c>, <c>2m</c>, <c>1h</c>, or a TimeSpan (<c>00:00:05</c>).</summary>
    public static TimeSpan ParseDuration(string text)
    {
        foreach (var (suffix, unit) in new[] { ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0), ("h", 3_600_000.0) })
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
                return TimeSpan.FromMilliseconds(n * unit);
        }
        if (text.Contains(':', StringComparison.Ordinal))
            return TimeSpan.Parse(text, CultureInfo.InvariantCulture);
        throw new FormatException($"'{text}' is not a duration: use 250ms, 5s, 2m, 1h or hh:mm:ss.");
    }
}
