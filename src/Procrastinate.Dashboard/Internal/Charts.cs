using System.Globalization;

namespace Procrastinate.Dashboard.Internal;

/// <summary>Charts drawn on the server as inline SVG: no script, no library, nothing fetched.</summary>
internal static class Charts
{
    private const double Width = 760, Height = 200, Left = 40, Right = 8, Top = 10, Bottom = 24;

    /// <summary>Stacked bars of succeeded and failed jobs per bucket, and a line of deferred jobs.</summary>
    public static Html Throughput(Throughput data)
    {
        var buckets = data.Buckets;
        if (buckets.Count == 0)
            return Html.Empty;
        var max = Math.Max(1, buckets.Max(b => Math.Max(b.Succeeded + b.Failed, b.Deferred)));
        var scaleMax = NiceCeiling(max);
        var plotWidth = Width - Left - Right;
        var plotHeight = Height - Top - Bottom;
        var step = plotWidth / buckets.Count;
        var barWidth = Math.Max(1, step * 0.72);

        double Y(long value) => Top + plotHeight - value * plotHeight / scaleMax;

        var grid = new List<Html>();
        for (var i = 0; i <= 4; i++)
        {
            var value = scaleMax * i / 4;
            var y = N(Y(value));
            grid.Add(Html.Of($"""<line class="grid" x1="{N(Left)}" x2="{N(Width - Right)}" y1="{y}" y2="{y}"/><text class="axis" x="{N(Left - 6)}" y="{y}" dy="0.32em" text-anchor="end">{Compact(value)}</text>"""));
        }

        var bars = new List<Html>();
        var points = new List<string>();
        var labelEvery = Math.Max(1, buckets.Count / 6);
        var labels = new List<Html>();
        for (var i = 0; i < buckets.Count; i++)
        {
            var b = buckets[i];
            var x = Left + i * step + (step - barWidth) / 2;
            var okTop = Y(b.Succeeded);
            var failTop = Y(b.Succeeded + b.Failed);
            var label = BucketLabel(b.Start, data.BucketSize);
            var title = $"{label} UTC: {b.Succeeded} succeeded, {b.Failed} failed, {b.Deferred} deferred";
            bars.Add(Html.Of($"""
                <g><title>{title}</title><rect class="hit" x="{N(Left + i * step)}" y="{N(Top)}" width="{N(step)}" height="{N(plotHeight)}"/><rect class="bar-ok" x="{N(x)}" y="{N(okTop)}" width="{N(barWidth)}" height="{N(Top + plotHeight - okTop)}"/><rect class="bar-fail" x="{N(x)}" y="{N(failTop)}" width="{N(barWidth)}" height="{N(okTop - failTop)}"/></g>
                """));
            points.Add($"{N(Left + i * step + step / 2)},{N(Y(b.Deferred))}");
            if (i % labelEvery == 0)
                labels.Add(Html.Of($"""<text class="axis" x="{N(Left + i * step + step / 2)}" y="{N(Height - 6)}" text-anchor="middle">{label}</text>"""));
        }
        var succeeded = buckets.Sum(b => b.Succeeded);
        var failed = buckets.Sum(b => b.Failed);
        var deferred = buckets.Sum(b => b.Deferred);
        var description = $"{succeeded} succeeded, {failed} failed and {deferred} deferred jobs over the period";
        return Html.Of($"""
            <svg class="chart" viewBox="0 0 {N(Width)} {N(Height)}" role="img" aria-label="{description}">
            {grid}
            {bars}
            <polyline class="line-deferred" points="{string.Join(' ', points)}"/>
            {labels}
            <line class="baseline" x1="{N(Left)}" x2="{N(Width - Right)}" y1="{N(Top + plotHeight)}" y2="{N(Top + plotHeight)}"/>
            </svg>
            """);
    }

    /// <summary>A thin horizontal bar split by status, for a row of counts.</summary>
    public static Html Distribution(JobCounts counts)
    {
        if (counts.JobsCount == 0)
            return Html.Raw("""<svg class="dist" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true"><rect class="empty" width="100" height="8"/></svg>""");
        var parts = new List<Html>();
        double x = 0;
        foreach (var (status, count) in Counts(counts))
        {
            if (count == 0)
                continue;
            var width = count * 100.0 / counts.JobsCount;
            parts.Add(Html.Of($"""<rect class="f-{status.ToDbString()}" x="{N(x)}" width="{N(width)}" height="8"><title>{status.ToDbString()}: {Format.Number(count)}</title></rect>"""));
            x += width;
        }
        return Html.Of($"""<svg class="dist" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">{parts}</svg>""");
    }

    public static IEnumerable<(JobStatus Status, long Count)> Counts(JobCounts c) =>
    [
        (JobStatus.Todo, c.Todo), (JobStatus.Doing, c.Doing), (JobStatus.Succeeded, c.Succeeded),
        (JobStatus.Failed, c.Failed), (JobStatus.Cancelled, c.Cancelled), (JobStatus.Aborted, c.Aborted),
    ];

    private static string BucketLabel(DateTimeOffset start, TimeSpan bucket) =>
        start.UtcDateTime.ToString(bucket >= TimeSpan.FromDays(1) ? "MM-dd" : "HH:mm", CultureInfo.InvariantCulture);

    private static long NiceCeiling(long value)
    {
        // 1, 2, 4, 5, 8 or 10 times a power of ten, at least 4 so that quarter grid lines are whole numbers.
        if (value <= 4)
            return 4;
        var magnitude = (long)Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var factor in new[] { 1, 2, 4, 5, 8, 10 })
            if (factor * magnitude >= value && factor * magnitude % 4 == 0)
                return factor * magnitude;
        return 10 * magnitude;
    }

    private static string Compact(long value) => value >= 10_000
        ? (value / 1000.0).ToString("0.#", CultureInfo.InvariantCulture) + "k"
        : value.ToString(CultureInfo.InvariantCulture);

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
