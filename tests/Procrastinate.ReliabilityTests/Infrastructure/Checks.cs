using System.Text;
using System.Text.RegularExpressions;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>One execution of a job, from the ledger the job writes itself.</summary>
public sealed record Run(Guid RunId, long JobId, int Pid, int Attempt, DateTime StartedAt, DateTime? EndedAt, string? Outcome);

/// <summary>
/// Workers presumed dead: killed or crashed processes (every run of theirs), or paused ones
/// (runs started before the pause). A run of theirs may be followed by another run of the same
/// job: that is the at-least-once guarantee. Any other repeated run is a violation.
/// </summary>
public sealed class PresumedDead
{
    private readonly Dictionary<int, DateTime?> _pids = [];

    public void Killed(int pid) => _pids[pid] = null;

    public void Paused(int pid, DateTime at) => _pids[pid] = at;

    /// <summary>
    /// The server crashed between <paramref name="from"/> and <paramref name="to"/> (the
    /// database's clock, as the ledger's): with WorkerOptions.DurableClaims false, a claim not yet flushed when it
    /// crashed was undone, so the runs that started in that window may run again.
    /// </summary>
    public void ServerCrashed(DateTime from, DateTime to) => _crashes.Add((from, to));

    private readonly List<(DateTime From, DateTime To)> _crashes = [];

    public int Count => _pids.Count;

    public IReadOnlyCollection<int> Pids => _pids.Keys;

    public bool Covers(Run run) =>
        _pids.TryGetValue(run.Pid, out var since) && (since is null || run.StartedAt < since)
        || _crashes.Any(c => run.StartedAt >= c.From && run.StartedAt <= c.To);
}

/// <summary>What the database says after a scenario: the checks every scenario makes.</summary>
public sealed class Verdict
{
    public long Jobs { get; init; }
    public Dictionary<string, long> ByStatus { get; init; } = [];
    public long Lost { get; init; }
    public long Doing { get; init; }
    public long Runs { get; init; }
    public long ExtraRuns { get; init; }
    public long JobsWithExtraRuns { get; init; }
    public long ExtraRunsAfterKill { get; init; }
    public long ExtraRunsAfterFailure { get; init; }
    public List<string> UnjustifiedRuns { get; init; } = [];
    public List<string> Overlaps { get; init; } = [];
    public List<string> Anomalies { get; init; } = [];
    public List<ServerLogEntry> LogProblems { get; init; } = [];

    public long Status(string status) => ByStatus.GetValueOrDefault(status);

    public IEnumerable<string> Violations()
    {
        if (Lost > 0)
            yield return $"{Lost} job(s) not in a final status ({string.Join(", ", ByStatus.Select(p => $"{p.Key} {p.Value}"))})";
        if (Doing > 0)
            yield return $"{Doing} job(s) left 'doing'";
        foreach (var u in UnjustifiedRuns.Take(20))
            yield return "unjustified extra run: " + u;
        foreach (var o in Overlaps.Take(20))
            yield return "overlap: " + o;
        foreach (var a in Anomalies.Take(20))
            yield return "anomaly: " + a;
        foreach (var l in LogProblems.Take(20))
            yield return "server log: " + l;
    }

    public void AssertClean()
    {
        var violations = Violations().ToList();
        if (violations.Count > 0)
        {
            var text = new StringBuilder($"{violations.Count} violation(s) (unjustified runs {UnjustifiedRuns.Count}, overlaps {Overlaps.Count}, log problems {LogProblems.Count}):\n");
            foreach (var v in violations)
                text.AppendLine("  " + v);
            Assert.Fail(text.ToString());
        }
    }

    public Dictionary<string, object?> Figures() => new()
    {
        ["jobs"] = Jobs,
        ["by_status"] = ByStatus,
        ["lost"] = Lost,
        ["left_doing"] = Doing,
        ["runs"] = Runs,
        ["extra_runs"] = ExtraRuns,
        ["jobs_with_extra_runs"] = JobsWithExtraRuns,
        ["extra_runs_after_kill_or_pause"] = ExtraRunsAfterKill,
        ["extra_runs_after_failure_or_abort"] = ExtraRunsAfterFailure,
        ["unjustified_extra_runs"] = UnjustifiedRuns.Count,
        ["overlaps"] = Overlaps.Count,
        ["anomalies"] = Anomalies.Count,
        ["unexpected_server_log_records"] = LogProblems.Count,
    };
}

public static class Checks
{
    private static readonly string[] Final = ["succeeded", "failed", "cancelled", "aborted"];

    public static async Task<List<Run>> RunsAsync(ScenarioDb db) =>
        [.. (await db.RowsAsync("SELECT run_id, job_id, pid, attempt, started_at, ended_at, outcome FROM ledger ORDER BY started_at"))
            .Select(r => new Run((Guid)r[0]!, (long)r[1]!, (int)r[2]!, (int)r[3]!, (DateTime)r[4]!, (DateTime?)r[5], (string?)r[6]))];

    /// <summary>
    /// Reads jobs, runs and events and checks: every job final, none 'doing', every repeated run
    /// justified (its earlier run was in a worker presumed dead, or failed/aborted and was retried),
    /// no two runs of one job or of one lock overlapping, and no unexpected server-log record.
    /// </summary>
    public static async Task<Verdict> CollectAsync(ScenarioDb db, PresumedDead presumedDead, IEnumerable<Regex> allowedLog)
    {
        var jobs = (await db.RowsAsync("SELECT id, status::text, lock, task_name FROM procrastinate_jobs"))
            .ToDictionary(r => (long)r[0]!, r => (Status: (string)r[1]!, Lock: (string?)r[2], Task: (string)r[3]!));
        var runs = await RunsAsync(db);
        // When a job left 'doing' (rescue, retry, outcome): ends a run whose process died or was paused.
        var leaves = (await db.RowsAsync(
                "SELECT job_id, at FROM procrastinate_events WHERE type IN ('deferred_for_retry', 'failed', 'succeeded', 'aborted') ORDER BY at"))
            .GroupBy(r => (long)r[0]!)
            .ToDictionary(g => g.Key, g => g.Select(r => (DateTime)r[1]!).ToList());

        var byStatus = jobs.Values.GroupBy(j => j.Status).ToDictionary(g => g.Key, g => (long)g.Count());
        var unjustified = new List<string>();
        var anomalies = new List<string>();
        long extra = 0, jobsWithExtra = 0, afterKill = 0, afterFailure = 0;
        var runsByJob = runs.GroupBy(r => r.JobId).ToDictionary(g => g.Key, g => g.OrderBy(r => r.StartedAt).ToList());
        foreach (var (jobId, list) in runsByJob)
        {
            if (!jobs.ContainsKey(jobId))
                anomalies.Add($"ledger run for job {jobId}, which does not exist");
            if (list.Count > 1)
            {
                jobsWithExtra++;
                extra += list.Count - 1;
            }
            for (var i = 0; i < list.Count - 1; i++)
            {
                var r = list[i];
                if (presumedDead.Covers(r))
                    afterKill++;
                else if (r.Outcome is "throw" or "aborted")
                    afterFailure++;
                else
                    unjustified.Add($"job {jobId}: run {i + 1}/{list.Count} by pid {r.Pid} at {r.StartedAt:HH:mm:ss.fff} (attempt {r.Attempt}, outcome {r.Outcome ?? "none"}) was followed by a run by pid {list[i + 1].Pid} at {list[i + 1].StartedAt:HH:mm:ss.fff}; pid {r.Pid} was not killed");
            }
        }
        foreach (var (id, job) in jobs)
            if (job.Status == "succeeded" && !runsByJob.ContainsKey(id) && job.Task.StartsWith("ledger", StringComparison.Ordinal))
                anomalies.Add($"job {id} succeeded without a ledger run");

        DateTime EffectiveEnd(Run r)
        {
            var left = leaves.TryGetValue(r.JobId, out var l) ? l.FirstOrDefault(at => at >= r.StartedAt) : default;
            DateTime? leftAt = left == default ? null : left;
            if (presumedDead.Covers(r))
            {
                // Presumed dead: the database held the job (and its lock) until the rescue.
                var end = r.EndedAt ?? DateTime.MaxValue;
                return leftAt is { } at && at < end ? at : end;
            }
            return r.EndedAt ?? leftAt ?? DateTime.MaxValue;
        }

        var overlaps = new List<string>();
        void Check(IEnumerable<Run> group, string what)
        {
            var sorted = group.Select(r => (Run: r, End: EffectiveEnd(r))).OrderBy(x => x.Run.StartedAt).ToList();
            for (var i = 0; i < sorted.Count; i++)
                for (var j = i + 1; j < sorted.Count && sorted[j].Run.StartedAt < sorted[i].End; j++)
                    overlaps.Add($"{what}: job {sorted[i].Run.JobId} (pid {sorted[i].Run.Pid}, {sorted[i].Run.StartedAt:HH:mm:ss.fff}-{sorted[i].End:HH:mm:ss.fff}) and job {sorted[j].Run.JobId} (pid {sorted[j].Run.Pid}, from {sorted[j].Run.StartedAt:HH:mm:ss.fff})");
        }
        foreach (var (jobId, list) in runsByJob)
            if (list.Count > 1)
                Check(list, $"two runs of job {jobId}");
        foreach (var group in runs.Where(r => jobs.TryGetValue(r.JobId, out var j) && j.Lock is not null).GroupBy(r => jobs[r.JobId].Lock!))
            Check(group, $"lock '{group.Key}'");

        return new Verdict
        {
            Jobs = jobs.Count,
            ByStatus = byStatus,
            Lost = jobs.Values.Count(j => !Final.Contains(j.Status)),
            Doing = byStatus.GetValueOrDefault("doing"),
            Runs = runs.Count,
            ExtraRuns = extra,
            JobsWithExtraRuns = jobsWithExtra,
            ExtraRunsAfterKill = afterKill,
            ExtraRunsAfterFailure = afterFailure,
            UnjustifiedRuns = unjustified,
            Overlaps = [.. overlaps.Distinct()],
            Anomalies = anomalies,
            LogProblems = ServerLog.Unexpected(db.LogMark, db.Name, allowedLog),
        };
    }
}
