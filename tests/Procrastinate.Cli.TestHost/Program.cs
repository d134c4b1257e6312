using Procrastinate;
using Procrastinate.Cli.TestHost;

return await Apps.Main.RunCliAsync(args);

namespace Procrastinate.Cli.TestHost
{
    public static class Apps
    {
        public static readonly App Main = new(new NpgsqlConnector());

        public static readonly App Reports = new(new NpgsqlConnector());

        public static readonly JobTask<ProductArgs> Product = Main.Task<ProductArgs>(
            "product",
            args => File.WriteAllText(Environment.GetEnvironmentVariable("SUM_OUTPUT") ?? "myfile",
                (args.A * args.B).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            queue: "products");

        public static readonly JobTask<ProductArgs> Report = Reports.Task<ProductArgs>("report", _ => { }, queue: "reports");
    }

    public sealed record ProductArgs(int A, int B);

    /// <summary>An app whose connection is written in code (to a server that is not there).</summary>
    public static class Pinned
    {
        public static readonly App App = new(new NpgsqlConnector("Host=127.0.0.1;Port=1;Database=pinned;Timeout=5"));
    }

    /// <summary>An app whose type initializer throws, for the loader's error test.</summary>
    public static class Broken
    {
        public static readonly App App = Create();

        private static App Create() => throw new InvalidOperationException("the broken app refuses to start");
    }
}
