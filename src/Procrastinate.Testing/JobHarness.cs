using System.Collections.Concurrent;

namespace Procrastinate.Testing;

/// <summary>How one run of a job ended, as recorded by <see cref="JobHarness"/>.</summary>
/// <param name="Job">The job as it was claimed.</param>
/// <param name="Status">Succeeded, failed or aborted.</param>
/// <param name="Exception">What the task threw, if anything.</param>
/// <param name="RetryAt">When the job runs again, when its retry strategy asked for a retry.</param>
public sealed record JobRun(Job Job, JobStatus Status, Exception? Exception, DateTimeOffset? RetryAt)
{
    /// <summary>True when the run failed and the job goes back to the queue.</summary>
    public bool Retried => RetryAt is not null;
}

/// <summary>
/// Runs every due job now, in the test's process, through the real worker code (same
/// middleware, retries, locks and outcomes), and returns what ran. With a
/// <see cref="ManualTimeProvider"/>, advance the clock to make scheduled and retried jobs due.
/// Works with any connector; with <see cref="InMemoryConnector"/> no database is needed.
/// </summary>
public sealed class JobHarness(App app)
{
    /// <summary>Stop after this many runs (a job retrying forever would otherwise never end). Default 10,000.</summary>
    public int MaxRuns { get; init; } = 10_000;

    /// <summary>Runs the due jobs of <paramref name="queues"/> (all when null) until none is left; returns the runs in order.</summary>
    /// <exception cref="InvalidOperationException">More than <see cref="MaxRuns"/> runs happened.</exception>
    public async Task<IReadOnlyList<JobRun>> RunDueJobsAsync(IReadOnlyList<string>? queues = null, CancellationToken cancellationToken = default)
    {
        var runs = new ConcurrentQueue<JobRun>();
        using var tooMany = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await app.RunWorkerAsync(Options(queues, runs, tooMany), tooMany.Token).ConfigureAwait(false);
        return Result(runs);
    }

    /// <inheritdoc cref="RunDueJobsAsync"/>
    public IReadOnlyList<JobRun> RunDueJobs(IReadOnlyList<string>? queues = null)
    {
        var runs = new ConcurrentQueue<JobRun>();
        using var tooMany = new CancellationTokenSource();
        app.RunWorker(Options(queues, runs, tooMany), tooMany.Token);
        return Result(runs);
    }

    private WorkerOptions Options(IReadOnlyList<string>? queues, ConcurrentQueue<JobRun> runs, CancellationTokenSource tooMany) => new()
    {
        Name = "test-harness",
        Queues = queues,
        Concurrency = 1,
        Wait = false,
        HandleSignals = false,
        ListenNotify = false,
        StalledJobs = StalledJobPolicy.Ignore,
        EnablePeriodic = false,
        OutcomeObserver = outcome =>
        {
            runs.Enqueue(new JobRun(outcome.Job, outcome.Status, outcome.Exception, outcome.Retry?.RetryAt));
            if (runs.Count >= MaxRuns)
                tooMany.Cancel();
        },
    };

    private IReadOnlyList<JobRun> Result(ConcurrentQueue<JobRun> runs)
    {
        if (runs.Count >= MaxRuns)
            throw new InvalidOperationException($"The harness stopped after {MaxRuns} runs: a job may be retrying forever.");
        return [.. runs];
    }
}
