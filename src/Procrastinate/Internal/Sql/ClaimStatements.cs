using System.Text;

namespace Procrastinate.Internal.Sql;

/// <summary>
/// The worker's claim (queries.sql, fetch_jobs) as the connector sends it: for the table layout
/// (<see cref="LeanColumns"/>), for a worker on one queue with that queue as an equality, and for
/// a worker on several queues as a merge of one ordered walk per queue.
/// PostgreSQL reads "queue_name = ANY (array)" through an index on (queue_name, priority, id) as
/// an unordered scan, so it mostly chose the walk of the priority index instead, past the jobs of
/// every other queue that came first; with an equality the queue index (the lean layout's, or on
/// the compatible layout the .NET addition of migration 0005) gives the claim's order and holds
/// that queue's jobs alone (BENCHMARKS.md, "Claims on one queue").
/// </summary>
internal static class ClaimStatements
{
    private const string AnyQueue = "($1::character varying[] IS NULL OR jobs.queue_name = ANY($1::character varying[]))";
    private const string OneQueue = "jobs.queue_name = ($1::character varying[])[1]";

    /// <summary>
    /// The most queues a claim merges walk by walk; a worker on more queues claims with
    /// "= ANY", planned with its queues at each claim. Each walk costs the claim one index descent.
    /// </summary>
    public const int MaxMergedQueues = 32;

    private static readonly string Compatible = SqlQueries.Get("fetch_jobs");
    private static readonly string CompatibleOneQueue = SqlQueries.ReplaceOnce(Compatible, AnyQueue, OneQueue);
    private static readonly string LeanOneQueue = SqlQueries.ReplaceOnce(LeanColumns.Claim, AnyQueue, OneQueue);
    private static readonly string?[] LeanMerged = new string?[MaxMergedQueues + 1];
    private static readonly string?[] CompatibleMerged = new string?[MaxMergedQueues + 1];

    /// <summary>The claim for the layout, all queues (<paramref name="queues"/> null) or the given ones.</summary>
    public static string For(bool lean, string[]? queues) => (lean, queues) switch
    {
        (true, { Length: 1 }) => LeanOneQueue,
        (true, not null) when Merges(queues) => LeanMerged[queues.Length] ??= MergedClaim(lean: true, queues.Length),
        (true, _) => LeanColumns.Claim,
        (false, { Length: 1 }) => CompatibleOneQueue,
        (false, not null) when Merges(queues) => CompatibleMerged[queues.Length] ??= MergedClaim(lean: false, queues.Length),
        _ => Compatible,
    };

    /// <summary>
    /// Whether the claim <see cref="For"/> gives has one best plan whatever the queues and the
    /// statistics (queries.sql, plan_claim_once): the claim on all queues (the walk of the
    /// priority index), on one queue (the walk of the queue index) and the merged claim. The claim
    /// "= ANY" of a worker on more queues than it merges, or on a list with repeats, is planned at
    /// each claim with its queues (plan_claim_each_time). A plan made each time for one queue
    /// cost the compatible layout about 2 ms of planning per claim, and chose by estimates that
    /// the lock rule's subqueries make unreliable.
    /// </summary>
    public static bool PlannedOnce(string[]? queues) => queues is null || queues.Length == 1 || Merges(queues);

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
    /// The claim for <paramref name="count"/> queues ($1 holds them): the candidates come from
    /// one walk of the queue index (queue, priority, id) per queue, each already in the claim's
    /// order, which PostgreSQL merges (Merge Append) and reads only as far as the claim needs,
    /// so no job of another queue is read. Each candidate is then looked up by its key and tested
    /// and locked exactly as in the claim on all queues (the same conditions, the queue among them,
    /// which PostgreSQL tests again on the row's latest version when it changed meanwhile). A
    /// locking clause cannot go into the walks themselves: PostgreSQL refuses it in a UNION, and a
    /// locked sub-select loses its order, so the merge would sort and lock every queue's first
    /// thousand jobs. Each walk has its own ORDER BY, which keeps it a sub-select whose order the
    /// merge uses. One generic plan serves every claim (plan_claim_once: no sort, so the merge).
    /// The walks read the lean layout's procrastinate_jobs_queue_claim_idx_lean, or on the
    /// compatible layout procrastinate_dotnet_jobs_queue_claim_idx (migration 0005); without that
    /// index (a DBA dropped it) the claim still takes the same jobs, sorting each queue's.
    /// </summary>
    private static string MergedClaim(bool lean, int count)
    {
        var walks = new StringBuilder();
        for (var i = 1; i <= count; i++)
        {
            if (i > 1)
                walks.Append("\n        UNION ALL\n");
            walks.Append("        (SELECT walk.id, walk.priority FROM procrastinate_jobs AS walk")
                .Append(" WHERE walk.status = 'todo'::procrastinate_job_status").Append(lean ? " AND NOT walk.dotnet_later" : "")
                .Append(" AND walk.queue_name = ($1::character varying[])[").Append(i).Append(']')
                .Append(" ORDER BY walk.priority DESC, walk.id)");
        }
        var sql = SqlQueries.ReplaceOnce(lean ? LeanColumns.Claim : Compatible, "FROM procrastinate_jobs AS jobs",
            $"FROM (\n{walks}\n    ) AS merged\n    JOIN procrastinate_jobs AS jobs ON jobs.id = merged.id");
        sql = SqlQueries.ReplaceOnce(sql, AnyQueue, "jobs.queue_name = ANY($1::character varying[])");
        return SqlQueries.ReplaceOnce(sql, "ORDER BY jobs.priority DESC, jobs.id ASC", "ORDER BY merged.priority DESC, merged.id");
    }
}
