using System.Collections.Frozen;
using System.Reflection;
using System.Text;

namespace Procrastinate.Internal.Sql;

/// <summary>Loads the named statements of the embedded <c>queries.sql</c>.</summary>
internal static class SqlQueries
{
    private static readonly FrozenDictionary<string, string> Queries = Parse(ReadResource("Procrastinate.Internal/Sql/queries.sql"));

    public static string Get(string name) =>
        Queries.TryGetValue(name, out var sql) ? sql : throw new InvalidOperationException($"No SQL statement named '{name}'.");

    /// <summary><paramref name="statement"/> with its only <paramref name="part"/> replaced by <paramref name="replacement"/>.</summary>
    /// <exception cref="InvalidOperationException">The statement does not contain the part exactly once (queries.sql changed).</exception>
    public static string ReplaceOnce(string statement, string part, string replacement)
    {
        var at = statement.IndexOf(part, StringComparison.Ordinal);
        if (at < 0 || statement.IndexOf(part, at + 1, StringComparison.Ordinal) >= 0)
            throw new InvalidOperationException($"The statement must contain \"{part}\" exactly once (queries.sql).");
        return string.Concat(statement.AsSpan(0, at), replacement, statement.AsSpan(at + part.Length));
    }

    public static string ReadResource(string logicalName)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(logicalName)
            ?? throw new InvalidOperationException($"Embedded resource '{logicalName}' is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    internal static FrozenDictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string? name = null;
        var body = new StringBuilder();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("-- name:", StringComparison.Ordinal))
            {
                Flush();
                name = line["-- name:".Length..].Trim();
                continue;
            }
            if (name is not null && !line.TrimStart().StartsWith("--", StringComparison.Ordinal))
                body.AppendLine(line);
        }
        Flush();
        return result.ToFrozenDictionary(StringComparer.Ordinal);

        void Flush()
        {
            if (name is not null)
                result.Add(name, body.ToString().Trim().TrimEnd(';'));
            body.Clear();
        }
    }
}
