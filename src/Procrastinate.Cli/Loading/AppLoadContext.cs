using System.Reflection;
using System.Runtime.Loader;

namespace Procrastinate.Cli.Loading;

/// <summary>
/// Loads a user's compiled app and its own dependencies (through its <c>.deps.json</c>), isolated
/// from the tool's. The assemblies whose types cross the boundary come from the tool: Procrastinate
/// (so the app's <see cref="App"/> is the type the tool knows), Npgsql, and Microsoft.Extensions.*
/// (logging and DI abstractions appear in <see cref="AppOptions"/>).
/// </summary>
internal sealed class AppLoadContext : AssemblyLoadContext
{
    private readonly AssemblyDependencyResolver _resolver;

    public AppLoadContext(string mainAssemblyPath)
        : base($"procrastinate-app:{Path.GetFileName(mainAssemblyPath)}", isCollectible: false)
    {
        _resolver = new AssemblyDependencyResolver(mainAssemblyPath);
    }

    /// <summary>True for the assemblies the app shares with the tool when the tool has them.</summary>
    public static bool IsShared(AssemblyName name) => name.Name is { } simple && (
        simple.Equals("Procrastinate", StringComparison.OrdinalIgnoreCase)
        || simple.StartsWith("Procrastinate.", StringComparison.OrdinalIgnoreCase)
        || simple.Equals("Npgsql", StringComparison.OrdinalIgnoreCase)
        || simple.StartsWith("Microsoft.Extensions.", StringComparison.OrdinalIgnoreCase));

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (IsShared(assemblyName))
        {
            try
            {
                return Default.LoadFromAssemblyName(assemblyName);
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException)
            {
                // The tool does not ship it (say, the app's own Procrastinate.Hosting), or ships an
                // older version: the app's copy is used.
            }
        }
        var path = _resolver.ResolveAssemblyToPath(assemblyName);
        // Null falls back to the default context (the shared framework, the tool's own assemblies).
        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}
