namespace Procrastinate.Internal.Sql;

/// <summary>
/// The worker's claim (queries.sql, fetch_jobs) as the connector sends it: for the table layout
/// (<see cref="LeanColumns"/>), and for a worker on one queue with that queue as an equality.
/// PostgreSQL reads "queue_name = ANY (array)" through an index on (queue_name, priority, id) as
/// an unordered scan, so it mostly chose the walk of the priority index instead, past the jobs of
/// every other queue that came first; with an equality the lean layout's queue index gives the
/// claim's order and holds that queue's jobs alone (BENCHMARKS.md, "Claims on one queue").
/// </summary>
internal static class ClaimStatements
{
    private const string AnyQueue = "($1::character varying[] IS NULL OR jobs.queue_name = ANY($1::character varying[]))";
    private const string OneQueue = "jobs.queue_name = ($1::character varying[])[1]";

    private static readonly string Compatible = SqlQueries.Get("fetch_jobs");
    private static readonly string CompatibleOneQueue = SqlQueries.ReplaceOnce(Compatible, AnyQueue, OneQueue);
    private static readonly string LeanOneQueue = SqlQueries.ReplaceOnce(LeanColumns.Claim, AnyQueue, OneQueue);

    /// <summary>The claim for the layout, all queues (<paramref name="queues"/> null) or the given ones.</summary>
    public static string For(bool lean, string[]? queues) => (lean, queues) switch
    {
        (true, { Length: 1 }) => LeanOneQueue,
        (true, _) => LeanColumns.Claim,
        (false, { Length: 1 }) => CompatibleOneQueue,
        _ => Compatible,
    };
}
