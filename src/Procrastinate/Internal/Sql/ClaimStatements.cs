using System.Text;

namespace Procrastinate.Internal.Sql;

/// <summary>
/// The worker's claim (queries.sql, fetch_jobs) as the connector sends it: for the table layout
/// (<see cref="LeanColumns"/>), for a worker on one queue with that queue as an equality, and on
/// the lean layout for a worker on several queues as a merge of one ordered walk per queue.
/// PostgreSQL reads "queue_name = ANY (array)" through an index on (queue_name, priority, id) as
/// an unordered scan, so it mostly chose the walk of the priority index instead, past the jobs of
/// every other queue that came first; with an equality the lean layout's queue index gives the
/// claim's order and holds that queue's jobs alone (BENCHMARKS.md, "Claims on one queue").
/// </summary>
internal static class ClaimStatements
{
    private const string AnyQueue = "($1::character varying[] IS NULL OR jobs.queue_name = ANY($1::character varying[]))";
    private const string OneQueue = "jobs.queue_name = ($1::character varying[])[1]";

    /// <summary>
    /// The most queues a lean claim merges walk by walk; a worker on more queues claims with
    /// "= ANY", planned with its queues at each claim. Each walk costs the claim one index descent.
    /// </summary>
    public const int MaxMergedQueues = 32;

    private static readonly string Compatible = SqlQueries.Get("fetch_jobs");
    private static readonly string CompatibleOneQueue = SqlQueries.ReplaceOnce(Compatible, AnyQueue, OneQueue);
    private static readonly string LeanOneQueue = SqlQueries.ReplaceOnce(LeanColumns.Claim, AnyQueue, OneQueue);
    private static readonly string?[] LeanMerged = new string?[MaxMergedQueues + 1];

    /// <summary>The claim for the layout, all queues (<paramref name="queues"/> null) or the given ones.</summary>
    public static string For(bool lean, string[]? queues) => (lean, queues) switch
    {
        (true, { Length: 1 }) => LeanOneQueue,
        (true, not null) when Merges(queues) => LeanMerged[queues.Length] ??= MergedLeanClaim(queues.Length),
        (true, _) => LeanColumns.Claim,
        (false, { Length: 1 }) => CompatibleOneQueue,
        _ => Compatible,
    };

    /// <summary>
    /// Whether the claim <see cref="For"/> gives has one best plan whatever the queues and the
    /// statistics (queries.sql, plan_claim_once): the claim on all queues and the lean layout's
    /// merged claim. The others are planned at each claim with their queues (plan_claim_each_time).
    /// </summary>
    public static bool PlannedOnce(bool lean, string[]? queues) => queues is null || (lean && queues.Length > 1 && Merges(queues));

    /// <summary>Several distinct queues, few enough to merge (a repeated queue would give its jobs twice).</summary>
    private static bool Merges(string[] queues)
    {
        if (queues.Length is < 2 or > MaxMergedQueues)
            return false;
        for (var i = 1; i < queues.Length; i++)
            for (var j = 0; j < i; j++)
                if (string.Equals(queues[i], queues[j], StringComparison.Ordinal))
                    return false;
        return true;
    }

    /// <summary>
    /// The lean claim for <paramref name="count"/> queues ($1 holds them): the candidates come from
    /// one walk of the queue index (queue, priority, id) per queue, each already in the claim's
    /// order, which PostgreSQL merges (Merge Append) and reads only as far as the claim needs,
    /// so no job of another queue is read. Each candidate is then looked up by its key and tested
    /// and locked exactly as in the claim on all queues (the same conditions, the queue among them,
    /// which PostgreSQL tests again on the row's latest version when it changed meanwhile). A
    /// locking clause cannot go into the walks themselves: PostgreSQL refuses it in a UNION, and a
    /// locked sub-select loses its order, so the merge would sort and lock every queue's first
    /// thousand jobs. Each walk has its own ORDER BY, which keeps it a sub-select whose order the
    /// merge uses. One generic plan serves every claim (plan_claim_once: no sort, so the merge).
    /// </summary>
    private static string MergedLeanClaim(int count)
    {
        var walks = new StringBuilder();
        for (var i = 1; i <= count; i++)
        {
            if (i > 1)
                walks.Append("\n        UNION ALL\n");
            walks.Append("        (SELECT walk.id, walk.priority FROM procrastinate_jobs AS walk")
                .Append(" WHERE walk.status = 'todo'::procrastinate_job_status AND NOT walk.dotnet_later")
                .Append(" AND walk.queue_name = ($1::character varying[])[").Append(i).Append(']')
                .Append(" ORDER BY walk.priority DESC, walk.id)");
        }
        var sql = SqlQueries.ReplaceOnce(LeanColumns.Claim, "FROM procrastinate_jobs AS jobs",
            $"FROM (\n{walks}\n    ) AS merged\n    JOIN procrastinate_jobs AS jobs ON jobs.id = merged.id");
        sql = SqlQueries.ReplaceOnce(sql, AnyQueue, "jobs.queue_name = ANY($1::character varying[])");
        return SqlQueries.ReplaceOnce(sql, "ORDER BY jobs.priority DESC, jobs.id ASC", "ORDER BY merged.priority DESC, merged.id");
    }
}
