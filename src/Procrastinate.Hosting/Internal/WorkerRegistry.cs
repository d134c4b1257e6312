namespace Procrastinate.Hosting.Internal;

/// <summary>The registration names of the hosted workers, in the order they were added.</summary>
internal sealed class WorkerRegistry
{
    private readonly List<string> _names = [];

    public IReadOnlyList<string> Names => _names;

    /// <summary>Adds <paramref name="name"/>; false when it is already there.</summary>
    public bool Add(string name)
    {
        if (_names.Contains(name, StringComparer.Ordinal))
            return false;
        _names.Add(name);
        return true;
    }
}
