using System.Text;
using System.Text.RegularExpressions;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>One ERROR, FATAL, PANIC or WARNING record of the server log, with its STATEMENT when logged.</summary>
public sealed record ServerLogEntry(string Timestamp, int Pid, string? User, string? Database, string? Application, string Severity, string Message)
{
    public string? Statement { get; set; }

    public string Text => $"{Severity}:  {Message}";

    public override string ToString() =>
        $"{Timestamp} [{Pid}] {User}@{Database} {Application}: {Severity}:  {Message}" + (Statement is null ? "" : $" (statement: {Statement})");
}

/// <summary>
/// Reads the dedicated cluster's server log (line prefix <c>'%m [%p] %q%u@%d %a: '</c>) from a
/// mark, and checks that every problem record is on the scenario's allow-list.
/// </summary>
public static partial class ServerLog
{
    private static readonly string[] Problems = ["ERROR", "FATAL", "PANIC", "WARNING"];

    [GeneratedRegex(@"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+) \[(\d+)\] (?:(\S*)@(\S*) (.*?): )?(LOG|ERROR|FATAL|PANIC|WARNING|DETAIL|HINT|CONTEXT|STATEMENT|NOTICE|INFO|DEBUG\d?):  (.*)$")]
    private static partial Regex Line();

    /// <summary>Errors every scenario may see.</summary>
    public static readonly Regex[] Always =
    [
        // A worker that stops cancels its in-flight fetch (Npgsql sends a cancel request).
        new(@"^ERROR:  canceling statement due to user request$"),
    ];

    /// <summary>Errors from clients that were killed or paused (SIGKILL, SIGSTOP, crashes).</summary>
    public static readonly Regex[] KilledClients =
    [
        new(@"^FATAL:  connection to client lost$"),
    ];

    /// <summary>Errors from <c>pg_terminate_backend</c> and from a fast shutdown.</summary>
    public static readonly Regex[] TerminatedBackends =
    [
        // With the position in the statement when the termination came during its parse analysis.
        new(@"^FATAL:  terminating connection due to administrator command( at character \d+)?$"),
        // The suite's own terminator, when a backend it listed has exited meanwhile.
        new(@"^WARNING:  PID \d+ is not a PostgreSQL backend process$"),
    ];

    /// <summary>Errors while the server stops and starts again.</summary>
    public static readonly Regex[] Restart =
    [
        new(@"^FATAL:  terminating connection due to administrator command( at character \d+)?$"),
        new(@"^FATAL:  the database system is (shutting down|starting up|not yet accepting connections)$"),
        new(@"^FATAL:  the database system is not accepting connections$"),
        // A connection attempt that the shutdown interrupted.
        new(@"^FATAL:  canceling authentication due to timeout$"),
    ];

    /// <summary>An immediate shutdown (a crash) and the recovery after it.</summary>
    public static readonly Regex[] Crash =
    [
        .. Restart,
        new(@"^FATAL:  terminating connection due to immediate shutdown command$"),
        new(@"^WARNING:  terminating connection because of crash of another server process$"),
        // Recovery replaying the drop of an earlier scenario's database, whose files are gone.
        new(@"^WARNING:  could not open directory ""base/\d+"": No such file or directory$"),
        new(@"^WARNING:  some useless files may be left behind in old database directory ""base/\d+""$"),
    ];

    public static long Mark() => File.Exists(ReliabilityCluster.ServerLogPath) ? new FileInfo(ReliabilityCluster.ServerLogPath).Length : 0;

    /// <summary>The problem records written since <paramref name="mark"/>.</summary>
    public static List<ServerLogEntry> ReadSince(long mark)
    {
        var entries = new List<ServerLogEntry>();
        if (!File.Exists(ReliabilityCluster.ServerLogPath))
            return entries;
        string text;
        using (var stream = new FileStream(ReliabilityCluster.ServerLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            stream.Seek(Math.Min(mark, stream.Length), SeekOrigin.Begin);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            text = reader.ReadToEnd();
        }
        var lastByPid = new Dictionary<int, ServerLogEntry>();
        foreach (var line in text.Split('\n'))
        {
            var m = Line().Match(line);
            if (!m.Success)
                continue;
            var pid = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            var severity = m.Groups[6].Value;
            if (severity == "STATEMENT" && lastByPid.TryGetValue(pid, out var previous))
            {
                previous.Statement ??= m.Groups[7].Value;
                continue;
            }
            if (!Problems.Contains(severity))
                continue;
            var entry = new ServerLogEntry(m.Groups[1].Value, pid,
                m.Groups[3].Success ? m.Groups[3].Value : null, m.Groups[4].Success ? m.Groups[4].Value : null,
                m.Groups[5].Success ? m.Groups[5].Value : null, severity, m.Groups[7].Value);
            entries.Add(entry);
            lastByPid[pid] = entry;
        }
        return entries;
    }

    /// <summary>
    /// The problem records since <paramref name="mark"/> that concern <paramref name="database"/> (or
    /// no database: the postmaster and background processes) and match no allowed pattern.
    /// </summary>
    public static List<ServerLogEntry> Unexpected(long mark, string database, IEnumerable<Regex> allowed)
    {
        var patterns = Always.Concat(allowed).ToList();
        return [.. ReadSince(mark)
            .Where(e => e.Database is null or "" || e.Database == database)
            .Where(e => !patterns.Any(p => p.IsMatch(e.Text)))];
    }
}
