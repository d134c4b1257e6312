using Quickstart;

// dotnet run -- [schema|defer|worker|all]
//   schema  installs the schema (idempotent)
//   defer   defers sum(a=3, b=5)
//   worker  runs a one-shot worker on the "sums" queue
//   all     the three, in order (the default)
var step = args.Length > 0 ? args[0] : "all";
var app = Tasks.App;

if (step is "schema" or "all")
    Console.WriteLine(await app.Schema.ApplyAsync());

if (step is "defer" or "all")
{
    // In your own program, the defer usually happens while the app is open...
    await using (await app.OpenAsync())
    {
        var id = await Tasks.Sum.DeferAsync(new SumArgs(3, 5));
        Console.WriteLine($"Deferred job {id}");
    }
}

if (step is "worker" or "all")
{
    // ...and the worker usually runs in another program. Wait = false stops it once the queue is empty.
    await app.RunWorkerAsync(new Procrastinate.WorkerOptions { Queues = ["sums"], Wait = false });
    Console.WriteLine($"{Tasks.OutputPath} contains: {await File.ReadAllTextAsync(Tasks.OutputPath)}");
}
