using System.Globalization;

namespace Procrastinate.Benchmarks;

/// <summary>One reading of a process's CPU time and memory, from /proc/&lt;pid&gt;/stat and /proc/&lt;pid&gt;/status.</summary>
internal sealed record ProcessSample(double UserCpuSeconds, double SystemCpuSeconds, long PeakRssKb, long RssKb)
{
    public double CpuSeconds => UserCpuSeconds + SystemCpuSeconds;

    public double PeakRssMb => PeakRssKb / 1024.0;
}

/// <summary>The machine's CPU counters (first line of /proc/stat), in clock ticks summed over all cores.</summary>
internal readonly record struct MachineCpu(long BusyTicks, long TotalTicks)
{
    public static MachineCpu operator -(MachineCpu after, MachineCpu before) =>
        new(after.BusyTicks - before.BusyTicks, after.TotalTicks - before.TotalTicks);

    public double BusySeconds => BusyTicks / ProcStats.ClockTicksPerSecond;

    /// <summary>Busy share of all cores, 0..1.</summary>
    public double Utilization => TotalTicks == 0 ? 0 : (double)BusyTicks / TotalTicks;
}

/// <summary>Reads process and machine figures from /proc (Linux only).</summary>
internal static class ProcStats
{
    /// <summary>USER_HZ: the unit of the CPU times in /proc (100 on every Linux architecture .NET runs on).</summary>
    public const double ClockTicksPerSecond = 100;

    /// <summary>Reads a live process; null once it has exited (or when /proc is unavailable).</summary>
    public static ProcessSample? TryReadProcess(int pid) => TryRead($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}");

    public static ProcessSample ReadSelf() =>
        TryRead("/proc/self") ?? throw new InvalidOperationException("Cannot read /proc/self (the harness needs Linux).");

    private static ProcessSample? TryRead(string dir)
    {
        try
        {
            var fields = StatFields(File.ReadAllText(dir + "/stat"));
            // fields[0] is field 3 of proc(5) (state): utime is field 14, stime field 15.
            var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            long hwm = 0, rss = 0;
            foreach (var line in File.ReadLines(dir + "/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    hwm = ParseKb(line);
                else if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = ParseKb(line);
            }
            return new ProcessSample(utime / ClockTicksPerSecond, stime / ClockTicksPerSecond, hwm, rss);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The parent process id of a process (field 4 of /proc/&lt;pid&gt;/stat); null when unreadable.</summary>
    public static int? TryReadParentPid(int pid)
    {
        try
        {
            return int.Parse(StatFields(File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"))[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// CPU seconds used so far by a PostgreSQL cluster: the postmaster's own time, the time of its
    /// exited (reaped) backends (cutime + cstime), and the time of its live children. Differences of
    /// two readings give the server's CPU over an interval, backends that came and went included.
    /// </summary>
    public static double? TryReadClusterCpu(int postmasterPid)
    {
        try
        {
            var f = StatFields(File.ReadAllText($"/proc/{postmasterPid.ToString(CultureInfo.InvariantCulture)}/stat"));
            long ticks = 0;
            for (var i = 11; i <= 14; i++) // utime, stime, cutime, cstime
                ticks += long.Parse(f[i], CultureInfo.InvariantCulture);
            var parent = postmasterPid.ToString(CultureInfo.InvariantCulture);
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                var name = Path.GetFileName(dir);
                if (name.Length == 0 || !char.IsAsciiDigit(name[0]))
                    continue;
                try
                {
                    var c = StatFields(File.ReadAllText(dir + "/stat"));
                    if (c[1] == parent)
                        ticks += long.Parse(c[11], CultureInfo.InvariantCulture) + long.Parse(c[12], CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // exited meanwhile
                }
            }
            return ticks / ClockTicksPerSecond;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Busy share of all cores over <paramref name="interval"/>, 0..1.</summary>
    public static async Task<double> SampleMachineBusyAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        var before = ReadMachineCpu();
        await Task.Delay(interval, cancellationToken);
        return (ReadMachineCpu() - before).Utilization;
    }

    /// <summary>The parent process id of this process (field 4 of /proc/self/stat).</summary>
    public static int ReadParentPid() =>
        int.Parse(StatFields(File.ReadAllText("/proc/self/stat"))[1], CultureInfo.InvariantCulture);

    public static MachineCpu ReadMachineCpu()
    {
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        var first = File.ReadLines("/proc/stat").First();
        var v = first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var idle = v[3] + v[4];
        var busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        return new MachineCpu(busy, busy + idle);
    }

    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', parts.Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    private static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    private static long ParseKb(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}
