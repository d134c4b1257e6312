using System.Globalization;
using NCrontab;

namespace Procrastinate;

/// <summary>
/// A cron schedule in Procrastinate's dialect (croniter's): 5 fields (minute, hour, day of
/// month, month, day of week), or 6 with <b>seconds as the last field</b>; names of months and
/// days in any case; lists, ranges and steps; day of week 0-7 where 0 and 7 are Sunday; when
/// both day of month and day of week are restricted, a day matches if either does (Vixie cron);
/// the macros <c>@yearly</c>, <c>@annually</c>, <c>@monthly</c>, <c>@weekly</c>, <c>@daily</c>,
/// <c>@midnight</c> and <c>@hourly</c>. <c>L</c>, <c>W</c>, <c>#</c> and <c>?</c> are refused.
/// </summary>
/// <remarks>
/// Evaluated in a time zone (UTC by default). Daylight-saving rules: a time skipped by a
/// spring-forward runs at the first valid instant after the gap (once, however many ticks fell
/// in the gap); a time repeated by a fall-back runs once, at its first occurrence.
/// Date arithmetic is done by NCrontab on the expanded fields.
/// </remarks>
public sealed class CronExpression
{
    private static readonly string[] MonthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    private static readonly string[] DayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

    private readonly CrontabSchedule[] _schedules;

    private CronExpression(string expression, TimeZoneInfo timeZone, CrontabSchedule[] schedules, bool hasSeconds)
    {
        Expression = expression;
        TimeZone = timeZone;
        _schedules = schedules;
        HasSeconds = hasSeconds;
    }

    /// <summary>The expression as given.</summary>
    public string Expression { get; }

    /// <summary>The zone the expression is evaluated in.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>True for the 6-field form (seconds last).</summary>
    public bool HasSeconds { get; }

    /// <summary>Parses an expression, evaluated in <paramref name="timeZone"/> (an IANA or Windows id; UTC when null).</summary>
    /// <exception cref="FormatException">The expression is malformed; the message names it and the field at fault.</exception>
    /// <exception cref="ArgumentException">The time zone is unknown.</exception>
    public static CronExpression Parse(string expression, string? timeZone = null)
    {
        ArgumentNullException.ThrowIfNull(expression);
        TimeZoneInfo zone;
        if (timeZone is null)
            zone = TimeZoneInfo.Utc;
        else
        {
            try
            {
                zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                throw new ArgumentException($"Unknown time zone '{timeZone}' for cron expression '{expression}'.", nameof(timeZone), e);
            }
        }
        return Parse(expression, zone);
    }

    /// <inheritdoc cref="Parse(string, string?)"/>
    public static CronExpression Parse(string expression, TimeZoneInfo timeZone)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(timeZone);
        var text = expression.Trim();
        var macro = text.ToLowerInvariant() switch
        {
            "@yearly" or "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" or "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ when text.StartsWith('@') => throw Error(expression, $"the macro '{text}' is not supported"),
            _ => null,
        };
        var fields = (macro ?? text).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length is not (5 or 6))
            throw Error(expression, $"it has {fields.Length} fields; expected 5 (minute hour day month weekday) or 6 (the same, then seconds)");

        var hasSeconds = fields.Length == 6;
        var minute = Expand(expression, fields[0], "minute", 0, 59, null);
        var hour = Expand(expression, fields[1], "hour", 0, 23, null);
        var day = Expand(expression, fields[2], "day of month", 1, 31, null);
        var month = Expand(expression, fields[3], "month", 1, 12, MonthNames, nameBase: 1);
        var weekday = Expand(expression, fields[4], "day of week", 0, 7, DayNames, nameBase: 0);
        var second = hasSeconds ? Expand(expression, fields[5], "second", 0, 59, null) : [0];
        weekday = [.. weekday.Select(d => d == 7 ? 0 : d).Distinct().Order()];

        var dayRestricted = day.Count < 31;
        var weekdayRestricted = weekday.Count < 7;
        var schedules = dayRestricted && weekdayRestricted
            ? new[] { Build(second, minute, hour, day, month, null), Build(second, minute, hour, null, month, weekday) }
            : [Build(second, minute, hour, dayRestricted ? day : null, month, weekdayRestricted ? weekday : null)];
        return new CronExpression(expression, timeZone, schedules, hasSeconds);
    }

    /// <summary>Tries to parse; returns the error message otherwise.</summary>
    public static bool TryParse(string expression, string? timeZone, out CronExpression? cron, out string? error)
    {
        try
        {
            cron = Parse(expression, timeZone);
            error = null;
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            cron = null;
            error = e.Message;
            return false;
        }
    }

    /// <summary>The first tick strictly after <paramref name="after"/>, as an instant.</summary>
    public DateTimeOffset GetNextOccurrence(DateTimeOffset after)
    {
        // Walk wall-clock times from the wall time of 'after'. Earlier wall times never map to a
        // later instant: a repeated hour maps to its first pass, a skipped time to the gap's end.
        var cursor = TimeZoneInfo.ConvertTime(after, TimeZone).DateTime;
        for (var guard = 0; guard < 100_000; guard++)
        {
            var local = NextLocal(cursor);
            var instant = ToInstant(local);
            if (instant > after)
                return instant;
            cursor = local;
        }
        throw new InvalidOperationException($"No occurrence of '{Expression}' found after {after:O}.");
    }

    /// <summary>The ticks in (<paramref name="after"/>, <paramref name="until"/>], in increasing order.</summary>
    public IEnumerable<DateTimeOffset> GetOccurrences(DateTimeOffset after, DateTimeOffset until)
    {
        var current = after;
        while (true)
        {
            var next = GetNextOccurrence(current);
            if (next > until)
                yield break;
            yield return next;
            current = next;
        }
    }

    /// <inheritdoc />
    public override string ToString() => TimeZone == TimeZoneInfo.Utc ? Expression : $"{Expression} ({TimeZone.Id})";

    private DateTime NextLocal(DateTime after)
    {
        var best = DateTime.MaxValue;
        foreach (var schedule in _schedules)
        {
            var next = schedule.GetNextOccurrence(after, DateTime.MaxValue.AddYears(-1));
            if (next < best)
                best = next;
        }
        return best;
    }

    private DateTimeOffset ToInstant(DateTime local)
    {
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        if (TimeZone.IsInvalidTime(local))
        {
            // Skipped by a spring-forward: runs at the first valid minute, the end of the gap.
            var probe = new DateTime(local.Year, local.Month, local.Day, local.Hour, local.Minute, 0, DateTimeKind.Unspecified);
            while (TimeZone.IsInvalidTime(probe))
                probe = probe.AddMinutes(1);
            return new DateTimeOffset(probe, TimeZone.GetUtcOffset(probe));
        }
        if (TimeZone.IsAmbiguousTime(local))
        {
            // Repeated by a fall-back: its first occurrence, under the larger (summer) offset.
            var offset = TimeZone.GetAmbiguousTimeOffsets(local).Max();
            return new DateTimeOffset(local, offset);
        }
        return new DateTimeOffset(local, TimeZone.GetUtcOffset(local));
    }

    private static CrontabSchedule Build(List<int> second, List<int> minute, List<int> hour, List<int>? day, List<int> month, List<int>? weekday)
    {
        static string Join(List<int>? values) => values is null ? "*" : string.Join(',', values);
        var text = $"{Join(second)} {Join(minute)} {Join(hour)} {Join(day)} {Join(month)} {Join(weekday)}";
        return CrontabSchedule.Parse(text, new CrontabSchedule.ParseOptions { IncludingSeconds = true });
    }

    private static List<int> Expand(string expression, string field, string name, int min, int max, string[]? names, int nameBase = 0)
    {
        var values = new SortedSet<int>();
        foreach (var part in field.Split(','))
        {
            if (part.Length == 0)
                throw Error(expression, $"the {name} field '{field}' has an empty list item");
            if (part.IndexOfAny(['L', 'l', 'W', 'w', '#', '?']) >= 0 && !IsName(part, names))
                throw Error(expression, $"the {name} field '{field}' uses L, W, # or ?, which are not supported");
            var step = 1;
            var range = part;
            var slash = part.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0)
            {
                range = part[..slash];
                if (!int.TryParse(part[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1)
                    throw Error(expression, $"the {name} field '{field}' has an invalid step '{part[(slash + 1)..]}'");
            }
            int low, high;
            if (range == "*")
            {
                (low, high) = (min, max);
            }
            else
            {
                var dash = range.IndexOf('-', StringComparison.Ordinal);
                low = Value(range[..(dash < 0 ? range.Length : dash)]);
                high = dash < 0 ? (slash >= 0 ? max : low) : Value(range[(dash + 1)..]);
                if (high < low)
                    throw Error(expression, $"the {name} field '{field}' has a range '{range}' that goes backwards");
            }
            for (var v = low; v <= high; v += step)
                values.Add(v);
        }
        return [.. values];

        int Value(string token)
        {
            if (int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                if (n < min || n > max)
                    throw Error(expression, $"the {name} field '{field}' has {n}, outside {min}-{max}");
                return n;
            }
            if (names is not null)
            {
                var index = Array.IndexOf(names, token.ToLowerInvariant());
                if (index >= 0)
                    return index + nameBase;
            }
            throw Error(expression, $"the {name} field '{field}' has '{token}', which is not a number{(names is null ? "" : " or a name")}");
        }
    }

    private static bool IsName(string part, string[]? names) =>
        names is not null && part.Split('-', '/').All(t => int.TryParse(t, out _) || Array.IndexOf(names, t.ToLowerInvariant()) >= 0);

    private static FormatException Error(string expression, string reason) =>
        new($"Invalid cron expression '{expression}': {reason}.");
}
