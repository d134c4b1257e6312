using System.Collections;

namespace Procrastinate.Internal.Workers;

/// <summary>The job's fields as structured logging state, attached to every record of a run.</summary>
internal sealed class JobLogScope(Job job, long workerId, string workerName) : IReadOnlyList<KeyValuePair<string, object?>>
{
    public int Count => 9;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("job_id", job.Id),
        1 => new("task_name", job.TaskName),
        2 => new("queue_name", job.Queue),
        3 => new("priority", job.Priority),
        4 => new("lock", job.Lock),
        5 => new("queueing_lock", job.QueueingLock),
        6 => new("attempts", job.Attempts),
        7 => new("worker_id", workerId),
        8 => new("worker_name", workerName),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < Count; i++)
            yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"job {job.Id} ({job.TaskName} on {job.Queue})";
}
