using System.Text.Json;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>
/// The figures of the last run of each scenario, written to <c>artifacts/reliability/&lt;scenario&gt;.json</c>
/// (<c>.soak.json</c> in soak mode; RELIABILITY.md quotes them) and to the test output.
/// </summary>
public static class Figures
{
    public static string Directory => Path.Combine(ReliabilityCluster.RepositoryRoot, "artifacts", "reliability");

    public static void Record(ITestOutputHelper output, string scenario, IDictionary<string, object?> figures)
    {
        var all = new Dictionary<string, object?>
        {
            ["scenario"] = scenario,
            ["mode"] = Soak.Enabled ? "soak" : "ci",
            ["finished_at"] = DateTime.UtcNow.ToString("O"),
            ["machine"] = $"{Environment.ProcessorCount} CPU, {Environment.OSVersion}",
        };
        foreach (var (k, v) in figures)
            all[k] = v;
        var json = JsonSerializer.Serialize(all, new JsonSerializerOptions { WriteIndented = true });
        output.WriteLine(json);
        System.IO.Directory.CreateDirectory(Directory);
        File.WriteAllText(Path.Combine(Directory, scenario + (Soak.Enabled ? ".soak.json" : ".json")), json);
    }
}

/// <summary>Soak mode (<c>PROCRASTINATE_SOAK=1</c>): longer runs, more jobs and more faults.</summary>
public static class Soak
{
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("PROCRASTINATE_SOAK") == "1";

    public static T Pick<T>(T ci, T soak) => Enabled ? soak : ci;
}
