using Microsoft.Playwright;

namespace Procrastinate.Dashboard.Tests.Infrastructure;

/// <summary>Screenshots of the pages: artifacts/screenshots/*.png at the repository root (not committed).</summary>
public static class Screenshots
{
    public static string Directory { get; } = Path.Combine(TestCluster.RepositoryRoot, "artifacts", "screenshots");

    public static async Task<string> SaveAsync(IPage page, string name)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var path = Path.Combine(Directory, name + ".png");
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        return path;
    }

    /// <summary>Copies a screenshot to docs/images, for the README.</summary>
    public static void Publish(string path, string name)
    {
        var target = Path.Combine(TestCluster.RepositoryRoot, "docs", "images", name);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(path, target, overwrite: true);
    }
}
