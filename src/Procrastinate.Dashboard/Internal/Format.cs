using System.Globalization;
using System.Text.Json;

namespace Procrastinate.Dashboard.Internal;

/// <summary>How values look on the pages.</summary>
internal static class Format
{
    public static readonly JobStatus[] Statuses =
        [JobStatus.Todo, JobStatus.Doing, JobStatus.Succeeded, JobStatus.Failed, JobStatus.Cancelled, JobStatus.Aborted];

    public static string Label(JobStatus status) => status.ToDbString();

    public static Html StatusBadge(JobStatus status) =>
        Html.Of($"""<span class="badge s-{status.ToDbString()}">{status.ToDbString()}</span>""");

    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Clock(DateTimeOffset at) => at.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Absolute(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    /// <summary>A time as "3 min ago" or "in 5 s", with the absolute time in its title and datetime.</summary>
    public static Html Time(DateTimeOffset? at, DateTimeOffset now)
    {
        if (at is not { } value)
            return Html.Raw("""<span class="muted">—</span>""");
        var iso = value.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
        return Html.Of($"""<time datetime="{iso}" title="{Absolute(value)}">{Relative(value, now)}</time>""");
    }

    public static string Relative(DateTimeOffset at, DateTimeOffset now)
    {
        var delta = now - at;
        if (delta.Duration() < TimeSpan.FromSeconds(1))
            return "now";
        return delta > TimeSpan.Zero ? Approximate(delta) + " ago" : "in " + Approximate(-delta);
    }

    /// <summary>A duration to the nearest unit that matters: "12 s", "47 min", "3 h 5 min", "2 d 4 h".</summary>
    public static string Approximate(TimeSpan span)
    {
        var c = CultureInfo.InvariantCulture;
        if (span < TimeSpan.FromMinutes(1))
            return string.Create(c, $"{Math.Max(1, (int)span.TotalSeconds)} s");
        if (span < TimeSpan.FromHours(1))
            return string.Create(c, $"{(int)span.TotalMinutes} min");
        return Duration(span);
    }

    public static string Duration(TimeSpan span)
    {
        var c = CultureInfo.InvariantCulture;
        if (span < TimeSpan.FromSeconds(1))
            return string.Create(c, $"{span.TotalMilliseconds:0} ms");
        if (span < TimeSpan.FromMinutes(1))
            return string.Create(c, $"{span.TotalSeconds:0.#} s");
        if (span < TimeSpan.FromHours(1))
            return string.Create(c, $"{(int)span.TotalMinutes} min {span.Seconds} s");
        if (span < TimeSpan.FromDays(1))
            return string.Create(c, $"{(int)span.TotalHours} h {span.Minutes} min");
        return string.Create(c, $"{(int)span.TotalDays} d {span.Hours} h");
    }

    /// <summary>The arguments on one line, cut to <paramref name="max"/> characters.</summary>
    public static string ArgsPreview(string argsJson, int max = 90)
    {
        var compact = argsJson;
        try
        {
            using var doc = JsonDocument.Parse(argsJson);
            compact = JsonSerializer.Serialize(doc.RootElement, CompactJson);
        }
        catch (JsonException)
        {
        }
        return compact.Length <= max ? compact : compact[..(max - 1)] + "…";
    }

    /// <summary>The arguments indented, for reading.</summary>
    public static string ArgsPretty(string argsJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(argsJson);
            return JsonSerializer.Serialize(doc.RootElement, PrettyJson);
        }
        catch (JsonException)
        {
            return argsJson;
        }
    }

    private static readonly JsonSerializerOptions CompactJson = new()
    {
        // Shown as encoded text: keep the characters as they are rather than \u escapes.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonSerializerOptions PrettyJson = new()
    {
        WriteIndented = true,
        // Shown as text in an encoded <pre>: keep the characters as they are rather than \u escapes.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Html Optional(string? value) =>
        value is null ? Html.Raw("""<span class="muted">—</span>""") : Html.Of($"<code>{value}</code>");
}
