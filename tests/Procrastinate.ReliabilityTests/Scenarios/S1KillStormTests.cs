using System.Diagnostics;
using Procrastinate.Reliability.Infrastructure;

namespace Procrastinate.Reliability.Scenarios;

/// <summary>
/// Scenario 1: 10,000 jobs while a random worker of four is SIGKILLed 20 times (soak: 50,000 and 100).
/// Zero lost; extra runs only for jobs that were running in a killed worker; every job of a killed
/// worker rescued within the stalled timeout plus one rescue interval plus 5 s.
/// </summary>
public sealed class S1KillStormTests(ITestOutputHelper output)
{
    /// <param name="Pid">The killed process.</param>
    /// <param name="At">Database clock just before the kill.</param>
    /// <param name="Held">The jobs the killed worker had claimed ('doing', running or buffered), with the id of their 'started' event.</param>
    /// <param name="Running">The jobs whose body was running (open ledger rows).</param>
    private sealed record Kill(int Pid, DateTime At, (long Job, long Started)[] Held, long[] Running);

    [Fact]
    public async Task S1_SIGKILLing_random_workers_loses_nothing_and_every_stalled_job_is_rescued_in_time()
    {
        var total = Soak.Pick(10_000, 50_000);
        var kills = Soak.Pick(20, 100);
        const int workers = 4;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var settings = new WorkerSettings { Concurrency = 4, StalledMs = 3000, HeartbeatMs = 500, RescueMs = 1000, PollMs = 1000 };
        var bound = settings.StalledTimeout + settings.RescueInterval + TimeSpan.FromSeconds(5);
        var watch = Stopwatch.StartNew();

        await using var db = await ScenarioDb.CreateAsync("s1");
        await using (var app = db.CreateApp())
        {
            var ledger = app.Task<LedgerArgs>(Contract.Ledger, _ => { });
            // 10 % of the jobs share one of 20 locks (chains of 50): their runs must never overlap.
            const int batch = 450, locked = 50, locks = 20;
            for (var b = 0; b < total / (batch + locked); b++)
            {
                await ledger.DeferManyAsync(Enumerable.Range(0, batch).Select(_ => new LedgerArgs(random.Next(10, 60))));
                await ledger.DeferManyAsync(Enumerable.Range(0, locked).Select(_ => new LedgerArgs(random.Next(10, 60))),
                    new DeferOptions { Lock = $"lock-{b % locks}" });
            }
        }
        var deferredIn = watch.Elapsed;

        var pool = new List<RelWorker>();
        for (var i = 0; i < workers; i++)
            pool.Add(await db.StartWorkerAsync(settings.ToArgs()));
        var presumed = new PresumedDead();
        var done = new List<Kill>();
        var processing = Stopwatch.StartNew();
        while (done.Count < kills)
        {
            var pending = await db.PendingAsync();
            if (pending == 0)
                break;
            // Kills are spread over the run by progress, so all of them happen while jobs are running.
            var target = total - total * (done.Count + 1) / (kills + 2);
            if (pending > target)
            {
                await Task.Delay(100);
                continue;
            }
            var busy = (await db.RowsAsync("SELECT DISTINCT pid FROM ledger WHERE ended_at IS NULL")).Select(r => (int)r[0]!).ToHashSet();
            var candidates = pool.Where(w => busy.Contains(w.Pid)).ToList();
            var victim = candidates.Count > 0 ? candidates[random.Next(candidates.Count)] : pool[random.Next(pool.Count)];
            var workerIds = (await db.RowsAsync("SELECT worker_id FROM procrastinate_dotnet_workers WHERE process_id = $1", victim.Pid))
                .Select(r => (long)r[0]!).ToArray();
            var at = await db.ClockAsync();
            await victim.KillAsync();
            presumed.Killed(victim.Pid);
            var held = (await db.RowsAsync("""
                    SELECT j.id, (SELECT max(e.id) FROM procrastinate_events AS e WHERE e.job_id = j.id AND e.type = 'started')
                    FROM procrastinate_jobs AS j WHERE j.status = 'doing' AND j.worker_id = ANY($1)
                    """, workerIds))
                .Select(r => ((long)r[0]!, (long)r[1]!)).ToArray();
            var running = (await db.RowsAsync("SELECT job_id FROM ledger WHERE pid = $1 AND ended_at IS NULL", victim.Pid))
                .Select(r => (long)r[0]!).ToArray();
            done.Add(new Kill(victim.Pid, at, held, running));
            pool.Remove(victim);
            pool.Add(await db.StartWorkerAsync(settings.ToArgs()));
        }
        var killsDoneAt = processing.Elapsed;

        await db.WaitAllFinalAsync(TimeSpan.FromSeconds(Soak.Pick(180, 900)));
        var drained = processing.Elapsed;
        foreach (var w in pool)
            Assert.True(await w.StopAsync(TimeSpan.FromSeconds(30)) == 0, w.Tail(3000));

        // Rescue time of every job a killed worker held (running or buffered): from the kill to
        // the event that took it out of 'doing'.
        var rescue = new List<(long Job, TimeSpan Took, bool Finished)>();
        var unaccounted = new List<long>();
        foreach (var kill in done)
        {
            foreach (var (job, started) in kill.Held)
            {
                // The first event that took the job out of 'doing' after the start the killed worker
                // held: a rescue, or an outcome the worker had sent just before dying.
                var row = (await db.RowsAsync("""
                    SELECT type::text, at FROM procrastinate_events
                    WHERE job_id = $1 AND id > $2 AND type IN ('deferred_for_retry', 'failed', 'succeeded', 'aborted')
                    ORDER BY id LIMIT 1
                    """, job, started)).SingleOrDefault();
                if (row is null)
                    unaccounted.Add(job);
                else
                    rescue.Add((job, (DateTime)row[1]! - kill.At, (string)row[0]! != "deferred_for_retry"));
            }
        }
        var rescued = rescue.Where(r => !r.Finished).ToList();
        var maxRescue = rescued.Count > 0 ? rescued.Max(r => r.Took) : TimeSpan.Zero;
        var runs = await Checks.RunsAsync(db);
        var killedPids = done.Select(k => k.Pid).ToHashSet();
        var heldNeverStarted = done.Sum(k => k.Held.Count(h => !runs.Any(r => r.JobId == h.Job && r.Pid == k.Pid)));

        var verdict = await Checks.CollectAsync(db, presumed, ServerLog.KilledClients);
        var figures = verdict.Figures();
        figures["seed"] = seed;
        figures["workers"] = workers;
        figures["worker_settings"] = string.Join(' ', settings.ToArgs());
        figures["kills"] = done.Count;
        figures["jobs_held_by_killed_workers"] = done.Sum(k => k.Held.Length);
        figures["jobs_running_in_killed_workers"] = done.Sum(k => k.Running.Length);
        figures["held_jobs_that_had_not_started"] = heldNeverStarted;
        figures["jobs_rescued"] = rescued.Count;
        figures["jobs_finished_by_an_in_flight_write"] = rescue.Count(r => r.Finished);
        figures["held_jobs_unaccounted"] = unaccounted.Count;
        figures["max_rescue_s"] = Math.Round(maxRescue.TotalSeconds, 2);
        figures["p50_rescue_s"] = rescued.Count > 0 ? Math.Round(rescued.OrderBy(r => r.Took).ElementAt(rescued.Count / 2).Took.TotalSeconds, 2) : 0;
        figures["rescue_bound_s"] = bound.TotalSeconds;
        figures["defer_s"] = Math.Round(deferredIn.TotalSeconds, 1);
        figures["kills_done_after_s"] = Math.Round(killsDoneAt.TotalSeconds, 1);
        figures["drained_after_s"] = Math.Round(drained.TotalSeconds, 1);
        figures["jobs_per_s"] = Math.Round(total / drained.TotalSeconds, 0);
        Figures.Record(output, "s1-kill-storm", figures);

        Assert.Equal(total, verdict.Jobs);
        Assert.Equal(kills, done.Count);
        Assert.True(unaccounted.Count == 0, $"held by killed workers, never left 'doing' afterwards: {string.Join(", ", unaccounted)}");
        Assert.Equal(total, verdict.Status("succeeded"));
        verdict.AssertClean();
        // Extra runs only for jobs that were running in a killed worker.
        var inKilled = done.Sum(k => k.Held.Select(h => h.Job).Union(k.Running).Count());
        Assert.True(verdict.ExtraRuns <= inKilled, $"{verdict.ExtraRuns} extra runs for {inKilled} jobs held by killed workers");
        Assert.True(maxRescue <= bound, $"slowest rescue took {maxRescue.TotalSeconds:F1} s; the bound is {bound.TotalSeconds:F1} s");
    }
}
