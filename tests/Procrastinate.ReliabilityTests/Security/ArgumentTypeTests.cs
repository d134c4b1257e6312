using System.Text.Json;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Security;

/// <summary>A type whose construction would be the sign of a deserialization gadget.</summary>
public sealed class Gadget
{
    public static int Created;

    public Gadget() => Interlocked.Increment(ref Created);

    public string? Command { get; set; }
}

public sealed record LooseArgs(string Name, object? Extra, Dictionary<string, object?>? Bag);

/// <summary>
/// Types are never resolved from strings stored in the database: arguments deserialize only into
/// the registered task's args type, whatever <c>$type</c> (or similar) fields they carry.
/// </summary>
public sealed class ArgumentTypeTests
{
    [Fact]
    public async Task Type_hints_in_stored_arguments_instantiate_nothing()
    {
        await using var db = await ScenarioDb.CreateAsync("types");
        await using var app = db.CreateApp();
        var seen = new List<LooseArgs>();
        app.Task<LooseArgs>("loose", args => { lock (seen) seen.Add(args); });
        var gadget = typeof(Gadget).AssemblyQualifiedName!;
        var hostile = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["$type"] = gadget,
            ["$id"] = "1",
            ["name"] = "n",
            ["extra"] = new Dictionary<string, object?> { ["$type"] = gadget, ["command"] = "touch /tmp/pwned", ["__type"] = gadget },
            ["bag"] = new Dictionary<string, object?> { ["k"] = new Dictionary<string, object?> { ["$type"] = "System.Diagnostics.Process, System.Diagnostics.Process", ["StartInfo"] = new { FileName = "touch" } } },
        });
        // Stored directly, as a hostile writer of the table would; and through defer-by-name.
        await db.ExecAsync("INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'loose', $1::jsonb)", hostile);
        await app.DeferAsync("loose", hostile);

        await app.RunWorkerAsync(new WorkerOptions { Wait = false, HandleSignals = false });

        Assert.Equal(0, Gadget.Created);
        Assert.Equal(2, seen.Count);
        Assert.All(seen, args =>
        {
            Assert.Equal("n", args.Name);
            Assert.IsType<JsonElement>(args.Extra);
            Assert.IsType<JsonElement>(args.Bag!["k"]);
        });
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"));
    }

    /// <summary>
    /// A static guard: the library never turns a string into a type (no Type.GetType, no
    /// Assembly.Load, no polymorphic JSON). The CLI's app loader (an assembly path given on its
    /// command line, never from the database) and handler activation (a type registered in code)
    /// are the only reflection entry points.
    /// </summary>
    [Fact]
    public void The_library_has_no_string_to_type_resolution()
    {
        var src = Path.Combine(ReliabilityCluster.RepositoryRoot, "src");
        string[] forbidden = ["Type.GetType(", "Assembly.Load(", "Assembly.LoadFrom(", "TypeNameHandling", "JsonDerivedType", "JsonPolymorphic",
            "BinaryFormatter", "AllowOutOfOrderMetadataProperties", "Activator.CreateInstance(Type.GetType"];
        var hits = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"Procrastinate.Cli{Path.DirectorySeparatorChar}Loading", StringComparison.Ordinal))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => forbidden.Any(token => x.line.Contains(token, StringComparison.Ordinal)))
            .Select(x => $"{Path.GetRelativePath(src, x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(hits.Count == 0, string.Join('\n', hits));
    }
}
