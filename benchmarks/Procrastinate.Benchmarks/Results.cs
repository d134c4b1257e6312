namespace Procrastinate.Benchmarks;

/// <summary>Latency percentiles (nearest rank), in milliseconds.</summary>
public sealed record LatencySummary(int Count, double P50, double P95, double P99, double Max, double Mean)
{
    public static LatencySummary? Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
            return null;
        var sorted = values.Order().ToArray();
        return new LatencySummary(sorted.Length, Rank(sorted, 0.50), Rank(sorted, 0.95), Rank(sorted, 0.99), sorted[^1], sorted.Average());
    }

    /// <summary>Nearest-rank percentile: the smallest value with at least p of the values at or below it.</summary>
    public static double Rank(double[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>The backlog (todo jobs) at one moment of W5.</summary>
public sealed record BacklogSample(double Seconds, long Todo, long Produced);

/// <summary>One run of one workload.</summary>
public sealed class RunResult
{
    public string Workload { get; set; } = "";

    public int Run { get; set; }

    public string Database { get; set; } = "";

    public string? Error { get; set; }

    /// <summary>Jobs the primary figure is about (enqueued, drained, measured...).</summary>
    public long Jobs { get; set; }

    /// <summary>The measured interval of the primary figure.</summary>
    public double Seconds { get; set; }

    public double? JobsPerSecond { get; set; }

    public LatencySummary? LatencyMs { get; set; }

    /// <summary>Denominator of the per-job figures (see README: includes W4's warm-up jobs; W5 uses completed jobs).</summary>
    public long JobsForPerJob { get; set; }

    /// <summary>xact_commit of the database over the whole measured phase, minus the harness's own transactions.</summary>
    public long? Commits { get; set; }

    public long? Rollbacks { get; set; }

    /// <summary>Sum of pg_stat_statements calls for the database over the measured phase, harness queries excluded.</summary>
    public long? Statements { get; set; }

    public double? CommitsPerJob { get; set; }

    public double? StatementsPerJob { get; set; }

    public long? RowsInserted { get; set; }

    public long? RowsUpdated { get; set; }

    public long? RowsDeleted { get; set; }

    public double? WorkerPeakRssMb { get; set; }

    public double? WorkerCpuSeconds { get; set; }

    public double? WorkerUserCpuSeconds { get; set; }

    public double? WorkerSystemCpuSeconds { get; set; }

    /// <summary>CPU of the harness process (producers, polling) over the measured phase.</summary>
    public double HarnessCpuSeconds { get; set; }

    /// <summary>CPU of the server backends of this workload's database (client backends, autovacuum), harness observer excepted; null when the server is not local.</summary>
    public double? ServerCpuSeconds { get; set; }

    /// <summary>CPU of the whole PostgreSQL cluster (postmaster, every backend of every database, background writers) over the measured phase.</summary>
    public double? ClusterCpuSeconds { get; set; }

    /// <summary>Machine busy time not explained by the worker, the harness and this database's backends: WAL writer, checkpointer, and other tenants of the machine.</summary>
    public double? OtherCpuSeconds { get; set; }

    /// <summary>Busy share of all cores, in percent, in the second before the run started.</summary>
    public double MachineBusyBeforePercent { get; set; }

    /// <summary>Busy CPU of the whole machine (all cores, /proc/stat) over the measured phase.</summary>
    public double MachineBusyCpuSeconds { get; set; }

    /// <summary>Busy share of all cores over the measured phase.</summary>
    public double MachineUtilization { get; set; }

    /// <summary>Wall time of the measured phase (worker start to stop, including setup waits).</summary>
    public double PhaseSeconds { get; set; }

    public string LoadAverageBefore { get; set; } = "";

    public IReadOnlyList<string>? WorkerOptions { get; set; }

    public string? WorkerArguments { get; set; }

    public SortedDictionary<string, double> Details { get; set; } = new(StringComparer.Ordinal);

    public bool? BacklogGrowing { get; set; }

    public List<BacklogSample>? BacklogSamples { get; set; }

    public Dictionary<string, long>? FinalStatusCounts { get; set; }

    /// <summary>pg_stat_statements rows of the database, most called first (harness queries excluded).</summary>
    public List<StatementRow>? TopStatements { get; set; }
}

/// <summary>All runs of one workload, with medians and the target check.</summary>
public sealed class WorkloadSummary
{
    public string Id { get; set; } = "";

    public string Title { get; set; } = "";

    public string Target { get; set; } = "";

    /// <summary>Null when the workload has no target (W1 with 8 clients) or no successful run.</summary>
    public bool? Met { get; set; }

    public string? Note { get; set; }

    public int SuccessfulRuns { get; set; }

    /// <summary>Median of each figure over the successful runs.</summary>
    public SortedDictionary<string, double> Median { get; set; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, double> Min { get; set; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, double> Max { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The run whose primary figure is the median (its statements are shown).</summary>
    public int? MedianRun { get; set; }

    public List<RunResult> Runs { get; set; } = [];
}

/// <summary>The whole report (the JSON file).</summary>
public sealed class Report
{
    public string Harness { get; set; } = "Procrastinate.Benchmarks";

    public string StartedUtc { get; set; } = "";

    public string FinishedUtc { get; set; } = "";

    public string Command { get; set; } = "";

    public bool Quick { get; set; }

    public string Layout { get; set; } = "compatible";

    public int Runs { get; set; }

    public SortedDictionary<string, string> Machine { get; set; } = new(StringComparer.Ordinal);

    public ServerInfo? Server { get; set; }

    public SortedDictionary<string, IReadOnlyList<string>> Profiles { get; set; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, double> Sizes { get; set; } = new(StringComparer.Ordinal);

    public List<WorkloadSummary> Workloads { get; set; } = [];

    /// <summary>The memory target (worker at concurrency 100 ≤ 150 MB), checked on W3 best.</summary>
    public WorkloadSummary? Memory { get; set; }

    public List<string> Errors { get; set; } = [];
}
