using System.Globalization;

namespace Procrastinate.Benchmarks;

/// <summary>The orchestrator's settings, from the command line (see <see cref="Usage"/>).</summary>
internal sealed class Config
{
    /// <summary>Every workload, in run order.</summary>
    public static readonly string[] AllWorkloads = ["W1-1", "W1-8", "W2", "W3-default", "W3-best", "W4", "W5"];

    /// <summary>W3 "default options": concurrency 10, every other option at its default.</summary>
    public static readonly string[] DefaultProfile = ["Concurrency=10"];

    /// <summary>
    /// W3 "best options" on the compatible layout, also used by W4 and W5. Edit here (or pass
    /// --best-option) when new WorkerOptions appear. Chosen by measurement: see benchmarks/README.md.
    /// </summary>
    public static readonly string[] BestProfile = ["Concurrency=100", "ClaimsInFlight=2", "DurableClaims=false"];

    /// <summary>
    /// The same on the lean layout, where deleting successful jobs is cheaper than keeping them
    /// (statement-level cascades; on the compatible layout the per-row ones made it slower).
    /// </summary>
    public static readonly string[] LeanBestProfile = ["Concurrency=100", "PrefetchJobs=400", "DeleteJobs=Successful", "DurableClaims=false"];

    public static string[] BestProfileFor(SchemaLayout layout) => layout == SchemaLayout.Lean ? LeanBestProfile : BestProfile;

    public const string Usage = """
        Usage: benchmarks/run.sh [options]          (or: Procrastinate.Benchmarks run --url URL [options])

          --workloads LIST        W1,W2,W3,W4,W5 or ids (W1-1,W1-8,W2,W3-default,W3-best,W4,W5); default all
          --runs N                runs of each workload; the table shows the median (default 3)
          --quick                 small sizes (smoke test): W1 2k, W2 10k, W3 10k, W4 200, W5 10 s
          --json PATH             results file (default benchmarks/results/latest.json; a .md is written beside it)
          --layout L              table layout of every workload's database: compatible (default) or lean
          --worker-option N=V     a WorkerOptions property for every worker run (repeatable)
          --default-option N=V    ... for the W3 default run only
          --best-option N=V       ... for the "best options" profile (W3 best, W4, W5)
          --w1-jobs N  --w2-jobs N  --w3-jobs N  --w4-jobs N  --w4-warmup N  --w4-interval-ms N
          --w5-seconds N  --w5-rate JOBS_PER_S  --w5-producers N  --w5-batch N
          --drain-timeout SECONDS W3 gives up after this long (default 600; quick 120)
          --run-timeout SECONDS   one run of one workload, setup included, gives up after this long (default 900)
          --worker-log-level L    console logging in the worker (stderr), e.g. Warning; default none
          --worker-env NAME=VALUE an environment variable of every worker process only (repeatable), e.g.
                                  DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0; the producers keep .NET's defaults
          --quiet-below PERCENT   before each run, wait until the machine is less busy than this (default 25; 0: never wait)
          --quiet-timeout SECONDS ... but no longer than this (default 180; quick 15), then run anyway and say so
          --url URL               PostgreSQL URL or connection string (run.sh passes it)
        run.sh only:
          --separate-cluster      run on a second private cluster (scripts/postgres.sh, same settings), not the tests' one
          --stop-separate-cluster stop that cluster
        """;

    public string Url { get; private set; } = "";

    public string Command { get; private set; } = "";

    public List<string> Workloads { get; private set; } = [.. AllWorkloads];

    public int Runs { get; private set; } = 3;

    public bool Quick { get; private set; }

    /// <summary>The table layout each workload's fresh database gets.</summary>
    public SchemaLayout Layout { get; private set; } = SchemaLayout.Compatible;

    public string JsonPath { get; private set; } = "benchmarks/results/latest.json";

    public List<string> DefaultOptions { get; private set; } = [.. DefaultProfile];

    public List<string> BestOptions { get; private set; } = [.. BestProfile];

    public int W1Jobs { get; private set; }

    public int W1Clients8 { get; } = 8;

    public int W2Jobs { get; private set; }

    public int W3Jobs { get; private set; }

    public int W3Chunk { get; } = 10_000;

    public int W4Jobs { get; private set; }

    public int W4Warmup { get; private set; }

    public int W4IntervalMs { get; private set; } = 20;

    public int W5Seconds { get; private set; }

    /// <summary>Offered load of W5, jobs/s: the 20,000/s target plus 5 % (see README).</summary>
    public int W5Rate { get; private set; } = 21_000;

    public int W5Producers { get; private set; } = 2;

    public int W5Batch { get; private set; } = 100;

    public TimeSpan DrainTimeout { get; private set; }

    public string? WorkerLogLevel { get; private set; }

    /// <summary>Before each run, wait until the machine is less busy than this (percent of all cores; 0: do not wait).</summary>
    public int QuietBelowPercent { get; private set; } = 25;

    public TimeSpan QuietTimeout { get; private set; }

    /// <summary>One run of one workload, setup included, gives up after this long.</summary>
    public TimeSpan RunTimeout { get; private set; }

    /// <summary>Environment variables set for the worker processes only (<c>--worker-env</c>).</summary>
    public SortedDictionary<string, string> WorkerEnvironment { get; } = new(StringComparer.Ordinal);

    public static Config Parse(string[] args)
    {
        var c = new Config();
        var all = new List<string>();
        var onlyDefault = new List<string>();
        var onlyBest = new List<string>();
        int? w1 = null, w2 = null, w3 = null, w4 = null, w4w = null, w5 = null, drain = null, quiet = null, runTimeout = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt()
            {
                var name = args[i];
                var v = Next();
                return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
                    ? n
                    : throw new ArgumentException($"{name} needs a positive integer, got '{v}'.");
            }
            switch (args[i])
            {
                case "--url": c.Url = Next(); break;
                case "--command": c.Command = Next(); break;
                case "--workloads": c.Workloads = ParseWorkloads(Next()); break;
                case "--runs": c.Runs = NextInt(); break;
                case "--quick": c.Quick = true; break;
                case "--layout":
                    c.Layout = Next() switch
                    {
                        "compatible" => SchemaLayout.Compatible,
                        "lean" => SchemaLayout.Lean,
                        var other => throw new ArgumentException($"--layout: '{other}' is not a layout (compatible or lean)."),
                    };
                    break;
                case "--json": c.JsonPath = Next(); break;
                case "--worker-option": all.Add(Next()); break;
                case "--default-option": onlyDefault.Add(Next()); break;
                case "--best-option": onlyBest.Add(Next()); break;
                case "--w1-jobs": w1 = NextInt(); break;
                case "--w2-jobs": w2 = NextInt(); break;
                case "--w3-jobs": w3 = NextInt(); break;
                case "--w4-jobs": w4 = NextInt(); break;
                case "--w4-warmup": w4w = NextInt(); break;
                case "--w4-interval-ms": c.W4IntervalMs = NextInt(); break;
                case "--w5-seconds": w5 = NextInt(); break;
                case "--w5-rate": c.W5Rate = NextInt(); break;
                case "--w5-producers": c.W5Producers = NextInt(); break;
                case "--w5-batch": c.W5Batch = NextInt(); break;
                case "--drain-timeout": drain = NextInt(); break;
                case "--worker-log-level": c.WorkerLogLevel = Next(); break;
                case "--worker-env":
                    var (envName, envValue) = WorkerOptionsBinder.ParseSetting(Next());
                    c.WorkerEnvironment[envName] = envValue;
                    break;
                case "--quiet-below": c.QuietBelowPercent = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--quiet-timeout": quiet = NextInt(); break;
                case "--run-timeout": runTimeout = NextInt(); break;
                case "-h" or "--help": throw new UsageException();
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }
        if (c.Url.Length == 0)
            throw new ArgumentException("--url is required (benchmarks/run.sh passes it).");
        c.W1Jobs = w1 ?? (c.Quick ? 2_000 : 20_000);
        c.W2Jobs = w2 ?? (c.Quick ? 10_000 : 100_000);
        c.W3Jobs = w3 ?? (c.Quick ? 10_000 : 100_000);
        c.W4Jobs = w4 ?? (c.Quick ? 200 : 2_000);
        c.W4Warmup = w4w ?? (c.Quick ? 20 : 50);
        c.W5Seconds = w5 ?? (c.Quick ? 10 : 60);
        c.DrainTimeout = TimeSpan.FromSeconds(drain ?? (c.Quick ? 120 : 600));
        c.QuietTimeout = TimeSpan.FromSeconds(quiet ?? (c.Quick ? 15 : 180));
        c.RunTimeout = TimeSpan.FromSeconds(runTimeout ?? 900);
        if (c.RunTimeout <= c.DrainTimeout)
            c.RunTimeout = c.DrainTimeout + TimeSpan.FromMinutes(5);
        c.DefaultOptions = WorkerOptionsBinder.Merge(DefaultProfile, all, onlyDefault);
        c.BestOptions = WorkerOptionsBinder.Merge(BestProfileFor(c.Layout), all, onlyBest);
        WorkerOptionsBinder.Validate(c.DefaultOptions);
        WorkerOptionsBinder.Validate(c.BestOptions);
        if (c.W1Jobs % c.W1Clients8 != 0)
            throw new ArgumentException($"--w1-jobs must be a multiple of {c.W1Clients8}.");
        return c;
    }

    private static List<string> ParseWorkloads(string text)
    {
        var result = new List<string>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var matches = AllWorkloads.Where(w => w.Equals(item, StringComparison.OrdinalIgnoreCase)
                || w.StartsWith(item + "-", StringComparison.OrdinalIgnoreCase)).ToList();
            if (matches.Count == 0)
                throw new ArgumentException($"Unknown workload '{item}'. Known: W1, W2, W3, W4, W5, {string.Join(", ", AllWorkloads)}.");
            result.AddRange(matches);
        }
        return [.. AllWorkloads.Where(result.Contains)];
    }

    public static int ConcurrencyOf(IEnumerable<string> profile) =>
        int.Parse(WorkerOptionsBinder.Find(profile, "Concurrency") ?? "1", CultureInfo.InvariantCulture);
}

internal sealed class UsageException : Exception
{
    public UsageException() : base(Config.Usage)
    {
    }

    public UsageException(string message) : base(message)
    {
    }

    public UsageException(string message, Exception inner) : base(message, inner)
    {
    }
}
