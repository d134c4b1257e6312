using System.Runtime.CompilerServices;
using Npgsql;

namespace Procrastinate.Internal.Sql;

/// <summary>
/// Whether the database has the lean layout's columns of revision 5 (<c>Layouts/lean_triggers.sql</c>):
/// those that keep a job's waiting events, for the worker's claim and completion to fill and
/// clear them, and the mark of jobs scheduled for later, which the worker's claim clears when
/// their time comes and leaves out of its walk. Statements that do not touch them still work on
/// the lean layout (row triggers do it, at a cost per row; a claim without the mark reads the
/// jobs scheduled for later); statements that do fail on the compatible layout, where the
/// columns do not exist. A database of revision 4 gets the compatible statements until it is
/// brought up to date. The answer is kept for a minute, so a worker notices a conversion to
/// the lean layout within a minute, and one back at its next claim or completion (which fails
/// with undefined_column, or undefined_function for the claim's <see cref="PromoteDueJobs"/>: <see cref="Forget"/>, then sent again).
/// </summary>
internal sealed class LeanColumns
{
    private const long KeepMilliseconds = 60_000;

    private const string Query = """
        SELECT EXISTS (SELECT FROM pg_attribute
                       WHERE attrelid = to_regclass('procrastinate_jobs') AND attname = 'dotnet_later' AND NOT attisdropped)
        """;

    /// <summary>
    /// The worker's claim (queries.sql, fetch_jobs), which also takes the run's 'started' event
    /// id and time, and reads only the jobs not marked as scheduled for later: through the lean
    /// layout's claim indexes, which leave those out. <see cref="PromoteDueJobs"/> runs first.
    /// </summary>
    public static readonly string Claim = Extend(
        Extend(SqlQueries.Get("fetch_jobs"), "worker_id = $2",
            ", dotnet_started_event_id = nextval('procrastinate_events_id_seq'::regclass), dotnet_started_at = now()"),
        "WHERE jobs.status = 'todo'::procrastinate_job_status", " AND NOT jobs.dotnet_later");

    /// <summary>
    /// Sent before <see cref="Claim"/> in its transaction: clears the mark of up to $1 jobs whose
    /// scheduled time has come (<c>procrastinate_lean_promote_due_jobs</c>), so the claim sees them.
    /// The function is called only when there is such a job: a plain statement tells that for
    /// less than the call (about 0.05 ms of the server's time per claim in W4, its first
    /// version, against 0.2 ms for the claim).
    /// </summary>
    public const string PromoteDueJobs = """
        SELECT procrastinate_lean_promote_due_jobs($1)
        WHERE EXISTS (SELECT FROM procrastinate_jobs
                      WHERE status = 'todo'::procrastinate_job_status AND dotnet_later AND scheduled_at <= now())
        """;

    /// <summary>
    /// The most jobs one claim's <see cref="PromoteDueJobs"/> moves back into the claim's indexes.
    /// Each costs an update of its row (about 15-20 µs of the server's time on 2 cores), so a
    /// claim after 200,000 jobs came due at once took about 100 ms with 5,000 at a time. When more
    /// come due at once, the following claims move the rest, the earliest first; until then, the
    /// claims choose among the jobs already moved and those never scheduled.
    /// </summary>
    public const int PromoteAtOnce = 1_000;

    /// <summary>
    /// When the next job scheduled for later comes due (queries.sql, next_scheduled_at), read
    /// from the index of the jobs marked as later, which holds every job whose time is ahead (a
    /// job is marked when it is written with its time ahead, and loses the mark only once that
    /// time has come): the lean layout keeps no other index by scheduled time.
    /// </summary>
    public static readonly string NextScheduled = Extend(SqlQueries.Get("next_scheduled_at"), "scheduled_at > now()", " AND dotnet_later");

    /// <summary>The worker's completion (queries.sql, finish_jobs), which also marks the job's 'deferred' event as written (the trigger writes it).</summary>
    public static readonly string Finish = Extend(SqlQueries.Get("finish_jobs"), "attempts = j.attempts + 1",
        ", dotnet_deferred_event_id = NULL, dotnet_deferred_at = NULL");

    // Read and written without a lock: a stale answer only makes one more look, or one statement
    // of the other kind (which works, or fails once and is sent again).
    private volatile StrongBox<bool>? _has;
    private long _lookedAt;

    public async ValueTask<bool> HaveThemAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
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

    /// <summary>The last answer, however old, or null before the first look (or after <see cref="Forget"/>).</summary>
    public bool? LastSeen => _has?.Value;

    /// <summary><paramref name="statement"/> with <paramref name="addition"/> right after its only <paramref name="anchor"/>.</summary>
    internal static string Extend(string statement, string anchor, string addition) =>
        SqlQueries.ReplaceOnce(statement, anchor, anchor + addition);
}
