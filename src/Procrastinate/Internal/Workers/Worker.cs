using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Procrastinate.Internal.Workers;

/// <summary>
/// One worker: a fetcher claiming up to the free slots in one statement, executors running the
/// jobs, a completer writing outcomes in batches, a listener, and side loops (heartbeat, abort
/// polling). See DESIGN.md section 4 and COMPAT.md 3.14 for the order of database calls.
/// </summary>
internal sealed partial class Worker
{
    private const int MaxCompletionBatch = 500;

    /// <summary>
    /// Outcomes not yet written at which claims pause: a full batch being written and a second one
    /// gathering behind it. Pausing at one full batch made the claim wait for each completion
    /// statement, so the two statements took turns instead of running side by side (drains of
    /// no-op jobs about a fifth slower).
    /// </summary>
    private const int MaxUnwrittenOutcomes = 2 * MaxCompletionBatch;
    private const string AnyQueueChannel = "procrastinate_any_queue_v1";
    private const string QueueChannelPrefix = "procrastinate_queue_v1#";
    private static readonly TimeSpan CompletionGiveUpAfterStop = TimeSpan.FromSeconds(30);

    private readonly App _app;
    private readonly WorkerOptions _options;
    private readonly Connector _store;
    private readonly ILogger _log;
    private readonly bool _logScopes;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<long, RunningJob> _running = new();
    private int _held; // _running's size, read on every fetch decision (ConcurrentDictionary.Count takes every lock)
    private readonly ConcurrentQueue<RunningJob> _buffer = new();
    private int _executing; // executor slots taken: executors running (or queued to run) buffered jobs
    private int _executorQueued; // NoneQueued, Queued (a new executor has not looked at the buffer yet), or QueuedOwingNotify
    private TaskCompletionSource? _drained; // set at stop; completed when the last executor leaves
    private volatile bool _draining;
    // Outcomes for the completer. Not a Channel: a writer that is about to go idle wakes the
    // completer on its own thread (AsyncSignal.SetInline) instead of a pool hop.
    private readonly ConcurrentQueue<JobOutcome> _outcomes = new();
    private readonly AsyncSignal _outcomesReady;
    private volatile bool _outcomesComplete;
    private readonly AsyncSignal _wake;
    private readonly AsyncSignal _vacuumDue;
    private long _claimedSinceVacuum;
    private readonly CancellationTokenSource _stopping = new();
    private string[]? _queues;
    private long _workerId;
    private int _pendingOutcomes;
    private long _databaseHealthySince; // monotonic timestamp of the first success after the last failure; 0: failing
    private volatile bool _lastFetchFull;
    private WorkerInfo _info = null!;

    public Worker(App app, WorkerOptions options)
    {
        _app = app;
        _options = options;
        _store = app.Connector;
        _log = options.LoggerFactory?.CreateLogger("Procrastinate") ?? app.Logger;
        _time = app.Options.TimeProvider;
        _wake = new AsyncSignal(_time);
        _outcomesReady = new AsyncSignal(_time);
        _vacuumDue = new AsyncSignal(_time);
        // NullLogger's scopes are no-ops; any other logger may hand the scope to the job's own log records.
        _logScopes = _log is not Microsoft.Extensions.Logging.Abstractions.NullLogger;
    }

    private sealed class RunningJob(Job job, JobContext context)
    {
        public Job Job { get; } = job;
        public JobContext Context { get; } = context;
        public DateTimeOffset? StartedAt { get; set; }
        public long ClaimedAt { get; init; }
    }

    public long WorkerId => Interlocked.Read(ref _workerId);

    public WorkerState State { get; private set; } = null!;

    private WorkerRegistration Registration =>
        new(_options.Name, Environment.MachineName, Environment.ProcessId, _queues, _options.Concurrency);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        _options.Validate();
        _queues = _options.Queues is { Count: > 0 } q ? [.. q.Distinct(StringComparer.Ordinal)] : null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = _options.HandleSignals ? RegisterSignals(stop) : null;
        // From the stop request on, no buffered job starts.
        using var stopStarting = stop.Token.Register(() => _draining = true);

        await _store.PingAsync(async: true, cancellationToken).ConfigureAwait(false);
        if (_store is NpgsqlConnector)
        {
            // Refuse to start on a database this version cannot use, with the reason.
            var health = await _app.Health.CheckDatabaseAsync(cancellationToken).ConfigureAwait(false);
            if (!health.IsHealthy)
                throw new SchemaException(health.Description);
        }
        var pruned = await _store.PruneStalledWorkersAsync(_options.StalledWorkerTimeout, cancellationToken).ConfigureAwait(false);
        if (pruned.Count > 0)
            Log.PrunedWorkers(_log, "prune_stalled_workers", pruned.Count);
        _workerId = await _store.RegisterWorkerAsync(Registration, cancellationToken).ConfigureAwait(false);
        _info = new WorkerInfo(_options.Name, _workerId, _queues);
        _databaseHealthySince = _time.GetTimestamp();
        State = new WorkerState(_options, _time.GetUtcNow());
        State.SetId(_workerId);
        _app.AddWorker(State);
        Log.WorkerStarted(_log, "start_worker", _options.Name, _workerId, _queues is null ? "all queues" : string.Join(", ", _queues), _options.Concurrency);

        using var side = new CancellationTokenSource();
        var sideLoops = new List<Task>
        {
            HeartbeatLoopAsync(side.Token),
            AbortPollLoopAsync(side.Token),
        };
        if (_options.ListenNotify)
            sideLoops.Add(ListenLoopAsync(side.Token));
        if (_options.StalledJobs != StalledJobPolicy.Ignore)
            sideLoops.Add(RescueLoopAsync(side.Token));
        var schedules = _app.Tasks.SelectMany(t => t.Schedules).ToList();
        sideLoops.Add(QueueDepthLoopAsync(side.Token));
        if (_options.VacuumAfterClaimedJobs > 0)
            sideLoops.Add(VacuumLoopAsync(_options.VacuumAfterClaimedJobs, side.Token));
        if (schedules.Count > 0 && _options.EnablePeriodic)
            sideLoops.Add(new PeriodicDeferrer(_store, schedules, _app.Options.PeriodicMaxDelay, _time, _log).RunAsync(side.Token));
        var completer = CompleterLoopAsync();
        try
        {
            await FetchLoopAsync(stop.Token).ConfigureAwait(false);
        }
        finally
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await DrainAsync().ConfigureAwait(false);
            _outcomesComplete = true;
            _outcomesReady.Set();
            await completer.ConfigureAwait(false);
            // Heartbeat and abort polling run until the last job has ended (COMPAT.md W12).
            await side.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(sideLoops).ConfigureAwait(false);
            try
            {
                await _store.UnregisterWorkerAsync(WorkerId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                Log.SideLoopError(_log, "stop_worker", "Unregistering the worker", TimeSpan.Zero, e);
            }
            _app.RemoveWorker(State);
            Log.WorkerStopped(_log, "stop_worker", _options.Name, WorkerId);
            _stopping.Dispose();
        }
    }

    // ---- Fetching ---------------------------------------------------------------------------

    /// <summary>Claimed jobs that may be held at once: running ones plus the local prefetch buffer.</summary>
    private int Capacity => _options.Concurrency + (_options.PrefetchJobs ?? AdaptivePrefetch());

    // Adaptive prefetch (PrefetchJobs null). The buffer may hold what the executors run in about
    // PrefetchWindow, judged from the mean run time of recent jobs, between Concurrency (the
    // floor, and all it holds before a first job has ended) and MaxAdaptivePrefetch; and no more
    // than about PrefetchArgsBudget characters of arguments. Short jobs are claimed a few hundred
    // at a time, so the claim and completion statements cost less per job (a worker at
    // Concurrency 10 drained no-op jobs 2 to 3 times faster); long jobs are not held back from
    // other workers. The cap: larger buffers did worse on 2 cores (a claim of many hundred rows
    // takes long enough for the executors to empty the half of the buffer left when it started).
    internal static readonly TimeSpan PrefetchWindow = TimeSpan.FromMilliseconds(100);
    internal const int MaxAdaptivePrefetch = 300;
    internal const double PrefetchArgsBudget = 8_000_000; // characters: about 16 MB of strings
    private const double MeanWeight = 0.1; // of each new run (or claim) in the moving means
    private double _meanRunSeconds = double.NaN; // racy moving mean: a lost update is harmless
    private double _meanArgsChars = double.NaN;

    private int AdaptivePrefetch()
    {
        var concurrency = _options.Concurrency;
        var run = Volatile.Read(ref _meanRunSeconds);
        if (double.IsNaN(run))
            return concurrency;
        var byTime = concurrency * PrefetchWindow.TotalSeconds / Math.Max(run, 1e-7);
        var args = Volatile.Read(ref _meanArgsChars);
        var byArgs = double.IsNaN(args) ? byTime : PrefetchArgsBudget / Math.Max(args, 1);
        return Math.Max(concurrency, (int)Math.Min(Math.Min(byTime, byArgs), MaxAdaptivePrefetch));
    }

    private static void UpdateMean(ref double mean, double sample)
    {
        var old = Volatile.Read(ref mean);
        Volatile.Write(ref mean, double.IsNaN(old) ? sample : old + (sample - old) * MeanWeight);
    }

    /// <summary>
    /// Whether a claim now is worth its round trip: an executor is idle with nothing buffered and
    /// no claim on its way, or enough of the capacity is free of held jobs and of the room of the
    /// claims on their way (half of it, or a claim's share when several may be on their way), so
    /// claims come in batches. Not while two full completion batches of outcomes wait to be
    /// written (<see cref="MaxUnwrittenOutcomes"/>): each is a job still 'doing' in the database,
    /// and claiming on would let them pile up (executors can outrun the completer by far) until
    /// the completion statement, whose cost grows with the 'doing' rows, stalls. The completer
    /// wakes the fetcher after the batch that relieves it.
    /// </summary>
    private bool ShouldFetch()
    {
        var inFlight = Volatile.Read(ref _claimsInFlight);
        var room = FreeRoom;
        return room > 0
            && inFlight < _options.ClaimsInFlight
            && UnwrittenOutcomes < MaxUnwrittenOutcomes
            && (inFlight == 0 && _buffer.IsEmpty && Volatile.Read(ref _executing) < _options.Concurrency
                || room >= Math.Max(1, Math.Min(Capacity / 2, ClaimShare)));
    }

    /// <summary>Capacity not taken by held jobs or by the room of the claims on their way.</summary>
    private int FreeRoom => Capacity - Volatile.Read(ref _held) - Volatile.Read(ref _reservedRoom);

    /// <summary>
    /// The most one claim may take: the whole capacity, or its share when several claims may be
    /// on their way and the capacity is large enough to split (<see cref="SplitClaimsFromCapacity"/>).
    /// </summary>
    private int ClaimShare
    {
        get
        {
            var capacity = Capacity;
            var claims = _options.ClaimsInFlight;
            return claims > 1 && capacity >= SplitClaimsFromCapacity ? (capacity + claims - 1) / claims : capacity;
        }
    }

    /// <summary>How many jobs a claim now may take: the free room, at most a claim's share and <see cref="Connector.MaxClaim"/>.</summary>
    private int ClaimRoom => Math.Min(Math.Min(FreeRoom, Connector.MaxClaim), ClaimShare);

    /// <summary>Below this capacity a worker sends one claim at a time whatever its options: halves would be too small.</summary>
    internal const int SplitClaimsFromCapacity = 100;
    private int _claimsInFlight; // written by the fetch loop, read by ShouldFetch anywhere
    private int _reservedRoom; // the room of the claims on their way, until their jobs are held

    /// <summary>Jobs that ended here and whose outcome is not written yet (still 'doing' in the database).</summary>
    private int UnwrittenOutcomes => Volatile.Read(ref _pendingOutcomes) - Volatile.Read(ref _held);

    /// <summary>A claim on its way: its room, and whether the worker held nothing and had no other claim on its way when it was sent.</summary>
    private sealed record PendingClaim(int Room, bool Idle, Task<IReadOnlyList<Job>> Jobs);

    private async Task FetchLoopAsync(CancellationToken stop)
    {
        var failures = 0;
        var claims = new Queue<PendingClaim>(2);
        var wokenMeanwhile = false; // woken while claims were on their way, with none back yet
        try
        {
            while (!stop.IsCancellationRequested)
            {
                // Whatever happens from here on (a claim coming back, a notification, room freed)
                // wakes the wait at the end of this turn.
                _wake.Reset();
                var shortClaim = false; // a claim came back with less than its room: nothing more to claim for now
                var takenIn = false;
                var jobsTakenIn = false; // ... and one of them brought jobs, whose executor is queued on this thread
                // Take in the claims that came back, oldest first: jobs start in the order they were claimed.
                while (claims.TryPeek(out var head) && head.Jobs.IsCompleted)
                {
                    claims.Dequeue();
                    takenIn = true;
                    var jobs = head.Jobs.IsCompletedSuccessfully ? head.Jobs.Result : [];
                    foreach (var job in jobs)
                        Claim(job);
                    jobsTakenIn |= jobs.Count > 0;
                    Interlocked.Add(ref _reservedRoom, -head.Room);
                    Interlocked.Decrement(ref _claimsInFlight);
                    if (!head.Jobs.IsCompletedSuccessfully)
                    {
                        var e = head.Jobs.Exception?.GetBaseException() ?? new OperationCanceledException(stop);
                        if (e is OperationCanceledException && stop.IsCancellationRequested)
                            return;
                        if (!IsTransient(e))
                            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
                        // It may have committed, its answer lost with the connection: look for its jobs
                        // before the next claim.
                        _orphanCheckDue = true;
                        var delay = Backoff(++failures);
                        Log.SideLoopError(_log, "fetch_job", "Fetching jobs", delay, e);
                        if (!await DelayAsync(delay, stop).ConfigureAwait(false))
                            return;
                        continue;
                    }
                    failures = 0;
                    if (_options.VacuumAfterClaimedJobs > 0 && jobs.Count > 0
                        && Interlocked.Add(ref _claimedSinceVacuum, jobs.Count) >= _options.VacuumAfterClaimedJobs)
                        _vacuumDue.Set();
                    StartExecutor();
                    _lastFetchFull = jobs.Count == head.Room;
                    shortClaim |= jobs.Count < head.Room;
                    if (jobs.Count == 0 && !_options.Wait && head.Idle && claims.Count == 0)
                        return; // one-shot: nothing left to do and every outcome is written
                }

                // A claim's return wakes this loop only once the claim is complete, so a wake that took
                // no claim in came from elsewhere: a notification, room freed. What it announced may
                // be newer than the claims on their way saw: claim again once they are back, even
                // if they came back short, as a claim sent after the wake would have seen it.
                if (!takenIn && claims.Count > 0)
                    wokenMeanwhile = true;
                if (shortClaim && wokenMeanwhile && claims.Count == 0)
                {
                    shortClaim = false;
                    wokenMeanwhile = false;
                }

                // After a short claim, wait for a reason to claim again (a notification, the poll;
                // in one-shot mode, the executors or the completer), unless in one-shot mode nothing
                // is left to wait for: that claim was sent while jobs were held or another claim was
                // on its way, so its emptiness proved nothing, and nothing will wake this loop now.
                var idleNow = Volatile.Read(ref _held) == 0 && Volatile.Read(ref _pendingOutcomes) == 0 && claims.Count == 0;
                // After a failed claim, no claim until its jobs, if it took any, are found (and
                // none while another claim is still on its way: its jobs would look the same).
                var orphansFound = !_orphanCheckDue;
                if (_orphanCheckDue && claims.Count == 0)
                {
                    try
                    {
                        orphansFound = await AdoptOrphanedJobsAsync(stop).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception e) when (IsTransient(e))
                    {
                        var delay = Backoff(++failures);
                        Log.SideLoopError(_log, "fetch_job", "Looking for the jobs of a failed claim", delay, e);
                        if (!await DelayAsync(delay, stop).ConfigureAwait(false))
                            return;
                        continue;
                    }
                }
                if (orphansFound && (!shortClaim || !_options.Wait && idleNow))
                {
                    while (ShouldFetch())
                    {
                        var room = ClaimRoom;
                        if (room <= 0)
                            break;
                        // Read before the claim: an empty claim only proves there is nothing left when all of
                        // this worker's outcomes were committed before its snapshot was taken, and no other
                        // claim of this worker was on its way.
                        var idle = Volatile.Read(ref _held) == 0 && Volatile.Read(ref _pendingOutcomes) == 0 && claims.Count == 0;
                        Interlocked.Add(ref _reservedRoom, room);
                        Interlocked.Increment(ref _claimsInFlight);
                        wokenMeanwhile = false; // this claim's snapshot comes after that wake
                        var task = _store.FetchJobsAsync(_queues, WorkerId, room, stop, _options.DurableClaims).AsTask();
                        claims.Enqueue(new PendingClaim(room, idle, task));
                        // Its return wakes this loop on the thread that completed it, as an await would.
                        _ = task.ContinueWith(static (_, signal) => ((AsyncSignal)signal!).SetInline(), _wake,
                            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                        // A worker with nothing to do asks once: a second claim beside it would find
                        // what the first leaves, and neither could prove the queue empty.
                        if (idle)
                            break;
                    }
                }

                // Sleep until a claim comes back, a notification, room worth refilling, the next
                // scheduled job, the poll interval, or stop. Without room, only a finished job (or
                // stop) can wake it.
                var timeout = claims.Count > 0 ? Timeout.InfiniteTimeSpan
                    : shortClaim && _options.Wait ? await PollDelayAsync(jobsTakenIn, stop).ConfigureAwait(false)
                    : _options.Wait && FreeRoom > 0 ? _options.FetchJobPollingInterval
                    : Timeout.InfiniteTimeSpan;
                try
                {
                    await _wake.WaitAsync(timeout, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            // Claims still on their way at stop: their jobs are held, so the drain gives them back.
            while (claims.TryDequeue(out var claim))
            {
                try
                {
                    foreach (var job in await claim.Jobs.ConfigureAwait(false))
                        Claim(job);
                }
                catch (Exception)
                {
                    // Cancelled by the stop, or failed: nothing of it is held here. An error that
                    // ended the loop is the one reported.
                }
                Interlocked.Add(ref _reservedRoom, -claim.Room);
                Interlocked.Decrement(ref _claimsInFlight);
            }
        }
    }

    // Set by the fetch loop when a claim failed, cleared once its jobs were looked for; read by the completer.
    private volatile bool _orphanCheckDue;

    /// <summary>
    /// A claim whose connection was lost after its commit, before its answer came back, took jobs
    /// that this worker does not hold: they are 'doing' under its id, and as it keeps heartbeating
    /// nobody would rescue them. After a failed claim, before the next one, the fetch loop looks
    /// for them and runs them, as if that claim had come back. The look needs a moment when every
    /// job that ended here has its outcome written (until then such a job is 'doing' too, and
    /// would look like one of them), so it waits for the completer; false while it waits. No other
    /// claim is on its way meanwhile: the fetch loop, the only one to claim, is here.
    /// </summary>
    private async Task<bool> AdoptOrphanedJobsAsync(CancellationToken stop)
    {
        // Outcomes pending = jobs held + jobs ended whose outcome is not written yet. No claim can
        // add to either meanwhile, and both only fall: equal counts mean that none of the second kind was left.
        var pending = Volatile.Read(ref _pendingOutcomes);
        var held = _running.Keys.ToArray(); // a snapshot: it takes every lock of the map
        if (held.Length != pending)
            return false; // the completer wakes this loop once it has written them
        var orphans = await _store.FetchOrphanedJobsAsync(WorkerId, held, stop).ConfigureAwait(false);
        _orphanCheckDue = false;
        if (orphans.Count > 0)
        {
            Log.OrphanedJobsAdopted(_log, "fetch_job", orphans.Count, string.Join(", ", orphans.Select(j => j.Id)));
            foreach (var job in orphans)
                Claim(job);
            StartExecutor();
        }
        return true;
    }

    // Read and written by the fetch loop only; _dueGeneration is bumped from the listener.
    private long _scheduledCheckedAtTicks;
    private long _scheduledCheckedGeneration;
    private long _dueGeneration;
    private DateTimeOffset? _nextDue;
    private static readonly TimeSpan DueMargin = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Forget when the next scheduled job is due (a notification may announce a new one). A
    /// generation rather than a cleared timestamp: an invalidation that lands while the fetch loop
    /// is reading the due time must not be overwritten by that read's (older) answer.
    /// </summary>
    private void InvalidateNextDue() => Interlocked.Increment(ref _dueGeneration);

    /// <summary>
    /// The polling interval, shortened when a scheduled job becomes due sooner. The due time is
    /// read from the database at most once a second, and again after any notification.
    /// </summary>
    private async Task<TimeSpan> PollDelayAsync(bool tookJobsIn, CancellationToken stop)
    {
        var now = _time.GetUtcNow();
        var generation = Interlocked.Read(ref _dueGeneration);
        if (generation != _scheduledCheckedGeneration || now.UtcTicks - _scheduledCheckedAtTicks >= TimeSpan.TicksPerSecond || _nextDue <= now)
        {
            // Jobs were buffered on this thread a moment ago, and their executor is queued
            // behind this loop on it: let it start them before this round trip is sent.
            if (tookJobsIn)
                await Task.Yield();
            try
            {
                var next = await _store.NextScheduledDelayAsync(_queues, stop).ConfigureAwait(false);
                // From the time the answer came back, plus a margin, so that the wake-up's claim
                // never runs before the job is due by the database's clock: the query skips jobs
                // already due, so a claim a moment too early would miss the job and the next read
                // would no longer see it (it would then wait a whole polling interval). Timers
                // may fire a few milliseconds early (Linux's coarse tick clock).
                _nextDue = next is { } delay ? _time.GetUtcNow() + delay + DueMargin : null;
                _scheduledCheckedAtTicks = now.UtcTicks;
                _scheduledCheckedGeneration = generation;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return _options.FetchJobPollingInterval;
            }
            catch (Exception e) when (IsTransient(e))
            {
                return _options.FetchJobPollingInterval; // polling covers it
            }
        }
        if (_nextDue is { } due && due - now < _options.FetchJobPollingInterval)
            return due - now < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : due - now;
        return _options.FetchJobPollingInterval;
    }

    /// <summary>Takes a claimed job into the local buffer (and the running map, so aborts find it).</summary>
    private void Claim(Job job)
    {
        var context = new JobContext(_app, job, _info, _time.GetUtcNow(), _options.AdditionalContext ?? EmptyContext);
        var running = new RunningJob(job, context) { ClaimedAt = _time.GetTimestamp() };
        while (true)
        {
            if (_running.TryAdd(job.Id, running))
            {
                Interlocked.Increment(ref _held);
                break;
            }
            // Still held under an older claim of the same job (a stale one being given back): replace it.
            if (_running.TryGetValue(job.Id, out var older) && _running.TryUpdate(job.Id, running, older))
                break;
        }
        Interlocked.Increment(ref _pendingOutcomes);
        if (_options.PrefetchJobs is null)
            UpdateMean(ref _meanArgsChars, job.ArgsJson.Length);
        _buffer.Enqueue(running);
    }

    /// <summary>Leaves the running map (and the held count with it).</summary>
    private void Forget(RunningJob running)
    {
        if (_running.TryRemove(new KeyValuePair<long, RunningJob>(running.Job.Id, running)))
            Interlocked.Decrement(ref _held);
    }

    // ---- Executors -----------------------------------------------------------------------------
    //
    // An executor takes one slot of the concurrency and runs buffered jobs one after the other
    // on a pool thread, until the buffer is empty. Before it starts a job while more jobs wait, it
    // queues one more executor (if a slot is free and none is queued yet), so a job never waits
    // behind a synchronous body while a slot is free, and a burst of short jobs costs one or two
    // pool work items instead of one per job. Bodies start only on executors: never on the
    // fetcher, the completer, or the thread that completed the previous job's asynchronous body.
    // Each pool work item wakes pool threads that spin before they sleep again: on a small
    // machine that spinning, not the jobs, was most of the worker's CPU.

    private const int NoneQueued = 0;
    private const int Queued = 1;
    private const int QueuedOwingNotify = 2; // ... and it tells the completer and the fetcher when it starts

    /// <summary>Queues one more executor while jobs wait and a slot is free, unless one is queued already (it takes them).</summary>
    private void StartExecutor()
    {
        while (!_draining && !_buffer.IsEmpty)
        {
            if (Interlocked.CompareExchange(ref _executorQueued, Queued, NoneQueued) != NoneQueued)
                return;
            var executing = Volatile.Read(ref _executing);
            if (executing < _options.Concurrency && Interlocked.CompareExchange(ref _executing, executing + 1, executing) == executing)
            {
                State.SetRunning(executing + 1);
                // Like Task.Run (execution context flows, local queue first), without a Task.
                ThreadPool.QueueUserWorkItem(static worker => worker.RunExecutor(queued: true), this, preferLocal: true);
                return;
            }
            // No executor after all: a notification left for it is made here.
            if (Interlocked.Exchange(ref _executorQueued, NoneQueued) == QueuedOwingNotify)
                Notify(inline: false);
            // Every slot is taken: the executor that frees one looks at the buffer again. A slot
            // freed while the flag was up went unseen by its executor: try again.
            if (Volatile.Read(ref _executing) >= _options.Concurrency)
                return;
        }
    }

    private void RunExecutor(bool queued)
    {
        // From now on, jobs buffered need another executor. An executor that ran jobs meanwhile
        // may have left the notification of their outcomes to this one, on this thread.
        if (queued && Interlocked.Exchange(ref _executorQueued, NoneQueued) == QueuedOwingNotify)
            Notify(inline: true);
        var owed = false; // outcomes written (and room freed) that the completer and the fetcher were not told about
        while (TryTakeBuffered(out var running))
        {
            if (owed)
            {
                NotifySoon(); // before a body that may run long
                owed = false;
            }
            if (!_buffer.IsEmpty)
                StartExecutor(); // before this job's body may block this thread
            var execution = ExecuteAsync(running);
            if (!execution.IsCompleted)
            {
                // The body went asynchronous: this executor goes on from a fresh pool work item when
                // the job ends, not on whatever thread completes it.
                execution.ContinueWith(static (execution, worker) => ((Worker)worker!).ResumeExecutor(execution), this,
                    CancellationToken.None, TaskContinuationOptions.DenyChildAttach, TaskScheduler.Default);
                return;
            }
            ObserveFault(execution);
            // Another job follows: tell them before it starts. Otherwise this executor is about to
            // leave and tells them then, on its own thread (LeaveExecutor).
            if (_buffer.IsEmpty)
                owed = true;
            else
                NotifySoon();
        }
        LeaveExecutor(owed);
    }

    /// <summary>
    /// Tells the completer and the fetcher before this executor starts another job: through the
    /// executor queued meanwhile, if any (it does it on its thread as it starts, which saves the
    /// pool work items of two wake-ups), otherwise by waking them on the pool.
    /// </summary>
    private void NotifySoon()
    {
        if (Interlocked.CompareExchange(ref _executorQueued, QueuedOwingNotify, Queued) == NoneQueued)
            Notify(inline: false);
    }

    /// <summary>Wakes the completer for the outcomes written, and the fetcher if the freed room calls for a claim.</summary>
    private void Notify(bool inline)
    {
        if (inline)
            _outcomesReady.SetInline();
        else
            _outcomesReady.Set();
        WakeFetcherIfRoom(inline);
    }

    private void ResumeExecutor(Task execution)
    {
        ObserveFault(execution);
        RunExecutor(queued: false);
    }

    /// <summary>
    /// A run whose bookkeeping threw (a throwing logger provider or listener) never wrote its
    /// outcome: the job stays claimed until rescued, as before. The executor goes on with the next.
    /// </summary>
    private static void ObserveFault(Task execution) => _ = execution.Exception;

    /// <summary>The next buffered job this executor may start; none once the worker stops.</summary>
    private bool TryTakeBuffered([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RunningJob? running)
    {
        while (!_draining && _buffer.TryDequeue(out running))
        {
            if (_time.GetElapsedTime(running.ClaimedAt) > _options.StalledWorkerTimeout)
            {
                // Claimed so long ago (this process was paused, say) that the job may have been
                // rescued and claimed elsewhere: do not run it; give it back if it is still ours.
                _ = ReleaseStaleAsync(running);
                continue;
            }
            running.StartedAt = _time.GetUtcNow();
            return true;
        }
        running = null;
        return false;
    }

    private void LeaveExecutor(bool owed)
    {
        var left = Interlocked.Decrement(ref _executing);
        State.SetRunning(left);
        if (left == 0)
            Volatile.Read(ref _drained)?.TrySetResult();
        // A job buffered meanwhile may have seen no free slot: look again.
        if (!_buffer.IsEmpty)
            StartExecutor();
        // This thread has nothing else to do: the completer and the fetcher run on it up to their
        // next await instead of hopping to other threads. An idle executor is a reason to claim.
        if (owed)
        {
            Interlocked.CompareExchange(ref _executorQueued, Queued, QueuedOwingNotify); // done here
            _outcomesReady.SetInline();
        }
        WakeFetcherIfRoom(inline: true);
    }

    /// <summary>
    /// Wakes the fetcher when there is room worth a claim, while claims return full batches (or
    /// in one-shot mode); otherwise it sleeps until a notification or the poll interval.
    /// </summary>
    private void WakeFetcherIfRoom(bool inline)
    {
        if ((!_options.Wait || _lastFetchFull) && ShouldFetch())
        {
            if (inline)
                _wake.SetInline();
            else
                _wake.Set();
        }
    }

    private static readonly IReadOnlyDictionary<string, object?> EmptyContext = new Dictionary<string, object?>();

    // ---- Executing -----------------------------------------------------------------------------

    private async Task ExecuteAsync(RunningJob running)
    {
        var job = running.Job;
        var context = running.Context;
        var started = _time.GetTimestamp();
        var telemetry = _app.Telemetry;
        // Tag lists, scopes and spans only when someone listens: they would be built for every job.
        if (telemetry.Started.Enabled)
            telemetry.Started.Add(1, AppTelemetry.Tags(job.TaskName, job.Queue));
        JobOutcome outcome;
        var resumed = false; // the body went asynchronous: this runs on whatever thread completed it
        using (var activity = StartProcessActivity(job))
        using (_logScopes ? _log.BeginScope(new JobLogScope(job, WorkerId, _options.Name)) : null)
        {
            var task = _app.FindTask(job.TaskName);
            if (task is null)
            {
                Log.TaskNotFound(_log, "task_not_found", job.Id, job.TaskName);
                outcome = Outcome(job, JobStatus.Failed, null, new TaskNotFoundException(job.TaskName), started);
            }
            else
            {
                if (_log.IsEnabled(LogLevel.Information))
                    Log.JobStarted(_log, "start_job", job.Id, job.TaskName, job.Queue, job.Attempts + 1,
                        _app.Options.LogArguments ? " with arguments " + job.ArgsJson : "");
                var body = RunBodyAsync(task, job, context, started);
                resumed = !body.IsCompleted;
                outcome = await body.ConfigureAwait(false);
            }
            if (activity is not null)
            {
                activity.SetTag("procrastinate.job.status", outcome.Retry is null ? outcome.Status.ToDbString() : "retried");
                if (outcome.Exception is { } e)
                {
                    activity.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e.Message);
                    activity.SetTag("error.type", e.GetType().FullName);
                }
            }
        }

        if (telemetry.Completed.Enabled || telemetry.Duration.Enabled)
        {
            var tags = AppTelemetry.Tags(job.TaskName, job.Queue);
            tags.Add("procrastinate.job.status", outcome.Retry is null ? outcome.Status.ToDbString() : "retried");
            telemetry.Completed.Add(1, tags);
            telemetry.Duration.Record(outcome.Duration.TotalSeconds, tags);
        }
        if (outcome.Retry is not null && telemetry.Retried.Enabled)
            telemetry.Retried.Add(1, AppTelemetry.Tags(job.TaskName, job.Queue));

        context.DisposeAbortSource();
        if (_options.PrefetchJobs is null)
            UpdateMean(ref _meanRunSeconds, outcome.Duration.TotalSeconds);
        _options.OutcomeObserver?.Invoke(outcome);
        // Leave the running map before the completer can see the outcome: a one-shot worker
        // decides it is idle from the map and the pending-outcome count together.
        Forget(running);
        State.JobCompleted();
        _outcomes.Enqueue(outcome);
        // After a synchronous run, the executor tells the completer and the fetcher (RunExecutor).
        if (resumed)
            Notify(inline: false);
    }

    /// <summary>The consumer span of one run, linked to the producer span that deferred the job.</summary>
    private System.Diagnostics.Activity? StartProcessActivity(Job job)
    {
        var source = ProcrastinateTelemetry.Source;
        if (!source.HasListeners())
            return null;
        System.Diagnostics.ActivityLink[]? links = null;
        if (job.TraceParent is { } parent
            && System.Diagnostics.ActivityContext.TryParse(parent, job.TraceState, isRemote: true, out var producer))
            links = [new System.Diagnostics.ActivityLink(producer)];
        var activity = source.StartActivity(System.Diagnostics.ActivityKind.Consumer, parentContext: default, tags: null, links: links,
            name: $"process {job.Queue}");
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "procrastinate");
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.destination.name", job.Queue);
            activity.SetTag("messaging.message.id", job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            activity.SetTag("procrastinate.task.name", job.TaskName);
            activity.SetTag("procrastinate.job.attempt", job.Attempts + 1);
            activity.SetTag("procrastinate.worker.id", WorkerId);
        }
        return activity;
    }

    private async Task<JobOutcome> RunBodyAsync(JobTask task, Job job, JobContext context, long started)
    {
        try
        {
            await Pipeline(task)(context).ConfigureAwait(false);
            var outcome = Outcome(job, JobStatus.Succeeded, null, null, started);
            Log.JobSucceeded(_log, "job_success", job.Id, job.TaskName, outcome.Duration.TotalMilliseconds);
            return outcome;
        }
        catch (Exception e) when (e is OperationCanceledException or JobAbortedException && context.ShouldAbort)
        {
            Log.JobAborted(_log, "job_aborted", job.Id, job.TaskName, context.AbortReason);
            // A user abort is final (COMPAT.md W7); a shutdown abort consults the retry strategy (4.3).
            var retry = context.AbortReason == AbortReason.Shutdown ? Decide(task, e, job) : null;
            return Outcome(job, JobStatus.Aborted, retry, e, started);
        }
        catch (JobAbortedException e)
        {
            Log.JobAborted(_log, "job_aborted", job.Id, job.TaskName, context.AbortReason);
            return Outcome(job, JobStatus.Aborted, null, e, started);
        }
        catch (Exception e)
        {
            var retry = Decide(task, e, job);
            var outcome = Outcome(job, JobStatus.Failed, retry, e, started);
            if (retry is null)
                Log.JobFailed(_log, "job_error", job.Id, job.TaskName, outcome.Duration.TotalMilliseconds, e);
            else
                Log.JobRetry(_log, "job_retry", job.Id, job.TaskName, outcome.Duration.TotalMilliseconds, retry.RetryAt, e);
            return outcome;
        }
    }

    private readonly ConcurrentDictionary<JobTask, JobDelegate> _pipelines = new();

    /// <summary>Worker middleware around task middleware around the body, outermost first; built once per task.</summary>
    private JobDelegate Pipeline(JobTask task) => _pipelines.GetOrAdd(task, static (t, worker) =>
    {
        JobDelegate next = t.InvokeAsync;
        foreach (var middleware in t.Middleware.Reverse())
            next = Wrap(middleware, next);
        foreach (var middleware in (worker._options.Middleware ?? []).Reverse())
            next = Wrap(middleware, next);
        return next;

        static JobDelegate Wrap(IJobMiddleware middleware, JobDelegate inner) => context => middleware.InvokeAsync(context, inner);
    }, this);

    private ResolvedRetry? Decide(JobTask task, Exception exception, Job job)
    {
        RetryDecision? decision;
        try
        {
            decision = task.Retry.GetRetryDecision(exception, job);
        }
        catch (Exception e)
        {
            // A broken strategy must not lose the job: it ends as failed.
            Log.SideLoopError(_log, "job_error", "The retry strategy", TimeSpan.Zero, e);
            return null;
        }
        if (decision is null)
            return null;
        var at = decision.ResolveRetryAt(_time.GetUtcNow());
        return new ResolvedRetry(at, decision.Priority, decision.Queue is null ? null : Names.ValidateQueue(decision.Queue),
            Names.ValidateLock(decision.Lock, "lock", nameof(decision.Lock)));
    }

    private JobOutcome Outcome(Job job, JobStatus status, ResolvedRetry? retry, Exception? exception, long started)
    {
        var delete = retry is null && _options.DeleteJobs switch
        {
            DeleteJobsMode.Always => true,
            DeleteJobsMode.Successful => status == JobStatus.Succeeded,
            _ => false,
        };
        return new JobOutcome(job, status, delete, retry, exception, _time.GetElapsedTime(started));
    }

    // ---- Stopping -------------------------------------------------------------------------------

    private async Task DrainAsync()
    {
        _draining = true;
        await ReleaseBufferedAsync().ConfigureAwait(false);
        // Executors leave once their job has ended and its outcome is queued; the last one
        // completes this (it reads it after taking its slot back, so one of the two sees the other).
        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _drained, drained);
        if (Volatile.Read(ref _executing) == 0)
            return;
        var started = _running.Values.Count(r => r.StartedAt is not null);
        if (started > 0)
            Log.WorkerStopping(_log, "stop_worker", _options.Name, started);
        if (_options.ShutdownGracefulTimeout is { } timeout)
        {
            var finished = await Task.WhenAny(drained.Task, Task.Delay(timeout, _time, CancellationToken.None)).ConfigureAwait(false) == drained.Task;
            if (!finished)
            {
                Log.ShutdownAbort(_log, "stop_worker", _running.Count);
                foreach (var running in _running.Values)
                    running.Context.RequestAbort(AbortReason.Shutdown);
            }
        }
        await drained.Task.ConfigureAwait(false);
    }

    private async Task ReleaseStaleAsync(RunningJob running)
    {
        try
        {
            await _store.ReleaseJobsAsync([running.Job], WorkerId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransient(e))
        {
            Log.SideLoopError(_log, "release_job", "Releasing a stale claim", TimeSpan.Zero, e);
        }
        finally
        {
            Forget(running);
            running.Context.DisposeAbortSource();
            Interlocked.Decrement(ref _pendingOutcomes);
            _wake.Set();
        }
    }

    /// <summary>Gives the claimed jobs that never started back to the queue (status todo, attempts unchanged).</summary>
    private async Task ReleaseBufferedAsync()
    {
        var unstarted = new List<RunningJob>();
        while (_buffer.TryDequeue(out var running))
            unstarted.Add(running);
        if (unstarted.Count == 0)
            return;
        try
        {
            await _store.ReleaseJobsAsync([.. unstarted.Select(r => r.Job)], WorkerId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransient(e))
        {
            // They stay 'doing' and are rescued as stalled once this worker is gone.
            Log.SideLoopError(_log, "stop_worker", "Releasing unstarted jobs", TimeSpan.Zero, e);
        }
        foreach (var running in unstarted)
        {
            Forget(running);
            running.Context.DisposeAbortSource();
            Interlocked.Decrement(ref _pendingOutcomes);
        }
    }

    private IDisposable RegisterSignals(CancellationTokenSource stop)
    {
        var count = 0;
        void Handle(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref count) == 1)
            {
                stop.Cancel();
            }
            else
            {
                // A second signal: do not wait for the graceful timeout.
                foreach (var running in _running.Values)
                    running.Context.RequestAbort(AbortReason.Shutdown);
            }
        }
        return new Registrations(
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ]);
    }

    private sealed class Registrations(IReadOnlyList<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
                item.Dispose();
        }
    }

    // ---- Helpers ---------------------------------------------------------------------------------

    private static bool IsTransient(Exception e) =>
        e is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException
        || (e is InvalidOperationException && e.InnerException is NpgsqlException);

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(100 * Math.Pow(2, Math.Min(failures, 10)), 10_000));

    /// <summary>Waits; returns false when cancelled.</summary>
    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static bool TryParseNotification(string payload, out string? type, out long? jobId)
    {
        type = null;
        jobId = null;
        try
        {
            using var doc = JsonDocument.Parse(payload);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
                return false;
            type = t.GetString();
            if (doc.RootElement.TryGetProperty("job_id", out var id) && id.TryGetInt64(out var value))
                jobId = value;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
