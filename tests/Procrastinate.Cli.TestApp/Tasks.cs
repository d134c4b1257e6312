using Procrastinate.Cli.TestLib;

namespace Procrastinate.Cli.TestApp;

public static class Tasks
{
    // Connection from PROCRASTINATE_DATABASE_URL, else the PG* variables.
    public static readonly App App = new(new NpgsqlConnector());

    public static readonly JobTask<SumArgs> Sum = App.Task<SumArgs>(
        "sum",
        args => ResultFile.Write((args.A + args.B).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        queue: "sums");

    /// <summary>Appends its number to the result file; for draining many jobs.</summary>
    public static readonly JobTask<CountArgs> Count = App.Task<CountArgs>(
        "count",
        args => ResultFile.Append(args.N.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        queue: "counts");

    /// <summary>Sleeps until aborted (or for the given milliseconds).</summary>
    public static readonly JobTask<SleepArgs> Sleep = App.Task<SleepArgs>(
        "sleep",
        async (args, context, cancellationToken) => await Task.Delay(args.Ms, cancellationToken),
        queue: "sleeps");

    /// <summary>Always throws, for retry tests.</summary>
    public static readonly JobTask<FailArgs> Fail = App.Task<FailArgs>(
        "fail",
        args => throw new InvalidOperationException(args.Message),
        queue: "fails");
}

public sealed record SumArgs(int A, int B);   // stored as {"a": 3, "b": 5}

public sealed record CountArgs(int N);

public sealed record SleepArgs(int Ms);

public sealed record FailArgs(string Message);
