using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Npgsql;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 6: producers race on a few queueing-lock keys, inside transactions that commit or roll
/// back, while workers consume. At most one waiting job per key at every moment; every committed
/// job exists and runs; no rolled-back job exists.
/// </summary>
public sealed class S6QueueingLockRaceTests(ITestOutputHelper output)
{
    private static readonly Regex[] QueueingLockConflicts =
        [new(@"^ERROR:  duplicate key value violates unique constraint ""procrastinate_jobs_queueing_lock_idx_v1""$")];

    [Fact]
    public async Task S6_queueing_lock_races_with_rollbacks_keep_one_waiting_job_per_key_and_lose_nothing()
    {
        var duration = TimeSpan.FromSeconds(Soak.Pick(10, 60));
        const int keys = 5, producers = 8;
        await using var db = await ScenarioDb.CreateAsync("s6");
        await using var app = db.CreateApp();
        var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
        await using var producerSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = "rel-producer" }.ConnectionString);
        var workers = new List<RelWorker>();
        for (var i = 0; i < 2; i++)
            workers.Add(await db.StartWorkerAsync(new WorkerSettings { Concurrency = 2, Prefetch = 0 }.ToArgs()));

        var committed = new ConcurrentBag<long>();
        var rolledBack = new ConcurrentBag<long>();
        var ignoredCommitted = new ConcurrentBag<long>();
        long conflicts = 0, attempts = 0, maxWaiting = 0, samples = 0;
        var watch = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
        {
            var random = new Random(p);
            while (watch.Elapsed < duration)
            {
                Interlocked.Increment(ref attempts);
                var key = $"key-{random.Next(keys)}";
                var mode = random.Next(4);
                await using var connection = await producerSource.OpenConnectionAsync();
                await using var tx = await connection.BeginTransactionAsync();
                try
                {
                    var id = await ledger.DeferAsync(new LedgerArgs(random.Next(5, 40)), tx,
                        new DeferOptions { QueueingLock = key, IgnoreAlreadyEnqueued = mode >= 2 });
                    await Task.Delay(random.Next(0, 5));
                    if (mode == 0 || mode == 3)
                    {
                        await tx.CommitAsync();
                        (mode == 3 ? ignoredCommitted : committed).Add(id);
                    }
                    else
                    {
                        await tx.RollbackAsync();
                        if (mode == 1)
                            rolledBack.Add(id);
                    }
                }
                catch (AlreadyEnqueuedException)
                {
                    Interlocked.Increment(ref conflicts);
                    await tx.RollbackAsync();
                }
            }
        })).ToList();
        // The invariant, sampled while the race goes on.
        while (tasks.Any(t => !t.IsCompleted))
        {
            var waiting = await db.ScalarAsync<long>(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock IS NOT NULL GROUP BY queueing_lock) AS t");
            maxWaiting = Math.Max(maxWaiting, waiting);
            samples++;
            await Task.Delay(20);
        }
        await Task.WhenAll(tasks);
        await db.WaitAllFinalAsync(TimeSpan.FromSeconds(120));
        foreach (var w in workers)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        var existing = (await db.RowsAsync("SELECT id FROM procrastinate_jobs")).Select(r => (long)r[0]!).ToHashSet();
        var missing = committed.Concat(ignoredCommitted).Where(id => !existing.Contains(id)).Distinct().ToList();
        var ghosts = rolledBack.Where(existing.Contains).ToList();
        var verdict = await Checks.CollectAsync(db, new PresumedDead(), QueueingLockConflicts);
        var figures = verdict.Figures();
        figures["producers"] = producers;
        figures["keys"] = keys;
        figures["duration_s"] = duration.TotalSeconds;
        figures["defer_attempts"] = attempts;
        figures["committed"] = committed.Count;
        figures["committed_with_ignore_already_enqueued"] = ignoredCommitted.Count;
        figures["rolled_back"] = rolledBack.Count;
        figures["already_enqueued_conflicts"] = conflicts;
        figures["max_waiting_jobs_per_key_sampled"] = maxWaiting;
        figures["invariant_samples"] = samples;
        figures["committed_but_missing"] = missing.Count;
        figures["rolled_back_but_present"] = ghosts.Count;
        Figures.Record(output, "s6-queueing-lock-race", figures);

        Assert.Empty(missing);
        Assert.Empty(ghosts);
        Assert.True(maxWaiting <= 1, $"{maxWaiting} waiting jobs under one queueing lock");
        // Mode 0 commits, 1 rolls back, 2 (ignore-already-enqueued) rolls back, 3 (ignore-already-enqueued) commits.
        Assert.Equal(committed.Concat(ignoredCommitted).Distinct().Count(), (int)verdict.Jobs);
        Assert.True(conflicts > 0 && rolledBack.Count > 0, "the race did not happen");
        Assert.Equal(verdict.Jobs, verdict.Status("succeeded"));
        verdict.AssertClean();
        Assert.Equal(0, verdict.ExtraRuns);
    }
}
