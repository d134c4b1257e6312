using System.Text;
using Procrastinate.Internal;

namespace Procrastinate.Testing;

/// <summary>
/// A connector that keeps jobs in memory, with the semantics of the PostgreSQL schema:
/// statuses and their events, the lock rule and fetch order, queueing locks, priorities,
/// schedules on its clock, retries, cancel and abort, periodic deduplication, worker
/// heartbeats and stalled jobs. The same behaviour suite runs against it and PostgreSQL.
/// </summary>
/// <remarks>
/// Its clock plays the database clock: give it a <see cref="ManualTimeProvider"/> (and the
/// same one to <see cref="AppOptions.TimeProvider"/>) to make scheduled and retried jobs due.
/// It cannot run inside a caller's <c>NpgsqlConnection</c> or transaction.
/// </remarks>
public sealed class InMemoryConnector : Connector
{
    private const string AnyQueueChannel = "procrastinate_any_queue_v1";
    private const string QueueChannelPrefix = "procrastinate_queue_v1#";

    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, Row> _jobs = [];
    private readonly List<JobEvent> _events = [];
    private readonly SortedDictionary<long, WorkerEntry> _workers = [];
    private readonly List<PeriodicRow> _periodic = [];
    private readonly List<Listener> _listeners = [];
    private long _jobSequence;
    private long _eventSequence;
    private long _workerSequence;

    /// <summary>Creates an empty store whose clock is <paramref name="clock"/> (the system clock when null).</summary>
    public InMemoryConnector(TimeProvider? clock = null) => Clock = clock ?? TimeProvider.System;

    /// <summary>The clock that plays the database clock.</summary>
    public TimeProvider Clock { get; }

    /// <summary>Every job, in id order, as it is now.</summary>
    public IReadOnlyList<Job> Jobs
    {
        get
        {
            lock (_gate)
                return [.. _jobs.Values.Select(r => r.ToJob())];
        }
    }

    /// <summary>Every event, in id order.</summary>
    public IReadOnlyList<JobEvent> Events
    {
        get
        {
            lock (_gate)
                return [.. _events];
        }
    }

    /// <summary>Removes every job, event, worker and periodic record.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _jobs.Clear();
            _events.Clear();
            _workers.Clear();
            _periodic.Clear();
        }
    }

    private DateTimeOffset Now => Clock.GetUtcNow();

    // ---- Rows and "triggers" ------------------------------------------------------------------

    private sealed class Row
    {
        public long Id;
        public required string Queue;
        public required string TaskName;
        public int Priority;
        public string? Lock;
        public string? QueueingLock;
        public required string Args;
        public JobStatus Status = JobStatus.Todo;
        public DateTimeOffset? ScheduledAt;
        public int Attempts;
        public bool AbortRequested;
        public long? WorkerId;
        public string? TraceParent;
        public string? TraceState;

        public Job ToJob() => new()
        {
            Id = Id, Queue = Queue, TaskName = TaskName, Priority = Priority, Lock = Lock, QueueingLock = QueueingLock,
            ArgsJson = Args, Status = Status, ScheduledAt = ScheduledAt, Attempts = Attempts, AbortRequested = AbortRequested,
            WorkerId = WorkerId, TraceParent = TraceParent, TraceState = TraceState,
        };
    }

    private sealed record WorkerEntry(long Id, WorkerRegistration? Info, DateTimeOffset StartedAt)
    {
        public DateTimeOffset LastHeartbeat { get; set; }
    }

    private sealed class PeriodicRow
    {
        public long Id;
        public required string TaskName;
        public required string PeriodicId;
        public long Timestamp;
        public long? JobId;
    }

    private sealed record Listener(HashSet<string> Channels, Action<string, string> OnNotification);

    private void AddEvent(long jobId, JobEventType type, DateTimeOffset? at) =>
        _events.Add(new JobEvent(++_eventSequence, jobId, type, at));

    /// <summary>Inserts as the insert triggers would: scheduled event, deferred event, notification.</summary>
    private Row Insert(JobToDefer job, TraceContext? trace, List<(string, string)> notifications)
    {
        var row = new Row
        {
            Id = ++_jobSequence, Queue = job.Queue, TaskName = job.TaskName, Priority = job.Priority, Lock = job.Lock,
            QueueingLock = job.QueueingLock, Args = NormalizeJson(job.ArgsJson), ScheduledAt = job.ScheduledAt,
            TraceParent = trace?.TraceParent, TraceState = trace?.TraceState,
        };
        _jobs[row.Id] = row;
        if (row.ScheduledAt is { } at)
            AddEvent(row.Id, JobEventType.Scheduled, at);
        AddEvent(row.Id, JobEventType.Deferred, Now);
        Notify(notifications, row, "job_inserted");
        return row;
    }

    private static void Notify(List<(string Channel, string Payload)> notifications, Row row, string type)
    {
        var payload = $"{{\"type\" : \"{type}\", \"job_id\" : {row.Id}}}";
        notifications.Add((QueueChannelPrefix + row.Queue, payload));
        notifications.Add((AnyQueueChannel, payload));
    }

    /// <summary>
    /// Applies an update as PostgreSQL's triggers see it: abort_requested event, scheduled
    /// event (any update of a todo row with a schedule), then the status event.
    /// </summary>
    private void Update(Row row, List<(string, string)> notifications, JobStatus? status = null, bool? abortRequested = null,
        Action<Row>? other = null, bool touchesStatus = false)
    {
        var oldStatus = row.Status;
        var oldAbort = row.AbortRequested;
        if (status is { } s) row.Status = s;
        if (abortRequested is { } a) row.AbortRequested = a;
        other?.Invoke(row);
        if (row.Status == JobStatus.Todo && row.AbortRequested)
        {
            // check_not_todo_abort_requested
            row.Status = oldStatus;
            row.AbortRequested = oldAbort;
            throw new InvalidOperationException("new row violates check constraint \"check_not_todo_abort_requested\"");
        }
        if (abortRequested is true)
        {
            AddEvent(row.Id, JobEventType.AbortRequested, Now);
            if (!oldAbort && row.Status == JobStatus.Doing)
                Notify(notifications, row, "abort_job_requested");
        }
        if (row.ScheduledAt is { } at && row.Status == JobStatus.Todo)
            AddEvent(row.Id, JobEventType.Scheduled, at);
        if (status is not null || touchesStatus)
        {
            JobEventType? type = (oldStatus, row.Status) switch
            {
                (JobStatus.Todo, JobStatus.Doing) => JobEventType.Started,
                (JobStatus.Doing, JobStatus.Todo) => JobEventType.DeferredForRetry,
                (JobStatus.Doing, JobStatus.Failed) => JobEventType.Failed,
                (JobStatus.Doing, JobStatus.Succeeded) => JobEventType.Succeeded,
                (JobStatus.Todo, JobStatus.Cancelled or JobStatus.Failed or JobStatus.Succeeded) => JobEventType.Cancelled,
                (JobStatus.Doing, JobStatus.Aborted) => JobEventType.Aborted,
                (JobStatus.Failed, JobStatus.Todo) => JobEventType.Retried,
                _ => null,
            };
            if (type is { } t)
                AddEvent(row.Id, t, Now);
        }
    }

    private void Delete(Row row)
    {
        _jobs.Remove(row.Id);
        _events.RemoveAll(e => e.JobId == row.Id);
        foreach (var p in _periodic.Where(p => p.JobId == row.Id))
            p.JobId = null;
    }

    private void RemoveWorker(long workerId, List<(string, string)> notifications)
    {
        if (!_workers.Remove(workerId))
            return;
        // ON DELETE SET NULL: an update of every row of that worker.
        foreach (var row in _jobs.Values.Where(r => r.WorkerId == workerId).ToList())
            Update(row, notifications, other: r => r.WorkerId = null);
    }

    private void Deliver(List<(string Channel, string Payload)> notifications)
    {
        if (notifications.Count == 0)
            return;
        Listener[] listeners;
        lock (_gate)
            listeners = [.. _listeners];
        foreach (var (channel, payload) in notifications)
            foreach (var listener in listeners.Where(l => l.Channels.Contains(channel)))
                listener.OnNotification(channel, payload);
    }

    /// <summary>Runs <paramref name="action"/> atomically, then delivers its notifications ("at commit").</summary>
    private T Atomic<T>(Func<List<(string, string)>, T> action)
    {
        var notifications = new List<(string, string)>();
        T result;
        lock (_gate)
            result = action(notifications);
        Deliver(notifications);
        return result;
    }

    /// <summary>The text PostgreSQL's jsonb gives back: keys deduplicated (last wins) and sorted by length then bytes, ", " and ": " separators.</summary>
    internal static string NormalizeJson(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var text = new StringBuilder(json.Length + 16);
        Write(doc.RootElement, text);
        return text.ToString();

        static void Write(System.Text.Json.JsonElement e, StringBuilder text)
        {
            switch (e.ValueKind)
            {
                case System.Text.Json.JsonValueKind.Object:
                    var members = new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal);
                    foreach (var p in e.EnumerateObject())
                        members[p.Name] = p.Value;
                    text.Append('{');
                    var first = true;
                    foreach (var (name, value) in members.OrderBy(m => Encoding.UTF8.GetByteCount(m.Key)).ThenBy(m => m.Key, Utf8Order.Instance))
                    {
                        if (!first) text.Append(", ");
                        first = false;
                        WriteString(name, text);
                        text.Append(": ");
                        Write(value, text);
                    }
                    text.Append('}');
                    break;
                case System.Text.Json.JsonValueKind.Array:
                    text.Append('[');
                    var firstItem = true;
                    foreach (var item in e.EnumerateArray())
                    {
                        if (!firstItem) text.Append(", ");
                        firstItem = false;
                        Write(item, text);
                    }
                    text.Append(']');
                    break;
                case System.Text.Json.JsonValueKind.String:
                    WriteString(e.GetString()!, text);
                    break;
                default:
                    text.Append(e.GetRawText());
                    break;
            }
        }

        static void WriteString(string value, StringBuilder text)
        {
            text.Append('"');
            foreach (var c in value)
            {
                switch (c)
                {
                    case '"': text.Append("\\\""); break;
                    case '\\': text.Append("\\\\"); break;
                    case '\b': text.Append("\\b"); break;
                    case '\f': text.Append("\\f"); break;
                    case '\n': text.Append("\\n"); break;
                    case '\r': text.Append("\\r"); break;
                    case '\t': text.Append("\\t"); break;
                    default:
                        if (c < ' ') text.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                        else text.Append(c);
                        break;
                }
            }
            text.Append('"');
        }
    }

    private sealed class Utf8Order : IComparer<string>
    {
        public static readonly Utf8Order Instance = new();

        public int Compare(string? x, string? y) =>
            Encoding.UTF8.GetBytes(x ?? "").AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(y ?? ""));
    }

    private static void RequirePool(DbTarget target)
    {
        if (target.IsExternal)
            throw new NotSupportedException("The in-memory connector cannot run inside a caller's NpgsqlConnection or transaction.");
    }

    private Row? WaitingWithQueueingLock(string? queueingLock) =>
        queueingLock is null ? null : _jobs.Values.FirstOrDefault(r => r.Status == JobStatus.Todo && r.QueueingLock == queueingLock);

    // ---- Defer -------------------------------------------------------------------------------------

    internal override ValueTask OpenAsync(bool async, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    internal override ValueTask PingAsync(bool async, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    internal override ValueTask<long[]> DeferJobsAsync(IReadOnlyList<JobToDefer> jobs, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        return ValueTask.FromResult(Atomic(notifications =>
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var job in jobs)
            {
                if (job.QueueingLock is not { } key)
                    continue;
                if (WaitingWithQueueingLock(key) is { } existing)
                    throw new AlreadyEnqueuedException(key, existing.Id);
                if (!seen.Add(key))
                    throw new AlreadyEnqueuedException(key);
            }
            return jobs.Select(j => Insert(j, trace, notifications).Id).ToArray();
        }));
    }

    internal override ValueTask<(long? Id, bool Inserted)> DeferJobOrGetExistingAsync(JobToDefer job, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        return ValueTask.FromResult(Atomic<(long?, bool)>(notifications =>
            WaitingWithQueueingLock(job.QueueingLock) is { } existing
                ? (existing.Id, false)
                : (Insert(job, trace, notifications).Id, true)));
    }

    internal override ValueTask<long?> FindWaitingJobAsync(string queueingLock, bool async, CancellationToken cancellationToken)
    {
        lock (_gate)
            return ValueTask.FromResult(WaitingWithQueueingLock(queueingLock)?.Id);
    }

    internal override ValueTask<long?> DeferPeriodicJobAsync(JobToDefer job, string periodicId, long timestamp, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Atomic<long?>(notifications =>
        {
            // procrastinate_dotnet_defer_periodic_job: refuse a tick not newer than one deferred.
            if (_periodic.Any(p => p.TaskName == job.TaskName && p.PeriodicId == periodicId && p.Timestamp >= timestamp))
                return null;
            if (WaitingWithQueueingLock(job.QueueingLock) is { } existing)
                throw new AlreadyEnqueuedException(job.QueueingLock!, existing.Id);
            var row = Insert(job with { ScheduledAt = null }, null, notifications);
            _periodic.Add(new PeriodicRow { Id = _periodic.Count == 0 ? 1 : _periodic.Max(p => p.Id) + 1, TaskName = job.TaskName, PeriodicId = periodicId, Timestamp = timestamp, JobId = row.Id });
            _periodic.RemoveAll(p => p.TaskName == job.TaskName && p.PeriodicId == periodicId && p.Timestamp < timestamp);
            return row.Id;
        }));

    internal override ValueTask<long?> GetLastPeriodicTickAsync(string taskName, string periodicId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var ticks = _periodic.Where(p => p.TaskName == taskName && p.PeriodicId == periodicId).Select(p => (long?)p.Timestamp);
            return ValueTask.FromResult(ticks.Max());
        }
    }

    // ---- Workers -------------------------------------------------------------------------------------

    internal override ValueTask<long> RegisterWorkerAsync(WorkerRegistration registration, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var entry = new WorkerEntry(++_workerSequence, registration, Now) { LastHeartbeat = Now };
            _workers[entry.Id] = entry;
            return ValueTask.FromResult(entry.Id);
        }
    }

    internal override ValueTask<bool> UpdateHeartbeatAsync(long workerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_workers.TryGetValue(workerId, out var worker))
                return ValueTask.FromResult(false);
            worker.LastHeartbeat = Now;
            return ValueTask.FromResult(true);
        }
    }

    internal override ValueTask UnregisterWorkerAsync(long workerId, CancellationToken cancellationToken)
    {
        Atomic(notifications =>
        {
            RemoveWorker(workerId, notifications);
            return 0;
        });
        return ValueTask.CompletedTask;
    }

    internal override ValueTask<IReadOnlyList<long>> PruneStalledWorkersAsync(TimeSpan olderThan, CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyList<long>>(Atomic(notifications =>
        {
            var stale = _workers.Values.Where(w => w.LastHeartbeat < Now - olderThan).Select(w => w.Id).ToList();
            foreach (var id in stale)
                RemoveWorker(id, notifications);
            return stale;
        }));

    /// <summary>Adds a worker row as another process would, with the given last heartbeat (for tests of stalled jobs).</summary>
    public long AddWorker(DateTimeOffset lastHeartbeat)
    {
        lock (_gate)
        {
            var entry = new WorkerEntry(++_workerSequence, null, lastHeartbeat) { LastHeartbeat = lastHeartbeat };
            _workers[entry.Id] = entry;
            return entry.Id;
        }
    }

    internal override ValueTask<IReadOnlyList<WorkerRow>> ListWorkersAsync(bool async, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<WorkerRow>>([.. _workers.Values.Select(w => new WorkerRow(
                w.Id, w.LastHeartbeat, w.Info?.Name, w.Info?.Host, w.Info?.ProcessId, w.Info?.Queues, w.Info?.Concurrency,
                w.Info is null ? null : w.StartedAt,
                _jobs.Values.Count(j => j.WorkerId == w.Id && j.Status == JobStatus.Doing)))]);
        }
    }

    // ---- Fetch and completion -------------------------------------------------------------------------

    private bool IsRunnable(Row job, string[]? queues, DateTimeOffset now) =>
        job.Status == JobStatus.Todo
        && (queues is null || queues.Contains(job.Queue))
        && (job.ScheduledAt is null || job.ScheduledAt <= now)
        && (job.Lock is null || !_jobs.Values.Any(other =>
            other.Id != job.Id && other.Lock == job.Lock
            && (other.Status == JobStatus.Doing
                || (other.Status == JobStatus.Todo && (other.Priority > job.Priority || (other.Priority == job.Priority && other.Id < job.Id))))));

    internal override ValueTask<IReadOnlyList<Job>> FetchJobsAsync(string[]? queues, long workerId, int maxJobs, CancellationToken cancellationToken, bool durable = true) =>
        ValueTask.FromResult<IReadOnlyList<Job>>(Atomic(notifications =>
        {
            if (!_workers.ContainsKey(workerId))
                throw new InvalidOperationException($"insert or update on table \"procrastinate_jobs\" violates foreign key constraint \"procrastinate_jobs_worker_id_fkey\" (worker {workerId})");
            var now = Now;
            var candidates = _jobs.Values.Where(j => IsRunnable(j, queues, now))
                .OrderByDescending(j => j.Priority).ThenBy(j => j.Id).Take(maxJobs).ToList();
            foreach (var row in candidates)
                Update(row, notifications, JobStatus.Doing, other: r => r.WorkerId = workerId);
            return candidates.Select(r => r.ToJob()).ToList();
        }));

    internal override ValueTask<IReadOnlyList<Job>> FetchOrphanedJobsAsync(long workerId, long[] held, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<Job>>([.. _jobs.Values
                .Where(j => j.Status == JobStatus.Doing && j.WorkerId == workerId && Array.IndexOf(held, j.Id) < 0)
                .OrderByDescending(j => j.Priority).ThenBy(j => j.Id).Select(j => j.ToJob())]);
        }
    }

    private bool IsOurRun(Row row, Job job, long workerId) =>
        row.Status == JobStatus.Doing && row.Attempts == job.Attempts && (row.WorkerId == workerId || row.WorkerId is null);

    internal override ValueTask<IReadOnlyCollection<long>> FinishJobsAsync(IReadOnlyList<JobOutcome> outcomes, long workerId, CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyCollection<long>>(Atomic(notifications =>
        {
            var written = new HashSet<long>();
            var released = new HashSet<string>(StringComparer.Ordinal);
            foreach (var outcome in outcomes)
            {
                if (!_jobs.TryGetValue(outcome.Job.Id, out var row) || !IsOurRun(row, outcome.Job, workerId))
                    continue;
                if (row.Lock is { } l)
                    released.Add(l);
                if (outcome.DeleteJob)
                    Delete(row);
                else
                    Update(row, notifications, outcome.Status, abortRequested: false, other: r => r.Attempts++);
                written.Add(outcome.Job.Id);
            }
            NotifyLockHeads(released, notifications);
            return written;
        }));

    internal override ValueTask ReleaseJobsAsync(IReadOnlyList<Job> jobs, long workerId, CancellationToken cancellationToken)
    {
        Atomic(notifications =>
        {
            foreach (var job in jobs)
                if (_jobs.TryGetValue(job.Id, out var row) && IsOurRun(row, job, workerId) && !row.AbortRequested)
                    Update(row, notifications, JobStatus.Todo, other: r => r.WorkerId = null);
            return 0;
        });
        return ValueTask.CompletedTask;
    }

    private void NotifyLockHeads(IEnumerable<string> locks, List<(string, string)> notifications)
    {
        foreach (var l in locks)
        {
            var head = _jobs.Values.Where(j => j.Lock == l && j.Status == JobStatus.Todo)
                .OrderByDescending(j => j.Priority).ThenBy(j => j.Id).FirstOrDefault();
            if (head is not null)
                Notify(notifications, head, "job_inserted");
        }
    }

    /// <summary>procrastinate_retry_job_v2 on a locked row: returns false when the status is not doing/failed.</summary>
    private bool RetryRow(Row row, DateTimeOffset retryAt, int? priority, string? queue, string? @lock, List<(string, string)> notifications)
    {
        if (row.Status is not (JobStatus.Doing or JobStatus.Failed))
            return false;
        if (row.Status == JobStatus.Doing && row.AbortRequested)
        {
            Update(row, notifications, JobStatus.Failed);
            return true;
        }
        if (row.QueueingLock is { } key && WaitingWithQueueingLock(key) is { } other && other.Id != row.Id)
            throw new AlreadyEnqueuedException(key, other.Id);
        var oldLock = row.Lock;
        Update(row, notifications, JobStatus.Todo, other: r =>
        {
            r.Attempts++;
            r.ScheduledAt = retryAt;
            r.Priority = priority ?? r.Priority;
            r.Queue = queue ?? r.Queue;
            r.Lock = @lock ?? r.Lock;
        });
        if (retryAt <= Now)
            Notify(notifications, row, "job_inserted");
        if (oldLock is not null)
            NotifyLockHeads([oldLock], notifications);
        return true;
    }

    internal override ValueTask<bool> RetryJobAsync(JobOutcome outcome, long workerId, CancellationToken cancellationToken)
    {
        var retry = outcome.Retry ?? throw new ArgumentException("The outcome has no retry decision.", nameof(outcome));
        return ValueTask.FromResult(Atomic(notifications =>
            _jobs.TryGetValue(outcome.Job.Id, out var row) && IsOurRun(row, outcome.Job, workerId)
            && RetryRow(row, retry.RetryAt, retry.Priority, retry.Queue, retry.Lock, notifications)));
    }

    internal override ValueTask RetryJobManuallyAsync(long jobId, DateTimeOffset retryAt, int? priority, string? queue, string? @lock, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        Atomic(notifications =>
        {
            if (!_jobs.TryGetValue(jobId, out var row) || row.Status is not (JobStatus.Doing or JobStatus.Failed))
                throw new InvalidOperationException($"Job was not found or has an invalid status to retry (job id: {jobId})");
            var clearedAbort = row.Status == JobStatus.Failed && row.AbortRequested;
            if (clearedAbort)
                row.AbortRequested = false; // COMPAT.md W6: no trigger fires for this change
            try
            {
                RetryRow(row, retryAt, priority, queue, @lock, notifications);
            }
            catch (AlreadyEnqueuedException)
            {
                if (clearedAbort)
                    row.AbortRequested = true; // the transaction rolls back
                throw;
            }
            return 0;
        });
        return ValueTask.CompletedTask;
    }

    internal override ValueTask<IReadOnlyList<long>> ListAbortRequestedAsync(long[] jobIds, CancellationToken cancellationToken)
    {
        lock (_gate)
            return ValueTask.FromResult<IReadOnlyList<long>>([.. jobIds.Where(id => _jobs.TryGetValue(id, out var r) && r.Status == JobStatus.Doing && r.AbortRequested)]);
    }

    internal override ValueTask ReclaimRunningJobsAsync(long[] jobIds, long workerId, CancellationToken cancellationToken)
    {
        lock (_gate)
            foreach (var id in jobIds)
                if (_jobs.TryGetValue(id, out var r) && r.Status == JobStatus.Doing && r.WorkerId is null)
                    r.WorkerId = workerId;
        return ValueTask.CompletedTask;
    }

    internal override ValueTask<TimeSpan?> NextScheduledDelayAsync(string[]? queues, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = Now;
            var next = _jobs.Values.Where(j => j.Status == JobStatus.Todo && j.ScheduledAt > now && (queues is null || queues.Contains(j.Queue)))
                .Select(j => j.ScheduledAt).Min();
            return ValueTask.FromResult(next - now);
        }
    }

    // ---- Cancel, status, listings -----------------------------------------------------------------------

    internal override ValueTask<bool> CancelJobAsync(long jobId, bool abort, bool delete, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        return ValueTask.FromResult(Atomic(notifications =>
        {
            if (!_jobs.TryGetValue(jobId, out var row))
                return false;
            if (delete && row.Status == JobStatus.Todo)
            {
                Delete(row);
                return true;
            }
            if (abort && row.Status is JobStatus.Todo or JobStatus.Doing)
            {
                // One UPDATE setting both columns: the abort event first, then the status event.
                if (row.Status == JobStatus.Todo)
                {
                    row.AbortRequested = true;
                    AddEvent(row.Id, JobEventType.AbortRequested, Now);
                    row.Status = JobStatus.Cancelled;
                    AddEvent(row.Id, JobEventType.Cancelled, Now);
                }
                else
                {
                    Update(row, notifications, abortRequested: true, touchesStatus: true);
                }
                return true;
            }
            if (!abort && row.Status == JobStatus.Todo)
            {
                Update(row, notifications, JobStatus.Cancelled);
                return true;
            }
            return false;
        }));
    }

    internal override ValueTask<JobStatus?> GetJobStatusAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var r) ? r.Status : (JobStatus?)null);
    }

    internal override ValueTask<Job?> GetJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var r) ? r.ToJob() : null);
    }

    internal override ValueTask<IReadOnlyList<JobEvent>> ListEventsAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
            return ValueTask.FromResult<IReadOnlyList<JobEvent>>([.. _events.Where(e => e.JobId == jobId)]);
    }

    internal override ValueTask<int> DeleteOldJobsAsync(int maxHours, string? queue, IReadOnlyList<JobStatus> statuses, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
        {
            var threshold = Now - TimeSpan.FromHours(maxHours);
            var doomed = _jobs.Values.Where(j => statuses.Contains(j.Status) && (queue is null || j.Queue == queue))
                .Where(j =>
                {
                    var events = _events.Where(e => e.JobId == j.Id).ToList();
                    return events.Count > 0 && events.All(e => e.At is not null) && events.Max(e => e.At) < threshold;
                }).ToList();
            foreach (var row in doomed)
                Delete(row);
            return ValueTask.FromResult(doomed.Count);
        }
    }

    internal override ValueTask<bool> DeleteJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
        {
            if (!_jobs.TryGetValue(jobId, out var row) || row.Status == JobStatus.Doing)
                return ValueTask.FromResult(false);
            Delete(row);
            return ValueTask.FromResult(true);
        }
    }

    private bool IsStalled(Row job, TimeSpan threshold, DateTimeOffset now) =>
        job.Status == JobStatus.Doing
        && (job.WorkerId is not { } w || (_workers.TryGetValue(w, out var worker) && worker.LastHeartbeat < now - threshold));

    internal override ValueTask<IReadOnlyList<Job>> ListStalledJobsAsync(TimeSpan threshold, string? queue, string? taskName, bool async, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = Now;
            return ValueTask.FromResult<IReadOnlyList<Job>>([.. _jobs.Values
                .Where(j => IsStalled(j, threshold, now) && (queue is null || j.Queue == queue) && (taskName is null || j.TaskName == taskName))
                .Select(j => j.ToJob())]);
        }
    }

    internal override ValueTask<IReadOnlyList<(Job Job, bool Retried)>> RescueStalledJobsAsync(TimeSpan threshold, Func<Job, bool> decide, CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyList<(Job, bool)>>(Atomic(notifications =>
        {
            var now = Now;
            var done = new List<(Job, bool)>();
            foreach (var row in _jobs.Values.Where(j => IsStalled(j, threshold, now)).ToList())
            {
                var started = _events.Where(e => e.JobId == row.Id && e.Type == JobEventType.Started).Select(e => e.At).Max();
                if (started is { } s && s >= now - threshold)
                    continue;
                var job = row.ToJob();
                var retry = decide(job);
                if (retry)
                {
                    try
                    {
                        RetryRow(row, now, null, null, null, notifications);
                    }
                    catch (AlreadyEnqueuedException)
                    {
                        retry = false;
                    }
                }
                if (!retry)
                    Update(row, notifications, JobStatus.Failed, abortRequested: false, other: r => r.Attempts++);
                done.Add((job, retry));
            }
            return done;
        }));

    internal override ValueTask<IReadOnlyList<Job>> ListJobsAsync(JobFilter filter, JobPage page, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        RequirePool(target);
        lock (_gate)
        {
            var rows = _jobs.Values.Where(j => Matches(j, filter) && (filter.Id is null || j.Id == filter.Id) && (filter.WorkerId is null || j.WorkerId == filter.WorkerId)
                && (filter.QueueingLock is null || j.QueueingLock == filter.QueueingLock));
            rows = page.NewestFirst
                ? rows.Where(j => page.After is null || j.Id < page.After).OrderByDescending(j => j.Id)
                : rows.Where(j => page.After is null || j.Id > page.After).OrderBy(j => j.Id);
            return ValueTask.FromResult<IReadOnlyList<Job>>([.. rows.Take(page.Limit).Select(j => j.ToJob())]);
        }
    }

    private static bool Matches(Row j, JobFilter f) =>
        (f.Queue is null || j.Queue == f.Queue) && (f.Task is null || j.TaskName == f.Task)
        && (f.Status is null || j.Status == f.Status) && (f.Lock is null || j.Lock == f.Lock);

    internal override ValueTask<IReadOnlyList<JobCounts>> CountJobsAsync(JobGrouping grouping, JobFilter filter, bool async, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Func<Row, string?> key = grouping switch
            {
                JobGrouping.Queue => j => j.Queue,
                JobGrouping.Task => j => j.TaskName,
                _ => j => j.Lock,
            };
            return ValueTask.FromResult<IReadOnlyList<JobCounts>>([.. _jobs.Values
                .Where(j => Matches(j, filter) && key(j) is not null)
                .GroupBy(j => key(j)!)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new JobCounts(g.Key, g.Count(),
                    g.Count(j => j.Status == JobStatus.Todo), g.Count(j => j.Status == JobStatus.Doing),
                    g.Count(j => j.Status == JobStatus.Succeeded), g.Count(j => j.Status == JobStatus.Failed),
                    g.Count(j => j.Status == JobStatus.Cancelled), g.Count(j => j.Status == JobStatus.Aborted)))]);
        }
    }

    internal override ValueTask<IReadOnlyDictionary<string, long>> CountWaitingJobsAsync(string[]? queues, CancellationToken cancellationToken)
    {
        lock (_gate)
            return ValueTask.FromResult<IReadOnlyDictionary<string, long>>(_jobs.Values
                .Where(j => j.Status == JobStatus.Todo && (queues is null || queues.Contains(j.Queue)))
                .GroupBy(j => j.Queue).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal));
    }

    // ---- Notifications ------------------------------------------------------------------------------------

    internal override async Task ListenAsync(IReadOnlyList<string> channels, Action<string, string> onNotification, Action<bool> onListening, CancellationToken cancellationToken)
    {
        var listener = new Listener([.. channels], onNotification);
        lock (_gate)
            _listeners.Add(listener);
        onListening(true);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stop listening.
        }
        finally
        {
            lock (_gate)
                _listeners.Remove(listener);
        }
    }

    /// <summary>A short description of the store's contents, for assertion messages.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        foreach (var job in Jobs)
            text.Append(job).Append(' ').AppendLine(job.ArgsJson);
        return text.Length == 0 ? "(no jobs)" : text.ToString();
    }
}
