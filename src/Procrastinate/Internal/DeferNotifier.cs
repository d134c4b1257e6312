using Npgsql;

namespace Procrastinate.Internal;

/// <summary>
/// Sends the <c>job_inserted</c> notifications of defers that asked the lean layout's insert
/// trigger not to (<see cref="QuietSetting"/>), after those defers have committed, from a
/// connection of its own, and several defers' at once.
/// </summary>
/// <remarks>
/// PostgreSQL serializes the commits of the transactions that sent a notification (a global lock
/// taken before the commit and held until after it, so that notifications keep the commit
/// order): with the notification in the insert, concurrent defers commit one after another, each
/// waiting for its own flush, and do not share flushes. A statement that only notifies has no
/// transaction id, so it commits without a flush and holds that lock for microseconds. The
/// connector makes a defer quiet only when another defer of the same connector is on its way,
/// so a lone defer still wakes workers at its commit, one round trip sooner. A notification
/// that cannot be sent is counted (<see cref="Failures"/>); the workers then find the job at
/// their next poll (<c>FetchJobPollingInterval</c>).
/// </remarks>
internal sealed class DeferNotifier(Func<CancellationToken, ValueTask<NpgsqlConnection>> open)
{
    /// <summary>The setting, local to the defer's transaction, that the lean insert trigger reads.</summary>
    public const string QuietSetting = "SELECT set_config('procrastinate.dotnet_notify', 'after_commit', true)";

    private const string NotifySql = """
        SELECT pg_notify(c.channel, json_build_object('type', 'job_inserted', 'job_id', q.id)::text)
        FROM unnest($1::text[], $2::bigint[]) AS q(queue_name, id)
        CROSS JOIN LATERAL (VALUES ('procrastinate_queue_v1#' || q.queue_name), ('procrastinate_any_queue_v1')) AS c(channel)
        """;

    private readonly Lock _gate = new();
    private Dictionary<string, long> _pending = new(StringComparer.Ordinal);
    private Task? _sending;
    private long _sent;
    private long _failures;

    /// <summary>Statements sent, each with the notifications of one or more defers.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Statements that failed; their jobs wait for the workers' next poll.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The error of the last statement that failed.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>A committed job of <paramref name="queue"/> to announce (the payload names the queue's first).</summary>
    public void Post(string queue, long jobId)
    {
        lock (_gate)
        {
            if (!_pending.TryGetValue(queue, out var first) || jobId < first)
                _pending[queue] = jobId;
            _sending ??= Task.Run(SendAllAsync);
        }
    }

    /// <summary>Waits until every notification posted so far has been sent (or has failed).</summary>
    public async ValueTask FlushAsync()
    {
        Task? sending;
        lock (_gate)
            sending = _sending;
        if (sending is not null)
            await sending.ConfigureAwait(false);
    }

    private async Task SendAllAsync()
    {
        while (true)
        {
            Dictionary<string, long> batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _sending = null;
                    return;
                }
                batch = _pending;
                _pending = new Dictionary<string, long>(StringComparer.Ordinal);
            }
            try
            {
                await using var connection = await open(CancellationToken.None).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand(NotifySql, connection);
                cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. batch.Keys] });
                cmd.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. batch.Values] });
                await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref _sent);
            }
            catch (Exception e) // best effort whatever the error: the loop must go on, and end, for later defers
            {
                LastError = e;
                Interlocked.Increment(ref _failures);
            }
        }
    }
}
