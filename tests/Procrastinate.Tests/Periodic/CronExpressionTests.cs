namespace Procrastinate.Tests.Periodic;

public sealed class CronExpressionTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero); // a Thursday

    private static string[] Next(string expression, int count, DateTimeOffset? from = null, string? zone = null) =>
        [.. CronExpression.Parse(expression, zone).GetOccurrences(from ?? Start, DateTimeOffset.MaxValue).Take(count)
            .Select(t => t.ToUniversalTime().ToString("yyyy-MM-dd ddd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture))];

    public static TheoryData<string, string[]> Table => new()
    {
        { "* * * * *", ["2026-01-01 Thu 00:01:00", "2026-01-01 Thu 00:02:00", "2026-01-01 Thu 00:03:00"] },
        { "*/15 * * * *", ["2026-01-01 Thu 00:15:00", "2026-01-01 Thu 00:30:00", "2026-01-01 Thu 00:45:00"] },
        { "5 4 * * *", ["2026-01-01 Thu 04:05:00", "2026-01-02 Fri 04:05:00", "2026-01-03 Sat 04:05:00"] },
        { "0 9-11 * * *", ["2026-01-01 Thu 09:00:00", "2026-01-01 Thu 10:00:00", "2026-01-01 Thu 11:00:00"] },
        { "0 0-12/6 * * *", ["2026-01-01 Thu 06:00:00", "2026-01-01 Thu 12:00:00", "2026-01-02 Fri 00:00:00"] },
        { "0 0 1,15 * *", ["2026-01-15 Thu 00:00:00", "2026-02-01 Sun 00:00:00", "2026-02-15 Sun 00:00:00"] },
        { "0 0 * * mon", ["2026-01-05 Mon 00:00:00", "2026-01-12 Mon 00:00:00", "2026-01-19 Mon 00:00:00"] },
        { "0 0 * * MON-wed", ["2026-01-05 Mon 00:00:00", "2026-01-06 Tue 00:00:00", "2026-01-07 Wed 00:00:00"] },
        { "0 0 * * 7", ["2026-01-04 Sun 00:00:00", "2026-01-11 Sun 00:00:00", "2026-01-18 Sun 00:00:00"] },
        { "0 0 * * 0", ["2026-01-04 Sun 00:00:00", "2026-01-11 Sun 00:00:00", "2026-01-18 Sun 00:00:00"] },
        { "0 0 * * 5-7", ["2026-01-02 Fri 00:00:00", "2026-01-03 Sat 00:00:00", "2026-01-04 Sun 00:00:00"] },
        { "0 0 1 jan,Jul *", ["2026-07-01 Wed 00:00:00", "2027-01-01 Fri 00:00:00", "2027-07-01 Thu 00:00:00"] },
        { "0 0 1 FEB-apr/2 *", ["2026-02-01 Sun 00:00:00", "2026-04-01 Wed 00:00:00", "2027-02-01 Mon 00:00:00"] },
        // Day of month and day of week both restricted: either matches (the 13th, or any Friday).
        { "0 0 13 * fri", ["2026-01-02 Fri 00:00:00", "2026-01-09 Fri 00:00:00", "2026-01-13 Tue 00:00:00"] },
        // Seconds are the sixth and last field.
        { "* * * * * */20", ["2026-01-01 Thu 00:00:20", "2026-01-01 Thu 00:00:40", "2026-01-01 Thu 00:01:00"] },
        { "0 12 * * * 30", ["2026-01-01 Thu 12:00:30", "2026-01-02 Fri 12:00:30", "2026-01-03 Sat 12:00:30"] },
        { "@hourly", ["2026-01-01 Thu 01:00:00", "2026-01-01 Thu 02:00:00", "2026-01-01 Thu 03:00:00"] },
        { "@daily", ["2026-01-02 Fri 00:00:00", "2026-01-03 Sat 00:00:00", "2026-01-04 Sun 00:00:00"] },
        { "@weekly", ["2026-01-04 Sun 00:00:00", "2026-01-11 Sun 00:00:00", "2026-01-18 Sun 00:00:00"] },
        { "@monthly", ["2026-02-01 Sun 00:00:00", "2026-03-01 Sun 00:00:00", "2026-04-01 Wed 00:00:00"] },
        { "@yearly", ["2027-01-01 Fri 00:00:00", "2028-01-01 Sat 00:00:00", "2029-01-01 Mon 00:00:00"] },
        { "0 0 29 2 *", ["2028-02-29 Tue 00:00:00", "2032-02-29 Sun 00:00:00", "2036-02-29 Fri 00:00:00"] },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Expressions_give_the_ticks_croniter_gives(string expression, string[] expected) =>
        Assert.Equal(expected, Next(expression, expected.Length));

    [Theory]
    [InlineData("* * * *", "4 fields")]
    [InlineData("* * * * * * *", "7 fields")]
    [InlineData("61 * * * *", "outside 0-59")]
    [InlineData("* 24 * * *", "outside 0-23")]
    [InlineData("* * 0 * *", "outside 1-31")]
    [InlineData("* * * 13 *", "outside 1-12")]
    [InlineData("* * * * 8", "outside 0-7")]
    [InlineData("* * * * * 60", "outside 0-59")]
    [InlineData("* * * foo *", "'foo'")]
    [InlineData("*/0 * * * *", "invalid step")]
    [InlineData("5-1 * * * *", "backwards")]
    [InlineData("* * L * *", "not supported")]
    [InlineData("* * * * 5#2", "not supported")]
    [InlineData("* * 15W * *", "not supported")]
    [InlineData("* * ? * *", "not supported")]
    [InlineData("@reboot", "not supported")]
    [InlineData("1,,2 * * * *", "empty list item")]
    public void A_malformed_expression_is_refused_with_a_message_naming_it(string expression, string reason)
    {
        var e = Assert.Throws<FormatException>(() => CronExpression.Parse(expression));
        Assert.Contains($"'{expression}'", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void An_unknown_time_zone_is_refused_with_a_message_naming_it()
    {
        var e = Assert.Throws<ArgumentException>(() => CronExpression.Parse("* * * * *", "Mars/Olympus_Mons"));
        Assert.Contains("Mars/Olympus_Mons", e.Message);
        Assert.Contains("* * * * *", e.Message);
    }

    [Fact]
    public void Evaluation_is_in_UTC_by_default_and_in_the_given_zone_otherwise()
    {
        Assert.Equal(["2026-01-01 Thu 09:00:00"], Next("0 9 * * *", 1));
        Assert.Equal(["2026-01-01 Thu 08:00:00"], Next("0 9 * * *", 1, zone: "Europe/Paris"));      // UTC+1 in winter
        Assert.Equal(["2026-01-01 Thu 14:00:00"], Next("0 9 * * *", 1, zone: "America/New_York"));  // UTC-5 in winter
    }

    // Spring forward: Paris 2026-03-29 02:00 -> 03:00 (UTC+1 -> UTC+2); New York 2026-03-08 02:00 -> 03:00 (UTC-5 -> UTC-4).
    [Theory]
    [InlineData("Europe/Paris", "2026-03-28T23:00:00Z", "30 2 * * *", new[] { "2026-03-29 Sun 01:00:00", "2026-03-30 Mon 00:30:00" })]
    [InlineData("America/New_York", "2026-03-07T12:00:00Z", "30 2 * * *", new[] { "2026-03-08 Sun 07:00:00", "2026-03-09 Mon 06:30:00" })]
    public void A_time_skipped_by_spring_forward_runs_at_the_first_valid_instant(string zone, string from, string expression, string[] expected) =>
        Assert.Equal(expected, Next(expression, expected.Length, DateTimeOffset.Parse(from, System.Globalization.CultureInfo.InvariantCulture), zone));

    [Theory]
    [InlineData("Europe/Paris", "2026-03-29T00:35:00Z")]      // 01:35 local
    [InlineData("America/New_York", "2026-03-08T06:35:00Z")]  // 01:35 local
    public void Every_tick_inside_the_gap_collapses_into_one_run(string zone, string from)
    {
        // Every 10 minutes: the six ticks of 02:00-02:50 local do not exist; they run once, at 03:00 local.
        var ticks = Next("*/10 * * * *", 8, DateTimeOffset.Parse(from, System.Globalization.CultureInfo.InvariantCulture), zone);
        Assert.Equal(ticks.Length, ticks.Distinct().Count());
        var local = ticks.Select(t => TimeZoneInfo.ConvertTime(DateTimeOffset.Parse(t[..10] + "T" + t[15..] + "Z", System.Globalization.CultureInfo.InvariantCulture),
            TimeZoneInfo.FindSystemTimeZoneById(zone)).ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(["01:40", "01:50", "03:00", "03:10", "03:20", "03:30", "03:40", "03:50"], local);
    }

    // Fall back: Paris 2026-10-25 03:00 -> 02:00 (02:xx happens twice); New York 2026-11-01 02:00 -> 01:00 (01:xx twice).
    [Theory]
    [InlineData("Europe/Paris", "2026-10-24T12:00:00Z", "30 2 * * *", new[] { "2026-10-25 Sun 00:30:00", "2026-10-26 Mon 01:30:00" })]
    [InlineData("America/New_York", "2026-10-31T12:00:00Z", "30 1 * * *", new[] { "2026-11-01 Sun 05:30:00", "2026-11-02 Mon 06:30:00" })]
    public void A_time_repeated_by_fall_back_runs_once(string zone, string from, string expression, string[] expected) =>
        Assert.Equal(expected, Next(expression, expected.Length, DateTimeOffset.Parse(from, System.Globalization.CultureInfo.InvariantCulture), zone));

    [Fact]
    public void An_hourly_schedule_across_fall_back_runs_every_real_hour_once()
    {
        // Paris: 00:00 UTC is 02:00 CEST; 01:00 UTC is 02:00 CET (the repeated hour).
        var ticks = Next("0 * * * *", 4, new DateTimeOffset(2026, 10, 24, 23, 30, 0, TimeSpan.Zero), "Europe/Paris");
        // 01:00 local (23:00Z), 02:00 CEST (00:00Z), the repeated 02:00 CET is skipped, 03:00 CET (02:00Z), 04:00 CET (03:00Z).
        Assert.Equal(["2026-10-25 Sun 00:00:00", "2026-10-25 Sun 02:00:00", "2026-10-25 Sun 03:00:00", "2026-10-25 Sun 04:00:00"], ticks);
    }

    [Fact]
    public void Occurrences_are_strictly_after_the_start()
    {
        var cron = CronExpression.Parse("0 * * * *");
        Assert.Equal(Start.AddHours(1), cron.GetNextOccurrence(Start));
        Assert.Equal(Start, cron.GetNextOccurrence(Start.AddTicks(-1)));
    }
}
