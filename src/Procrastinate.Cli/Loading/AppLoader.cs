using System.Reflection;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Loading;

/// <summary>An app found in a user's assembly, and how to name it in messages.</summary>
internal sealed record LoadedApp(App App, string Description);

/// <summary>
/// Finds the user's <see cref="App"/>: <c>MyCode.dll</c> (the single public static field or property
/// of type <see cref="App"/> in the assembly) or <c>MyCode.dll:Namespace.Type.Member</c>.
/// Reading the member runs its type's initializer, which registers the tasks.
/// </summary>
internal static class AppLoader
{
    private const BindingFlags AnyStatic = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <param name="spec">The value of <c>--app</c> or <c>PROCRASTINATE_APP</c>.</param>
    /// <param name="source">Where the value came from, for messages (<c>--app</c>, <c>PROCRASTINATE_APP</c>).</param>
    public static LoadedApp Load(string spec, string source)
    {
        var (path, member) = Split(spec);
        var fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
            throw new CliException($"{source}: '{path}' is a directory; name the app's compiled assembly, such as {Path.Combine(path, "bin", "Release", "net10.0", "MyCode.dll")}.");
        if (!File.Exists(fullPath))
            throw new CliException($"{source}: the file '{path}' does not exist (expected the app's compiled assembly, such as MyCode/bin/Release/net10.0/MyCode.dll).");

        Assembly assembly;
        try
        {
            assembly = new AppLoadContext(fullPath).LoadFromAssemblyPath(fullPath);
        }
        catch (BadImageFormatException e)
        {
            throw new CliException($"{source}: '{path}' is not a .NET assembly.", innerException: e);
        }
        catch (FileLoadException e)
        {
            throw new CliException($"{source}: '{path}' could not be loaded: {e.Message}", innerException: e);
        }

        var fileName = Path.GetFileName(fullPath);
        var (holder, found) = member is null ? FindSingle(assembly, fileName, source) : FindNamed(assembly, fileName, member, source);
        var description = $"{fileName}:{Describe(holder, found)}";
        return new LoadedApp(Read(found, description, source), description);
    }

    /// <summary>Splits <c>path.dll:Namespace.Type.Member</c>; a colon elsewhere (C:\...) stays in the path.</summary>
    internal static (string Path, string? Member) Split(string spec)
    {
        spec = spec.Trim();
        foreach (var extension in new[] { ".dll:", ".exe:" })
        {
            var index = spec.LastIndexOf(extension, StringComparison.OrdinalIgnoreCase);
            if (index > 0)
            {
                var member = spec[(index + extension.Length)..].Trim();
                return (spec[..(index + extension.Length - 1)], member.Length == 0 ? null : member);
            }
        }
        return (spec, null);
    }

    private static (Type Holder, MemberInfo Member) FindSingle(Assembly assembly, string fileName, string source)
    {
        var candidates = AppMembers(assembly, publicOnly: true).ToList();
        if (candidates.Count == 0 && ForeignAppMember(assembly) is { } foreign)
            throw new CliException($"{source}: {fileName}'s {Describe(foreign.Holder, foreign.Member)} is not a Procrastinate.App{ForeignAppHint(MemberType(foreign.Member))}.");
        return candidates.Count switch
        {
            1 => candidates[0],
            0 => throw new CliException(
                $"{source}: {fileName} has no public static field or property of type Procrastinate.App; " +
                $"declare one (public static readonly App App = new(...)) or name it with {fileName}:Namespace.Type.Member."),
            _ => throw new CliException(
                $"{source}: {fileName} has several public static App members ({string.Join(", ", candidates.Select(c => Describe(c.Holder, c.Member)))}); " +
                $"choose one with {fileName}:{Describe(candidates[0].Holder, candidates[0].Member)}."),
        };
    }

    private static (Type Holder, MemberInfo Member) FindNamed(Assembly assembly, string fileName, string name, string source)
    {
        var dot = name.LastIndexOf('.');
        var typeName = dot > 0 ? name[..dot] : null;
        var memberName = dot > 0 ? name[(dot + 1)..] : name;
        var type = typeName is null ? null : assembly.GetType(typeName, throwOnError: false);
        if (type is not null)
        {
            var member = (MemberInfo?)type.GetField(memberName, AnyStatic) ?? type.GetProperty(memberName, AnyStatic);
            if (member is null)
            {
                var here = AppMembersOf(type, publicOnly: false).Select(m => m.Name).ToList();
                throw new CliException(
                    $"{source}: type {typeName} in {fileName} has no static field or property '{memberName}'" +
                    (here.Count > 0 ? $"; its App members: {string.Join(", ", here)}." : "; it has no static App member."));
            }
            if (!IsApp(MemberType(member)))
                throw new CliException($"{source}: {name} in {fileName} is a {MemberType(member)}, not a Procrastinate.App{ForeignAppHint(MemberType(member))}.");
            return (type, member);
        }
        // The name may be a type: take its single static App member.
        if (assembly.GetType(name, throwOnError: false) is { } holder)
        {
            var members = AppMembersOf(holder, publicOnly: false).ToList();
            return members.Count == 1
                ? (holder, members[0])
                : throw new CliException(members.Count == 0
                    ? $"{source}: type {name} in {fileName} has no static App member."
                    : $"{source}: type {name} in {fileName} has several App members ({string.Join(", ", members.Select(m => m.Name))}); name one, as {fileName}:{name}.{members[0].Name}.");
        }
        var all = AppMembers(assembly, publicOnly: false).Select(c => Describe(c.Holder, c.Member)).ToList();
        throw new CliException(
            $"{source}: {fileName} has no type {typeName ?? name}" +
            (all.Count > 0 ? $"; App members found: {string.Join(", ", all)}." : "; it has no static App member either."));
    }

    private static App Read(MemberInfo member, string description, string source)
    {
        object? value;
        try
        {
            value = member switch
            {
                FieldInfo field => field.GetValue(null),
                PropertyInfo property => property.GetValue(null),
                _ => null,
            };
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw Initialization(e.InnerException, description, source);
        }
        catch (TypeInitializationException e)
        {
            throw Initialization(e, description, source);
        }
        return value as App ?? throw new CliException($"{source}: {description} is null.");
    }

    private static CliException Initialization(Exception e, string description, string source)
    {
        var cause = e;
        while (cause is TypeInitializationException or TargetInvocationException && cause.InnerException is not null)
            cause = cause.InnerException;
        return new CliException($"{source}: reading {description} failed: {cause.GetType().Name}: {cause.Message}", innerException: e);
    }

    private static IEnumerable<(Type Holder, MemberInfo Member)> AppMembers(Assembly assembly, bool publicOnly) =>
        LoadableTypes(assembly)
            .Where(t => !t.IsGenericTypeDefinition)
            .SelectMany(t => AppMembersOf(t, publicOnly).Select(m => (t, m)));

    private static IEnumerable<MemberInfo> AppMembersOf(Type type, bool publicOnly)
    {
        var flags = publicOnly ? BindingFlags.Static | BindingFlags.Public | BindingFlags.DeclaredOnly : AnyStatic;
        foreach (var field in type.GetFields(flags))
            if (IsApp(field.FieldType) && !field.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute)))
                yield return field;
        foreach (var property in type.GetProperties(flags))
            if (IsApp(property.PropertyType) && property.GetIndexParameters().Length == 0 && property.GetMethod is not null)
                yield return property;
    }

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            var loaded = e.Types.OfType<Type>().ToList();
            if (loaded.Count == 0 && e.LoaderExceptions.FirstOrDefault(x => x is not null) is { } first)
                throw new CliException($"the types of {assembly.GetName().Name} could not be loaded: {first.Message}", innerException: e);
            return loaded;
        }
    }

    private static bool IsApp(Type type) => typeof(App).IsAssignableFrom(type);

    /// <summary>A static member typed with another copy of Procrastinate's App (a version the tool cannot share).</summary>
    private static (Type Holder, MemberInfo Member)? ForeignAppMember(Assembly assembly) =>
        LoadableTypes(assembly)
            .Where(t => !t.IsGenericTypeDefinition)
            .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.DeclaredOnly).Cast<MemberInfo>()
                .Concat(t.GetProperties(BindingFlags.Static | BindingFlags.Public | BindingFlags.DeclaredOnly))
                .Where(m => MemberType(m).FullName == typeof(App).FullName && !IsApp(MemberType(m)))
                .Select(m => ((Type, MemberInfo)?)(t, m)))
            .FirstOrDefault();

    private static Type MemberType(MemberInfo member) => member switch
    {
        FieldInfo f => f.FieldType,
        PropertyInfo p => p.PropertyType,
        _ => typeof(void),
    };

    private static string ForeignAppHint(Type type) =>
        type.FullName == typeof(App).FullName
            ? $" as this tool knows it (the app uses Procrastinate {type.Assembly.GetName().Version}, the tool {typeof(App).Assembly.GetName().Version}; use matching versions)"
            : "";

    private static string Describe(Type holder, MemberInfo member) => $"{holder.FullName}.{member.Name}";
}
