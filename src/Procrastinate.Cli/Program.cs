using Procrastinate.Cli.Internal;

// The `procrastinate` tool: the app comes from --app / PROCRASTINATE_APP, or there is none.
var runner = new CliRunner(CliConsole.System(), hostedApp: null);
await using (runner.ConfigureAwait(false))
    return await runner.RunAsync(args, CancellationToken.None).ConfigureAwait(false);
