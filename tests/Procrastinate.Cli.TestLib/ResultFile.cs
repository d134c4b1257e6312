namespace Procrastinate.Cli.TestLib;

/// <summary>Where the test app's tasks write their results.</summary>
public static class ResultFile
{
    /// <summary>SUM_OUTPUT when set, else "myfile" in the working directory (as in the seed example).</summary>
    public static string Path => Environment.GetEnvironmentVariable("SUM_OUTPUT") is { Length: > 0 } path ? path : "myfile";

    public static void Write(string text) => File.WriteAllText(Path, text);

    private static readonly Lock Gate = new();

    // Jobs run concurrently: one writer at a time, or an append can fail on the shared file.
    public static void Append(string line)
    {
        lock (Gate)
            File.AppendAllText(Path, line + Environment.NewLine);
    }
}
