using System.Text.Json;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.BadInput;

/// <summary>Collects "input → what happened" rows into <c>artifacts/reliability/bad-input.json</c> for RELIABILITY.md.</summary>
public static class BadInputTable
{
    private static readonly Lock Gate = new();

    private static string PathName => System.IO.Path.Combine(Figures.Directory, "bad-input.json");

    public static void Record(string input, string outcome)
    {
        lock (Gate)
        {
            Directory.CreateDirectory(Figures.Directory);
            var rows = File.Exists(PathName)
                ? JsonSerializer.Deserialize<SortedDictionary<string, string>>(File.ReadAllText(PathName)) ?? []
                : new SortedDictionary<string, string>();
            rows[input] = outcome;
            File.WriteAllText(PathName, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        }
    }

    public static void Record(string input, Exception e) =>
        Record(input, $"{e.GetType().Name}: {e.Message}");
}
