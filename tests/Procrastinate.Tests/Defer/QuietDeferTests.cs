using System.Diagnostics;
using Npgsql;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Defer;

/// <summary>
/// Defers that leave their <c>job_inserted</c> notification to the connector, sent after their
/// commit (<c>DeferNotifier</c>): on the lean layout, when other defers of the same connector are
/// on their way, so that concurrent defers do not commit one after another on PostgreSQL's
/// notification lock. Idle workers still wake for each of them.
/// </summary>
public abstract class QuietDeferTests(DatabaseFixture db, bool lean) : IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static async Task<Task> StartIdleWorkerAsync(App app, CancellationToken cancellationToken)
    {
        // Polling far away: only a notification can bring a job in time.
        var run = app.RunWorkerAsync(new WorkerOptions { HandleSignals = false, FetchJobPollingInterval = TimeSpan.FromMinutes(5) }, cancellationToken);
        var deadline = Stopwatch.StartNew();
        while (app.Workers.FirstOrDefault() is not { IsListening: true, Id: > 0 } && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(20, CancellationToken.None);
        Assert.True(app.Workers.FirstOrDefault() is { IsListening: true }, "the worker did not start listening");
        await Task.Delay(300, CancellationToken.None); // its first claims, with nothing to claim
        return run;
    }

    [Fact]
    public async Task A_quiet_defer_wakes_an_idle_worker_after_its_commit()
    {
        var connector = new NpgsqlConnector(db.ConnectionString) { AlwaysQuietDefers = true };
        await using var app = new App(connector);
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = app.Task<SumArgs>("quiet_one", _ => ran.TrySetResult());
        using var cts = new CancellationTokenSource();
        var run = await StartIdleWorkerAsync(app, cts.Token);

        await task.DeferAsync(new SumArgs(1, 2));
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await connector.Notifier.FlushAsync();
        await cts.CancelAsync();
        await run;

        // On the lean layout the notification came from the connector, in a statement of its
        // own; the compatible layout's trigger (Procrastinate's) always notifies, so the
        // connector sends nothing there.
        Assert.Equal(lean ? 1L : 0L, connector.Notifier.Sent);
        Assert.Equal(0L, connector.Notifier.Failures);
    }

    [Fact]
    public async Task Concurrent_defers_are_quiet_on_the_lean_layout_and_every_job_runs_without_a_poll()
    {
        var connector = new NpgsqlConnector(db.ConnectionString);
        await using var app = new App(connector);
        var seen = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int Producers = 8, Each = 25;
        var task = app.Task<SumArgs>("quiet_many", _ =>
        {
            if (Interlocked.Increment(ref seen) == Producers * Each)
                all.TrySetResult();
        });
        var batch = app.Task<SumArgs>("quiet_batch", _ => { });
        using var cts = new CancellationTokenSource();
        var run = await StartIdleWorkerAsync(app, cts.Token);

        await Task.WhenAll(Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
        {
            for (var i = 0; i < Each; i++)
                await task.DeferAsync(new SumArgs(p, i));
        })).Append(Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
                await batch.DeferManyAsync([new SumArgs(i, 1), new SumArgs(i, 2)]);
        })));
        await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await connector.Notifier.FlushAsync();
        await cts.CancelAsync();
        await run;

        Assert.Equal(Producers * Each, seen);
        if (lean)
            Assert.True(connector.Notifier.Sent > 0, "no defer left its notification to the connector");
        else
            Assert.Equal(0L, connector.Notifier.Sent);
        Assert.Equal(0L, connector.Notifier.Failures);
        Assert.Equal(20L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'quiet_batch'"));
    }

    [Fact]
    public async Task The_insert_trigger_notifies_unless_the_transaction_says_its_client_will()
    {
        await using var listener = await db.DataSource.OpenConnectionAsync();
        var received = new List<string>();
        listener.Notification += (_, e) => received.Add(e.Payload);
        await using (var listen = new NpgsqlCommand("LISTEN procrastinate_any_queue_v1", listener))
            await listen.ExecuteNonQueryAsync();

        const string Insert = "INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'quiet_sql', '{}')";
        await db.ExecAsync($"BEGIN; SELECT set_config('procrastinate.dotnet_notify', 'after_commit', true); {Insert}; COMMIT;");
        await listener.WaitAsync(TimeSpan.FromMilliseconds(500));
        // The lean layout's trigger leaves it to the client; Procrastinate's always notifies.
        Assert.Equal(lean ? 0 : 1, received.Count);

        received.Clear();
        await db.ExecAsync(Insert);
        Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(5)), "no notification for a plain insert");
        Assert.Single(received);
        Assert.Contains("job_inserted", received[0], StringComparison.Ordinal);
    }
}

public sealed class QuietDeferCompatibleTests(DatabaseFixture db) : QuietDeferTests(db, lean: false), IClassFixture<DatabaseFixture>;

public sealed class QuietDeferLeanTests(LeanDatabaseFixture db) : QuietDeferTests(db, lean: true), IClassFixture<LeanDatabaseFixture>;
