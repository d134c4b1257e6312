using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Procrastinate.Dashboard.Internal;

/// <summary>The stylesheet, script and icon, embedded in the assembly and served from the mount path.</summary>
internal static class Assets
{
    private sealed record Asset(byte[] Content, string ContentType, string ETag);

    private static readonly Dictionary<string, Asset> All = Load();

    /// <summary>Changes when any asset changes: links carry it, so browsers can cache assets for long.</summary>
    public static string Version { get; } = Convert.ToHexStringLower(
        SHA256.HashData(All.OrderBy(a => a.Key, StringComparer.Ordinal).SelectMany(a => a.Value.Content).ToArray()))[..12];

    private static Dictionary<string, Asset> Load()
    {
        const string prefix = "Procrastinate.Dashboard.Assets.";
        var assembly = typeof(Assets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var name = resource[prefix.Length..];
            var type = Path.GetExtension(name) switch
            {
                ".css" => "text/css; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "application/octet-stream",
            };
            assets[name] = new Asset(content, type, $"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\"");
        }
        return assets;
    }

    public static async Task WriteAsync(DashboardRequest request)
    {
        var context = request.Context;
        var name = context.Request.RouteValues["name"] as string;
        if (name is null || !All.TryGetValue(name, out var asset))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        var headers = context.Response.Headers;
        headers.ETag = asset.ETag;
        // Versioned links (?v=) never change content; others revalidate.
        headers.CacheControl = context.Request.Query.ContainsKey("v") ? "public, max-age=31536000, immutable" : "no-cache";
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            context.Response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        context.Response.ContentType = asset.ContentType;
        context.Response.ContentLength = asset.Content.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
            await context.Response.Body.WriteAsync(asset.Content, context.RequestAborted).ConfigureAwait(false);
    }
}
