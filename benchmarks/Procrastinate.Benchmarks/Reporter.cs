using System.Globalization;
using System.Text;

namespace Procrastinate.Benchmarks;

/// <summary>Medians, target checks, and the Markdown rendering of a <see cref="Report"/>.</summary>
internal static class Reporter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static WorkloadSummary Summarize(string id, string title, List<RunResult> runs)
    {
        var summary = new WorkloadSummary { Id = id, Title = title, Runs = runs };
        var ok = runs.Where(r => r.Error is null).ToList();
        summary.SuccessfulRuns = ok.Count;
        var metrics = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var r in ok)
        {
            foreach (var (name, value) in Figures(r))
            {
                if (value is { } v && double.IsFinite(v))
                {
                    if (!metrics.TryGetValue(name, out var list))
                        metrics[name] = list = [];
                    list.Add(v);
                }
            }
        }
        foreach (var (name, values) in metrics)
        {
            summary.Median[name] = Median(values);
            summary.Min[name] = values.Min();
            summary.Max[name] = values.Max();
        }
        var primary = id == "W4" ? "latencyP50Ms" : "jobsPerSecond";
        var ranked = ok.Where(r => Figures(r).Any(f => f.Name == primary && f.Value is not null))
            .OrderBy(r => Figures(r).First(f => f.Name == primary).Value).ToList();
        if (ranked.Count > 0)
            summary.MedianRun = ranked[(ranked.Count - 1) / 2].Run;
        Judge(summary, ok);
        return summary;
    }

    private static IEnumerable<(string Name, double? Value)> Figures(RunResult r)
    {
        yield return ("jobsPerSecond", r.JobsPerSecond);
        yield return ("seconds", r.Seconds);
        yield return ("commitsPerJob", r.CommitsPerJob);
        yield return ("statementsPerJob", r.StatementsPerJob);
        yield return ("workerPeakRssMb", r.WorkerPeakRssMb);
        yield return ("workerCpuSeconds", r.WorkerCpuSeconds);
        yield return ("harnessCpuSeconds", r.HarnessCpuSeconds);
        yield return ("machineBusyCpuSeconds", r.MachineBusyCpuSeconds);
        yield return ("serverCpuSeconds", r.ServerCpuSeconds);
        yield return ("clusterCpuSeconds", r.ClusterCpuSeconds);
        yield return ("otherCpuSeconds", r.OtherCpuSeconds);
        yield return ("machineBusyBeforePercent", r.MachineBusyBeforePercent);
        yield return ("machineUtilization", r.MachineUtilization);
        yield return ("phaseSeconds", r.PhaseSeconds);
        if (r.LatencyMs is { } l)
        {
            yield return ("latencyP50Ms", l.P50);
            yield return ("latencyP95Ms", l.P95);
            yield return ("latencyP99Ms", l.P99);
            yield return ("latencyMaxMs", l.Max);
            yield return ("latencyMeanMs", l.Mean);
        }
        foreach (var (k, v) in r.Details)
            yield return (k, v);
    }

    private static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static void Judge(WorkloadSummary s, List<RunResult> ok)
    {
        double? M(string name) => s.Median.TryGetValue(name, out var v) ? v : null;
        bool? AtLeast(double target) => M("jobsPerSecond") is { } v ? v >= target : null;
        switch (s.Id)
        {
            case "W1-1":
                s.Target = "≥ 3,500 jobs/s";
                s.Met = AtLeast(3_500);
                break;
            case "W1-8":
                s.Target = "(none; reported)";
                break;
            case "W2":
                s.Target = "≥ 100,000 jobs/s";
                s.Met = AtLeast(100_000);
                break;
            case "W3-default":
                s.Target = "≥ 10,000 jobs/s";
                s.Met = AtLeast(10_000);
                break;
            case "W3-best":
                s.Target = "≥ 80,000 jobs/s";
                s.Met = AtLeast(80_000);
                break;
            case "W4":
                s.Target = "p50 ≤ 2 ms, p99 ≤ 5 ms";
                s.Met = M("latencyP50Ms") is { } p50 && M("latencyP99Ms") is { } p99 ? p50 <= 2 && p99 <= 5 : null;
                break;
            case "W5":
                s.Target = "≥ 20,000 jobs/s, backlog not growing";
                var growing = ok.Count(r => r.BacklogGrowing == true);
                s.Met = AtLeast(20_000) is { } fast ? fast && growing * 2 < ok.Count : null;
                s.Note = $"backlog growing in {growing} of {ok.Count} run(s)";
                break;
        }
        if (ok.Count == 0)
            s.Met = null;
    }

    /// <summary>The memory target, checked on the W3 best-options runs.</summary>
    public static WorkloadSummary? Memory(Report report, Config config)
    {
        var best = report.Workloads.FirstOrDefault(w => w.Id == "W3-best");
        if (best is null || !best.Median.TryGetValue("workerPeakRssMb", out var mb))
            return null;
        var concurrency = Config.ConcurrencyOf(config.BestOptions);
        return new WorkloadSummary
        {
            Id = "M",
            Title = $"Worker peak RSS at concurrency {concurrency} (W3 best)",
            Target = "≤ 150 MB at concurrency 100",
            Met = concurrency == 100 ? mb <= 150 : null,
            Note = concurrency == 100 ? null : "the best profile does not run at concurrency 100: not judged",
            SuccessfulRuns = best.SuccessfulRuns,
            Median = new(StringComparer.Ordinal) { ["workerPeakRssMb"] = mb },
            Min = new(StringComparer.Ordinal) { ["workerPeakRssMb"] = best.Min["workerPeakRssMb"] },
            Max = new(StringComparer.Ordinal) { ["workerPeakRssMb"] = best.Max["workerPeakRssMb"] },
        };
    }

    // ---- Markdown -----------------------------------------------------------------------------

    public static string Markdown(Report report)
    {
        var sb = new StringBuilder();
        var runs = report.Runs;
        sb.AppendLine(Inv, $"Table layout: {report.Layout}.");
        sb.AppendLine(Inv, $"Median of {runs} run(s){(report.Quick ? " — QUICK sizes (smoke test): the targets are not meaningful here" : "")}; ranges are min–max over the runs.");
        sb.AppendLine();
        sb.AppendLine("| Workload | Result | Target | Met? | Commits/job | Statements/job | Worker peak RSS MB | Worker CPU s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var w in report.Workloads)
        {
            var result = w.SuccessfulRuns == 0 ? "**error**" : ResultCell(w, runs);
            sb.AppendLine(Inv, $"| {Label(w.Id)} | {result} | {w.Target} | {MetCell(w)} | {F(w, "commitsPerJob", "0.00")} | {F(w, "statementsPerJob", "0.00")} | {F(w, "workerPeakRssMb", "0")} | {F(w, "workerCpuSeconds", "0.0")} |");
        }
        if (report.Memory is { } m)
            sb.AppendLine(Inv, $"| Worker memory (W3 best) | {F(m, "workerPeakRssMb", "0")} MB{Range(m, "workerPeakRssMb", "0", runs)} | {m.Target} | {MetCell(m)} | | | | |");
        sb.AppendLine();

        sb.AppendLine(Inv, $"Where the CPU went (medians over the measured phase, which runs from the worker's start, or the first defer, to the last statistics read; {Environment.ProcessorCount} cores = {Environment.ProcessorCount} core-seconds per second). \"PostgreSQL\" is the CPU of the backends of the workload's database; \"cluster\" is the whole PostgreSQL cluster (every database, WAL writer, checkpointer); \"other\" is machine busy time used by neither the worker, the harness nor those backends (WAL writer, checkpointer, other tenants of the machine).");
        sb.AppendLine();
        sb.AppendLine("| Workload | Measured s | Phase s | Worker CPU s | Harness CPU s | PostgreSQL CPU s | Cluster CPU s | Other CPU s | Machine busy % | Busy % just before |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var w in report.Workloads.Where(w => w.SuccessfulRuns > 0))
        {
            sb.AppendLine(Inv, $"| {w.Id} | {F(w, "seconds", "0.00")} | {F(w, "phaseSeconds", "0.0")} | {F(w, "workerCpuSeconds", "0.00")} | {F(w, "harnessCpuSeconds", "0.00")} | {F(w, "serverCpuSeconds", "0.00")} | {F(w, "clusterCpuSeconds", "0.00")} | {F(w, "otherCpuSeconds", "0.00")} | {(w.Median.TryGetValue("machineUtilization", out var u) ? (u * 100).ToString("0", Inv) : "–")} | {F(w, "machineBusyBeforePercent", "0")} |");
        }
        sb.AppendLine();

        var details = report.Workloads.Where(w => w.SuccessfulRuns > 0 && w.Median.Keys.Any(IsDetail)).ToList();
        if (details.Count > 0)
        {
            sb.AppendLine("Details (medians):");
            sb.AppendLine();
            foreach (var w in details)
            {
                var items = w.Median.Where(kv => IsDetail(kv.Key)).Select(kv => $"{kv.Key} {Num(kv.Value)}");
                sb.AppendLine(Inv, $"- {w.Id}: {string.Join("; ", items)}{(w.Note is null ? "" : "; " + w.Note)}");
            }
            sb.AppendLine();
        }

        foreach (var w in report.Workloads.Where(w => w.MedianRun is not null))
        {
            var run = w.Runs.First(r => r.Run == w.MedianRun);
            if (run.TopStatements is not { Count: > 0 } statements || run.JobsForPerJob == 0)
                continue;
            var jobs = (double)run.JobsForPerJob;
            sb.AppendLine(Inv, $"Top statements, {w.Id} (run {run.Run}; per job = per {run.JobsForPerJob:N0} jobs; {run.Statements:N0} statements, {run.Commits:N0} commits in all):");
            sb.AppendLine();
            sb.AppendLine("| Calls/job | ms/job | Mean ms | Rows/call | Statement |");
            sb.AppendLine("|---|---|---|---|---|");
            var byCalls = statements.OrderByDescending(s => s.Calls).Take(6);
            var byTime = statements.OrderByDescending(s => s.TotalMs).Take(4);
            foreach (var s in byCalls.Union(byTime).OrderByDescending(s => s.TotalMs))
            {
                var text = s.Query.Length > 110 ? s.Query[..110] + "…" : s.Query;
                sb.AppendLine(Inv, $"| {s.Calls / jobs:0.0000} | {s.TotalMs / jobs:0.0000} | {s.MeanMs:0.000} | {(s.Calls == 0 ? 0 : (double)s.Rows / s.Calls):0.#} | `{text.Replace("|", "\\|", StringComparison.Ordinal).Replace("`", "'", StringComparison.Ordinal)}` |");
            }
            sb.AppendLine();
        }

        var errors = report.Workloads.SelectMany(w => w.Runs).Where(r => r.Error is not null).ToList();
        if (errors.Count > 0)
        {
            sb.AppendLine("Errors:");
            sb.AppendLine();
            foreach (var r in errors)
                sb.AppendLine(Inv, $"- {r.Workload} run {r.Run}: {r.Error!.Split('\n')[0]}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static bool IsDetail(string key) => key is not ("jobsPerSecond" or "seconds" or "commitsPerJob" or "statementsPerJob"
        or "workerPeakRssMb" or "workerCpuSeconds" or "harnessCpuSeconds" or "machineBusyCpuSeconds" or "machineUtilization" or "phaseSeconds"
        or "serverCpuSeconds" or "clusterCpuSeconds" or "otherCpuSeconds" or "machineBusyBeforePercent" or "serverBackendsSeen")
        && !key.StartsWith("latency", StringComparison.Ordinal);

    private static string Label(string id) => id switch
    {
        "W1-1" => "W1 enqueue one by one, 1 client",
        "W1-8" => "W1 enqueue one by one, 8 clients",
        "W2" => "W2 enqueue in a batch",
        "W3-default" => "W3 drain, concurrency 10, default options",
        "W3-best" => "W3 drain, best options",
        "W4" => "W4 defer-to-start latency",
        "W5" => "W5 steady state",
        _ => id,
    };

    private static string ResultCell(WorkloadSummary w, int runs)
    {
        if (w.Id == "W4")
        {
            return $"p50 {F(w, "latencyP50Ms", "0.00")} / p95 {F(w, "latencyP95Ms", "0.00")} / p99 {F(w, "latencyP99Ms", "0.00")} / max {F(w, "latencyMaxMs", "0.0")} ms"
                + (runs > 1 ? $" (p50 {F(w.Min, "latencyP50Ms", "0.00")}–{F(w.Max, "latencyP50Ms", "0.00")}, p99 {F(w.Min, "latencyP99Ms", "0.00")}–{F(w.Max, "latencyP99Ms", "0.00")})" : "");
        }
        var cell = $"{F(w, "jobsPerSecond", "N0")} jobs/s{Range(w, "jobsPerSecond", "N0", runs)}";
        if (w.Id == "W5")
            cell += $"; backlog at end {F(w, "backlogAtEnd", "N0")}; {w.Note}";
        return cell;
    }

    private static string MetCell(WorkloadSummary w) => w.Met switch { true => "yes", false => "**no**", null => "–" };

    private static string Range(WorkloadSummary w, string key, string format, int runs) =>
        runs > 1 && w.Min.ContainsKey(key) ? $" ({F(w.Min, key, format)}–{F(w.Max, key, format)})" : "";

    private static string F(WorkloadSummary w, string key, string format) => F(w.Median, key, format);

    private static string F(SortedDictionary<string, double> values, string key, string format) =>
        values.TryGetValue(key, out var v) ? v.ToString(format, Inv) : "–";

    private static string Num(double v) => Math.Abs(v) >= 100 ? v.ToString("N0", Inv) : v.ToString("0.###", Inv);
}
