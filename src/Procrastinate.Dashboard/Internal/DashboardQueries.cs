using Npgsql;
using NpgsqlTypes;

namespace Procrastinate.Dashboard.Internal;

/// <summary>Per status, how many jobs finished in one bucket of time.</summary>
internal sealed record ThroughputBucket(DateTimeOffset Start, long Succeeded, long Failed, long Deferred);

/// <summary>A time series of <see cref="ThroughputBucket"/>s, and whether old events were left out to keep the query cheap.</summary>
internal sealed record Throughput(IReadOnlyList<ThroughputBucket> Buckets, TimeSpan BucketSize, bool Truncated);

/// <summary>When a job was deferred and when anything last happened to it.</summary>
internal sealed record JobTimes(DateTimeOffset? DeferredAt, DateTimeOffset? LastEventAt);

/// <summary>The last tick a periodic schedule deferred, and its job.</summary>
internal sealed record PeriodicDefer(string TaskName, string PeriodicId, DateTimeOffset At, long? JobId);

/// <summary>
/// The dashboard's own read-only queries, beyond the job manager's: only with an
/// <see cref="NpgsqlConnector"/> (other connectors show the pages without these parts).
/// </summary>
internal sealed class DashboardQueries(App app)
{
    /// <summary>The throughput query reads at most this many of the latest events (by id, through the primary key), as procrastinate_events has no index on its time.</summary>
    public const int MaxEventsScanned = 200_000;

    private NpgsqlDataSource? DataSource => (app.Connector as NpgsqlConnector)?.DataSource;

    public bool Available => app.Connector is NpgsqlConnector;

    /// <summary>Events per bucket over <paramref name="window"/> up to now, by the database clock, oldest first, with empty buckets.</summary>
    public async Task<Throughput?> GetThroughputAsync(TimeSpan window, TimeSpan bucket, CancellationToken cancellationToken)
    {
        if (DataSource is not { } dataSource)
            return null;
        const string sql = """
            WITH bounds AS (
                SELECT (SELECT coalesce(max(id), 0) - @max_events FROM procrastinate_events) AS low,
                       to_timestamp(floor(extract(epoch FROM now()) / @bucket) * @bucket - @window) AS since
            ),
            recent AS (SELECT e.type, e.at FROM procrastinate_events e, bounds b WHERE e.id > b.low)
            SELECT 0, to_timestamp(floor(extract(epoch FROM r.at) / @bucket) * @bucket), r.type::text, count(*)
            FROM recent r, bounds b
            WHERE r.at >= b.since AND r.type IN ('succeeded', 'failed', 'deferred')
            GROUP BY 2, 3
            UNION ALL
            SELECT 1, b.since, NULL, CASE WHEN b.low > 0 AND (SELECT min(at) FROM recent) > b.since THEN 1 ELSE 0 END
            FROM bounds b
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<long>("max_events", MaxEventsScanned));
        command.Parameters.Add(new NpgsqlParameter<double>("bucket", bucket.TotalSeconds));
        command.Parameters.Add(new NpgsqlParameter<double>("window", window.TotalSeconds - bucket.TotalSeconds));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var counts = new Dictionary<DateTimeOffset, (long Succeeded, long Failed, long Deferred)>();
        DateTimeOffset since = default;
        var truncated = false;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var at = reader.GetFieldValue<DateTimeOffset>(1);
            if (reader.GetInt32(0) == 1)
            {
                // The scan stopped at its limit while its oldest event was inside the window: older ones were left out.
                since = at;
                truncated = reader.GetInt64(3) == 1;
                continue;
            }
            counts.TryGetValue(at, out var c);
            var n = reader.GetInt64(3);
            counts[at] = reader.GetString(2) switch
            {
                "succeeded" => c with { Succeeded = c.Succeeded + n },
                "failed" => c with { Failed = c.Failed + n },
                _ => c with { Deferred = c.Deferred + n },
            };
        }
        var buckets = new List<ThroughputBucket>();
        var steps = (int)Math.Round(window / bucket);
        for (var i = 0; i < steps; i++)
        {
            var start = since + bucket * i;
            counts.TryGetValue(start, out var c);
            buckets.Add(new ThroughputBucket(start, c.Succeeded, c.Failed, c.Deferred));
        }
        return new Throughput(buckets, bucket, truncated);
    }

    /// <summary>
    /// For each job of <paramref name="jobIds"/> that has events: when it was deferred and its latest
    /// event (with the events the lean layout keeps in the job row until the job leaves that state).
    /// </summary>
    public async Task<IReadOnlyDictionary<long, JobTimes>> GetJobTimesAsync(IReadOnlyCollection<long> jobIds, CancellationToken cancellationToken)
    {
        var times = new Dictionary<long, JobTimes>();
        if (DataSource is not { } dataSource || jobIds.Count == 0)
            return times;
        const string sql = """
            SELECT job_id, min(at) FILTER (WHERE type = 'deferred'), max(at)
            FROM (SELECT job_id, type::text AS type, at FROM procrastinate_events WHERE job_id = ANY(@ids)
                  UNION ALL
                  SELECT job_id, type, at FROM procrastinate_dotnet_pending_events(@ids)) AS e
            GROUP BY job_id
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = jobIds.ToArray() });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            times[reader.GetInt64(0)] = new JobTimes(
                reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1),
                reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2));
        return times;
    }

    /// <summary>The latest tick deferred by each periodic schedule (task name and periodic id).</summary>
    public async Task<IReadOnlyDictionary<(string Task, string PeriodicId), PeriodicDefer>> GetLastPeriodicDefersAsync(CancellationToken cancellationToken)
    {
        var defers = new Dictionary<(string, string), PeriodicDefer>();
        if (DataSource is not { } dataSource)
            return defers;
        const string sql = """
            SELECT DISTINCT ON (task_name, periodic_id) task_name, periodic_id, defer_timestamp, job_id
            FROM procrastinate_periodic_defers WHERE defer_timestamp IS NOT NULL
            ORDER BY task_name, periodic_id, defer_timestamp DESC
            """;
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var defer = new PeriodicDefer(reader.GetString(0), reader.GetString(1),
                DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(2)), reader.IsDBNull(3) ? null : reader.GetInt64(3));
            defers[(defer.TaskName, defer.PeriodicId)] = defer;
        }
        return defers;
    }
}
