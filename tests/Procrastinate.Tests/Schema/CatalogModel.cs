using System.Text;
using System.Text.RegularExpressions;

namespace Procrastinate.Tests.Schema;

/// <summary>The kinds of catalog object the schema contract (COMPAT.md section 2) talks about.</summary>
public enum CatalogKind
{
    Enum,
    CompositeType,
    Table,
    Column,
    Constraint,
    Index,
    Sequence,
    Function,
    TriggerFunction,
    Trigger,

    /// <summary>Anything else carrying a Procrastinate name: views, domains, rules, policies...</summary>
    Other,
}

/// <summary>How an actual object differs from the expected one.</summary>
public enum DifferenceKind
{
    /// <summary>Expected, but not in the database.</summary>
    Missing,

    /// <summary>In the database, not expected, and not an allowed .NET addition.</summary>
    Unexpected,

    /// <summary>In both, but one property differs.</summary>
    Different,
}

/// <summary>
/// One normalized catalog object: a kind, a key (unique within the kind) and named properties,
/// all rendered as text in the form PostgreSQL prints them, without the schema qualifier.
/// </summary>
public sealed class CatalogObject
{
    public CatalogObject(CatalogKind kind, string name, string baseName, IEnumerable<KeyValuePair<string, string>> properties)
    {
        Kind = kind;
        Name = name;
        BaseName = baseName;
        Properties = new SortedDictionary<string, string>(properties.ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);
    }

    public CatalogObject(CatalogKind kind, string name, IEnumerable<KeyValuePair<string, string>> properties)
        : this(kind, name, name, properties)
    {
    }

    public CatalogKind Kind { get; }

    /// <summary>The key: the object name, "table.column" for columns, "name(argtypes)" for functions.</summary>
    public string Name { get; }

    /// <summary>The bare object name (a function's name without its argument types).</summary>
    public string BaseName { get; }

    public IReadOnlyDictionary<string, string> Properties { get; }

    public string this[string property] => Properties.TryGetValue(property, out var v) ? v : "";

    public override string ToString()
    {
        var sb = new StringBuilder().Append(Kind).Append(' ').Append(Name);
        foreach (var (k, v) in Properties)
            sb.Append("\n        ").Append(k).Append(": ").Append(v);
        return sb.ToString();
    }
}

/// <summary>One difference found by <see cref="CatalogComparer"/>.</summary>
public sealed record CatalogDifference(
    CatalogKind Kind,
    string Name,
    DifferenceKind Change,
    string? Property = null,
    string? Expected = null,
    string? Actual = null)
{
    /// <summary>The whole object, for missing and unexpected ones (not part of equality).</summary>
    public CatalogObject? Object { get; init; }

    public bool Equals(CatalogDifference? other) =>
        other is not null && Kind == other.Kind && Name == other.Name && Change == other.Change
        && Property == other.Property && Expected == other.Expected && Actual == other.Actual;

    public override int GetHashCode() => HashCode.Combine(Kind, Name, Change, Property, Expected, Actual);

    public override string ToString() => Change switch
    {
        DifferenceKind.Missing => $"MISSING    {Object?.ToString() ?? $"{Kind} {Name}"}",
        DifferenceKind.Unexpected => $"UNEXPECTED {Object?.ToString() ?? $"{Kind} {Name}"}",
        _ => $"DIFFERENT  {Kind} {Name}\n        {Property}:\n          expected: {Show(Expected)}\n          actual:   {Show(Actual)}",
    };

    private static string Show(string? value) => value is null ? "(property absent)" : $"«{value}»";
}

/// <summary>The result of comparing an expected catalog with an actual one.</summary>
public sealed class CatalogComparison
{
    public CatalogComparison(IReadOnlyList<CatalogDifference> differences, IReadOnlyList<CatalogObject> toleratedExtras)
    {
        Differences = differences;
        ToleratedExtras = toleratedExtras;
    }

    public IReadOnlyList<CatalogDifference> Differences { get; }

    /// <summary>Actual objects not in the contract that are allowed .NET additions.</summary>
    public IReadOnlyList<CatalogObject> ToleratedExtras { get; }

    public bool IsMatch => Differences.Count == 0;

    public string Describe()
    {
        if (IsMatch)
            return "The catalog matches the contract.";
        var sb = new StringBuilder();
        sb.Append(Differences.Count).Append(" difference(s) between COMPAT.md section 2 (expected) and the database (actual):");
        foreach (var d in Differences)
            sb.Append("\n  - ").Append(d);
        return sb.ToString();
    }
}

public static partial class CatalogComparer
{
    /// <summary>
    /// Compares <paramref name="expected"/> with <paramref name="actual"/>, restricted to <paramref name="kinds"/>
    /// (all kinds when empty). Every expected object must exist with exactly the expected properties;
    /// every other actual object must be an allowed .NET addition (<see cref="IsAllowedExtra"/>).
    /// </summary>
    public static CatalogComparison Compare(IEnumerable<CatalogObject> expected, IEnumerable<CatalogObject> actual, params CatalogKind[] kinds)
    {
        bool Selected(CatalogObject o) => kinds.Length == 0 || kinds.Contains(o.Kind);
        var exp = Index(expected.Where(Selected), "expected");
        var act = Index(actual.Where(Selected), "actual");

        var differences = new List<CatalogDifference>();
        var tolerated = new List<CatalogObject>();
        foreach (var (key, e) in exp)
        {
            if (!act.TryGetValue(key, out var a))
            {
                differences.Add(new CatalogDifference(e.Kind, e.Name, DifferenceKind.Missing) { Object = e });
                continue;
            }
            foreach (var property in e.Properties.Keys.Union(a.Properties.Keys).Order(StringComparer.Ordinal))
            {
                var ev = e.Properties.TryGetValue(property, out var x) ? x : null;
                var av = a.Properties.TryGetValue(property, out var y) ? y : null;
                if (ev != av)
                    differences.Add(new CatalogDifference(e.Kind, e.Name, DifferenceKind.Different, property, ev, av));
            }
        }
        foreach (var (key, a) in act)
        {
            if (exp.ContainsKey(key))
                continue;
            if (IsAllowedExtra(a))
                tolerated.Add(a);
            else
                differences.Add(new CatalogDifference(a.Kind, a.Name, DifferenceKind.Unexpected) { Object = a });
        }
        return new CatalogComparison(
            [.. differences.OrderBy(d => d.Kind).ThenBy(d => d.Name, StringComparer.Ordinal).ThenBy(d => d.Change).ThenBy(d => d.Property, StringComparer.Ordinal)],
            [.. tolerated.OrderBy(o => o.Kind).ThenBy(o => o.Name, StringComparer.Ordinal)]);
    }

    /// <summary>
    /// The .NET additions COMPAT.md 1.2 rule 2 allows: objects named <c>procrastinate_dotnet_*</c>
    /// (columns: of a <c>procrastinate_dotnet_*</c> table), except
    /// <list type="bullet">
    /// <item>names of Python's versioned form <c>procrastinate_&lt;something&gt;_v&lt;N&gt;</c> (rule 2);</item>
    /// <item>constraints, triggers, rules and policies attached to one of the four core tables,
    /// whatever their name (rule 3: nothing that could reject, alter or add to what Python writes).</item>
    /// </list>
    /// </summary>
    public static bool IsAllowedExtra(CatalogObject o)
    {
        if (!o.Name.StartsWith(ExpectedCatalog.AllowedExtraPrefix, StringComparison.Ordinal))
            return false;
        if (PythonVersionedName().IsMatch(o.BaseName))
            return false;
        if (o.Kind is CatalogKind.Constraint or CatalogKind.Trigger or CatalogKind.Other
            && ExpectedCatalog.CoreTables.Contains(o["table"]))
            return false;
        return true;
    }

    private static Dictionary<(CatalogKind, string), CatalogObject> Index(IEnumerable<CatalogObject> objects, string side)
    {
        var result = new Dictionary<(CatalogKind, string), CatalogObject>();
        foreach (var o in objects)
        {
            if (!result.TryAdd((o.Kind, o.Name), o))
                throw new InvalidOperationException($"The {side} catalog has {o.Kind} {o.Name} twice.");
        }
        return result;
    }

    [GeneratedRegex(@"^procrastinate_[A-Za-z0-9_]*_v[0-9]+$")]
    private static partial Regex PythonVersionedName();
}
