using Procrastinate;

namespace Quickstart;

/// <summary>The seed example: a task that writes a + b to a file.</summary>
public static class Tasks
{
    // Connection from PROCRASTINATE_DATABASE_URL, else the PG* variables (see the README).
    public static readonly App App = new(new NpgsqlConnector());

    public static readonly JobTask<SumArgs> Sum = App.Task<SumArgs>(
        "sum",
        args => File.WriteAllText(OutputPath, (args.A + args.B).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        queue: "sums");

    /// <summary>Where <see cref="Sum"/> writes: QUICKSTART_OUTPUT, else "myfile" in the current directory.</summary>
    public static string OutputPath => Environment.GetEnvironmentVariable("QUICKSTART_OUTPUT") ?? "myfile";
}

/// <summary>Stored as <c>{"a": 3, "b": 5}</c>.</summary>
public sealed record SumArgs(int A, int B);
