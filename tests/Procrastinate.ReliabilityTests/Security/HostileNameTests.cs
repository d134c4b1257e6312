using System.Collections.Concurrent;
using System.Diagnostics;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Security;

public sealed record EchoArgs(string Value);

/// <summary>
/// Hostile names everywhere a name is accepted (task names, aliases, blueprint namespaces, queues,
/// locks, queueing locks, periodic ids, worker names, job-manager filters): each is stored and read
/// back verbatim, never executed. A canary table must survive, and LISTEN on quoted channel names
/// must work (a job on a hostile queue starts through its notification, not the 30 s poll).
/// </summary>
public sealed class HostileNameTests(ITestOutputHelper output)
{
    private static readonly string[] Hostile =
    [
        "x'; DROP TABLE canary; --",
        "\"; DROP TABLE canary; --",
        "a\"b\"\"c",
        "'); DELETE FROM procrastinate_jobs; --",
        "\\'; TRUNCATE canary; --\\",
        "$1 $$ {group} %s %n",
        "/* */ -- LISTEN x; NOTIFY y",
        "ж\u202Eevil\u202C 😀 \t\r\n end",
        "procrastinate_any_queue_v1",
    ];

    /// <summary>Queue names are limited to 40 bytes (channel names): the same ideas, shorter.</summary>
    private static readonly string[] HostileQueues =
    [
        "q'; DROP TABLE canary;--",
        "q\"; DROP TABLE canary;--",
        "q\\\"'\"\"",
        "$1;{group};%s",
        "ж\u202E😀 \t\n",
    ];

    [Fact]
    public async Task Hostile_names_are_stored_verbatim_and_never_executed()
    {
        await using var db = await ScenarioDb.CreateAsync("hostile");
        await db.ExecAsync("CREATE TABLE canary (x int); INSERT INTO canary VALUES (1)");
        var logs = new CapturingLoggerProvider();
        using var factory = CapturingLoggerProvider.Factory(logs);
        await using var app = new App(new NpgsqlConnector(db.ConnectionString), new AppOptions { LoggerFactory = factory });

        var received = new ConcurrentDictionary<long, (string Task, string Value, string Queue)>();
        var tasks = new List<JobTask<EchoArgs>>();
        for (var i = 0; i < Hostile.Length; i++)
        {
            var queue = HostileQueues[i % HostileQueues.Length];
            tasks.Add(app.Task<EchoArgs>(Hostile[i], (args, context) =>
                received[context.Job.Id] = (context.Job.TaskName, args.Value, context.Job.Queue),
                queue: queue, aliases: [Hostile[i] + " (alias)"]));
        }
        var blueprint = new Blueprint();
        var nested = blueprint.Task<EchoArgs>(Hostile[0], (args, context) => received[context.Job.Id] = (context.Job.TaskName, args.Value, context.Job.Queue),
            queue: HostileQueues[0]);
        app.AddBlueprint(blueprint, "ns'; DROP TABLE canary; --");
        var periodic = tasks[1];
        periodic.Periodic("* * * * * *", periodicId: Hostile[2], args: new EchoArgs("tick"));

        // Defer through every path, with hostile locks and queueing locks.
        var expected = new Dictionary<long, (string Task, string Queue, string? Lock, string? QueueingLock)>();
        for (var i = 0; i < tasks.Count; i++)
        {
            var options = new DeferOptions { Lock = Hostile[(i + 3) % Hostile.Length], QueueingLock = Hostile[(i + 5) % Hostile.Length] };
            var id = await tasks[i].DeferAsync(new EchoArgs(Hostile[i]), options);
            expected[id] = (tasks[i].Name, tasks[i].Queue, options.Lock, options.QueueingLock);
        }
        var aliasId = await app.DeferAsync(Hostile[4] + " (alias)", """{"value": "by alias"}""", new DeferOptions { Queue = HostileQueues[2] });
        expected[aliasId] = (Hostile[4] + " (alias)", HostileQueues[2], null, null);
        var nestedId = await nested.DeferAsync(new EchoArgs("nested"));
        expected[nestedId] = (nested.Name, HostileQueues[0], null, null);
        var batch = await tasks[5].DeferManyAsync([new EchoArgs("b1"), new EchoArgs("b2")], new DeferOptions { Lock = Hostile[6] });
        foreach (var id in batch)
            expected[id] = (tasks[5].Name, tasks[5].Queue, Hostile[6], null);

        // Stored verbatim.
        foreach (var (id, e) in expected)
        {
            var row = (await db.RowsAsync("SELECT task_name, queue_name, lock, queueing_lock FROM procrastinate_jobs WHERE id = $1", id)).Single();
            Assert.Equal(e.Task, row[0]);
            Assert.Equal(e.Queue, row[1]);
            Assert.Equal(e.Lock, row[2]);
            Assert.Equal(e.QueueingLock, row[3]);
        }

        // The job manager filters by hostile values.
        foreach (var (id, e) in expected.Take(4))
        {
            Assert.Contains(id, (await app.Jobs.ListAsync(new JobFilter { Task = e.Task, Queue = e.Queue, Lock = e.Lock, QueueingLock = e.QueueingLock })).Select(j => j.Id));
            Assert.Contains((await app.Jobs.ListQueuesAsync(new JobFilter { Queue = e.Queue })), c => c.Name == e.Queue);
            Assert.Contains((await app.Jobs.ListTasksAsync(new JobFilter { Task = e.Task })), c => c.Name == e.Task);
            Assert.Empty(await app.Jobs.ListStalledJobsAsync(queue: e.Queue, taskName: e.Task));
        }

        // A worker with a hostile name serving the hostile queues (LISTEN on quoted channel names);
        // polling every 30 s, so a fast start means a notification arrived.
        using var stop = new CancellationTokenSource();
        var workerName = Hostile[0] + " " + Hostile[1];
        var run = app.RunWorkerAsync(new WorkerOptions
        {
            Name = workerName, Queues = HostileQueues, Concurrency = 4, HandleSignals = false,
            FetchJobPollingInterval = TimeSpan.FromSeconds(30), UpdateHeartbeatInterval = TimeSpan.FromMilliseconds(500),
        }, stop.Token);
        await ScenarioDb.WaitUntilAsync(() => Task.FromResult(expected.Keys.All(received.ContainsKey)), TimeSpan.FromSeconds(30), "every job run");
        await Task.Delay(200);
        var probe = Stopwatch.StartNew();
        var lateId = await tasks[3].DeferAsync(new EchoArgs("through LISTEN"));
        await ScenarioDb.WaitUntilAsync(() => Task.FromResult(received.ContainsKey(lateId)), TimeSpan.FromSeconds(20), "a job started by notification");
        var notified = probe.Elapsed;
        await ScenarioDb.WaitUntilAsync(async () => await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_periodic_defers WHERE periodic_id = $1", Hostile[2]) > 0,
            TimeSpan.FromSeconds(10), "a periodic defer with the hostile id");
        var workerRow = Assert.Single(await app.Jobs.ListWorkersAsync());
        await stop.CancelAsync();
        await run;

        foreach (var (id, e) in expected)
        {
            Assert.Equal(e.Task, received[id].Task);
            Assert.Equal(e.Queue, received[id].Queue);
        }
        for (var i = 0; i < tasks.Count; i++)
            Assert.Contains(received.Values, r => r.Value == Hostile[i]);
        Assert.Equal(workerName, workerRow.Name);
        Assert.Equal(HostileQueues, workerRow.Queues);
        Assert.True(notified < TimeSpan.FromSeconds(10), $"the job on a hostile queue started after {notified.TotalSeconds:F1} s (poll 30 s)");
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM canary"));
        Assert.Equal((long)expected.Count + 1, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' AND id = ANY($1)", expected.Keys.Append(lateId).ToArray()));
        var unexpected = ServerLog.Unexpected(db.LogMark, db.Name, []);
        Assert.True(unexpected.Count == 0, string.Join('\n', unexpected));
        Figures.Record(output, "security-hostile-names", new Dictionary<string, object?>
        {
            ["hostile_strings"] = Hostile.Length,
            ["hostile_queues"] = HostileQueues.Length,
            ["jobs"] = expected.Count + 1,
            ["notification_start_s"] = Math.Round(notified.TotalSeconds, 2),
            ["canary_rows"] = 1,
        });
    }
}
