using System.Runtime.CompilerServices;
using Npgsql;

namespace Procrastinate.Internal.Sql;

/// <summary>
/// Whether the database has the lean layout's columns for the 'started' event of a running job
/// (<c>Layouts/lean_triggers.sql</c>, revision 4), for the claim to fill them. A claim that does
/// not fill them still works on the lean layout (a row trigger fills them, at a cost per row);
/// one that does fails on the compatible layout, where the columns do not exist. The answer is
/// kept for a minute, so a worker notices a conversion to the lean layout within a minute, and
/// one back at its next claim (which fails with undefined_column, <see cref="Forget"/>, retried).
/// </summary>
internal sealed class StartedColumns
{
    private const long KeepMilliseconds = 60_000;

    private const string Query = """
        SELECT EXISTS (SELECT FROM pg_attribute
                       WHERE attrelid = to_regclass('procrastinate_jobs') AND attname = 'dotnet_started_event_id' AND NOT attisdropped)
        """;

    /// <summary>The worker's claim (queries.sql, fetch_jobs) that also takes the run's 'started' event id and time.</summary>
    public static readonly string LeanClaim = WithStartedColumns(SqlQueries.Get("fetch_jobs"));

    // Read and written without a lock: both fields are set together rarely, and a stale pair
    // only makes one more look or one claim of the other kind.
    private volatile StrongBox<bool>? _has;
    private long _lookedAt;

    public async ValueTask<bool> HasThemAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        if (_has is { } known && now - Interlocked.Read(ref _lookedAt) < KeepMilliseconds)
            return known.Value;
        await using var cmd = new NpgsqlCommand(Query, connection);
        var has = (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        Interlocked.Exchange(ref _lookedAt, now);
        _has = new StrongBox<bool>(has);
        return has;
    }

    public void Forget() => _has = null;

    internal static string WithStartedColumns(string claim)
    {
        const string set = "worker_id = $2";
        var at = claim.IndexOf(set, StringComparison.Ordinal);
        if (at < 0 || claim.IndexOf(set, at + 1, StringComparison.Ordinal) >= 0)
            throw new InvalidOperationException($"fetch_jobs must set \"{set}\" exactly once (queries.sql).");
        return claim.Insert(at + set.Length,
            ", dotnet_started_event_id = nextval('procrastinate_events_id_seq'::regclass), dotnet_started_at = now()");
    }
}
