using Npgsql;
using NpgsqlTypes;
using Procrastinate.Internal;
using Procrastinate.Internal.Sql;

namespace Procrastinate;

/// <summary>
/// Stores jobs in PostgreSQL through one <see cref="NpgsqlDataSource"/>.
/// </summary>
/// <remarks>
/// Configuration, first match wins: the connection string or data source given to the
/// constructor; else the <c>PROCRASTINATE_DATABASE_URL</c> environment variable (a
/// <c>postgresql://user:password@host:port/db</c> URL or an Npgsql connection string); else
/// the standard <c>PGHOST</c>, <c>PGPORT</c>, <c>PGUSER</c>, <c>PGPASSWORD</c> and
/// <c>PGDATABASE</c> variables. The data source is created on first use.
/// </remarks>
public sealed class NpgsqlConnector : Connector
{
    private const string QueueingLockIndex = "procrastinate_jobs_queueing_lock_idx_v1";
    private const string LeanQueueingLockIndex = "procrastinate_jobs_queueing_lock_idx_lean";
    private static readonly TimeSpan ListenKeepAlive = TimeSpan.FromSeconds(30);

    private readonly Func<string>? _connectionStringFactory;
    private readonly bool _ownsDataSource;
    private readonly Lock _gate = new();
    private NpgsqlDataSource? _dataSource;
    private bool _disposed;
    private readonly LeanColumns _leanColumns = new();
    private DeferNotifier? _notifier;
    private int _defersInFlight;

    /// <summary>Sends the notifications of quiet defers after their commit (see <see cref="QuietDeferAsync"/>).</summary>
    internal DeferNotifier Notifier
    {
        get
        {
            if (_notifier is { } notifier)
                return notifier;
            Interlocked.CompareExchange(ref _notifier, new DeferNotifier(ct => DataSource.OpenConnectionAsync(ct)), null);
            return _notifier;
        }
    }

    /// <summary>For tests: every defer on a connection of the connector's own is quiet on the lean layout.</summary>
    internal bool AlwaysQuietDefers { get; set; }

    /// <summary>Configured from the environment (<c>PROCRASTINATE_DATABASE_URL</c>, then <c>PG*</c>).</summary>
    public NpgsqlConnector()
    {
        _connectionStringFactory = () => ConnectionStrings.FromEnvironment();
        _ownsDataSource = true;
    }

    /// <summary>Configured from a connection string or a <c>postgresql://</c> URL.</summary>
    public NpgsqlConnector(string connectionString)
    {
        var normalized = ConnectionStrings.Normalize(connectionString);
        _connectionStringFactory = () => normalized;
        _ownsDataSource = true;
    }

    /// <summary>Uses a data source the caller built; it is disposed with the connector only when <paramref name="ownsDataSource"/> is true.</summary>
    public NpgsqlConnector(NpgsqlDataSource dataSource, bool ownsDataSource = false)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
    }

    /// <summary>
    /// Turns a <c>postgres://</c> or <c>postgresql://</c> URL into an Npgsql connection string
    /// (user, password, host, port, database, <c>sslmode</c>, <c>application_name</c>, <c>host</c> for a
    /// socket directory); an Npgsql connection string is returned as is.
    /// </summary>
    public static string NormalizeConnectionString(string urlOrConnectionString) => ConnectionStrings.Normalize(urlOrConnectionString);

    /// <summary>The data source every statement goes through (created on first access).</summary>
    public NpgsqlDataSource DataSource
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_dataSource is { } ds)
                return ds;
            lock (_gate)
            {
                if (_dataSource is null)
                {
                    var connectionString = _connectionStringFactory!();
                    var builder = new NpgsqlDataSourceBuilder(connectionString);
                    // NpgsqlConnectionStringBuilder.ContainsKey is true for every known keyword, set
                    // or not; a plain DbConnectionStringBuilder tells what the string really sets.
                    var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
                    var settings = builder.ConnectionStringBuilder;
                    if (!Sets(given, "Max Auto Prepare", "MaxAutoPrepare"))
                        settings.MaxAutoPrepare = 32;
                    if (!Sets(given, "Application Name", "ApplicationName"))
                        settings.ApplicationName = "procrastinate-dotnet";
                    // The library keeps no session state on pooled connections (LISTEN has its own),
                    // so skip the DISCARD ALL that would cost a statement per operation.
                    if (!Sets(given, "No Reset On Close", "NoResetOnClose"))
                        settings.NoResetOnClose = true;
                    // The claim's plan is estimated expensive enough to be JIT-compiled at every
                    // execution, which costs more than the query; these short statements never gain from JIT.
                    if (!Sets(given, "Options"))
                        settings.Options = "-c jit=off";
                    _dataSource = builder.Build();
                }
                return _dataSource;
            }
        }
    }

    private static bool Sets(System.Data.Common.DbConnectionStringBuilder given, params string[] keys) => keys.Any(given.ContainsKey);

    internal override bool SupportsExternalConnections => true;

    internal override async ValueTask OpenAsync(bool async, CancellationToken cancellationToken)
    {
        // Opening one connection proves the configuration before the app starts deferring.
        await using var connection = async
            ? await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false)
            : DataSource.OpenConnection();
    }

    internal override async ValueTask CloseAsync(bool async)
    {
        // Only a data source we built can be built again on next use.
        if (_connectionStringFactory is null)
            return;
        NpgsqlDataSource? current;
        lock (_gate)
        {
            current = _dataSource;
            _dataSource = null;
        }
        if (current is null)
            return;
        if (async)
            await current.DisposeAsync().ConfigureAwait(false);
        else
            current.Dispose();
    }

    internal override async ValueTask<long[]> DeferJobsAsync(IReadOnlyList<JobToDefer> jobs, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        if (jobs.Count == 0)
            return [];
        if (jobs.Count == 1)
            return [await DeferOneAsync(jobs[0], trace, target, async, cancellationToken).ConfigureAwait(false)];
        if (jobs.Count >= CopyDeferThreshold)
            return await DeferByCopyAsync(jobs, trace, target, async, cancellationToken).ConfigureAwait(false);
        var n = jobs.Count;
        var queues = new string[n];
        var tasks = new string[n];
        var priorities = new int[n];
        var locks = new string?[n];
        var queueingLocks = new string?[n];
        var args = new string[n];
        var scheduled = new DateTime?[n];
        for (var i = 0; i < n; i++)
        {
            var j = jobs[i];
            queues[i] = j.Queue;
            tasks[i] = j.TaskName;
            priorities[i] = j.Priority;
            locks[i] = j.Lock;
            queueingLocks[i] = j.QueueingLock;
            args[i] = j.ArgsJson;
            scheduled[i] = j.ScheduledAt?.UtcDateTime;
        }

        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        if (owned)
            Interlocked.Increment(ref _defersInFlight);
        try
        {
            var quiet = owned && await QuietDeferAsync(connection, async, cancellationToken).ConfigureAwait(false);
            await using var batch = new NpgsqlBatch(connection, transaction);
            if (quiet)
                batch.BatchCommands.Add(new NpgsqlBatchCommand(DeferNotifier.QuietSetting));
            var cmd = new NpgsqlBatchCommand(SqlQueries.Get("defer_jobs"));
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = queues });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = tasks });
            cmd.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = priorities });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = locks, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = queueingLocks, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = args, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            cmd.Parameters.Add(new NpgsqlParameter<DateTime?[]> { TypedValue = scheduled, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            cmd.Parameters.Add(Nullable(trace?.TraceParent, NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(trace?.TraceState, NpgsqlDbType.Text));
            batch.BatchCommands.Add(cmd);
            var ids = new long[n];
            var count = 0;
            try
            {
                await using var reader = async
                    ? await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
                    : batch.ExecuteReader();
                if (quiet && !(async ? await reader.NextResultAsync(cancellationToken).ConfigureAwait(false) : reader.NextResult()))
                    throw new InvalidOperationException("The defer's insert returned no result.");
                while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
                    ids[count++] = reader.GetInt64(0);
            }
            catch (PostgresException e) when (IsQueueingLockConflict(e))
            {
                throw await TranslateConflict(e, jobs, target, async, cancellationToken).ConfigureAwait(false);
            }
            if (count != n)
                throw new InvalidOperationException($"Deferred {n} jobs but the database returned {count} ids.");
            // Ids are drawn from the sequence in insertion order, which is the input order.
            Array.Sort(ids);
            if (quiet)
            {
                for (var i = 0; i < n; i++)
                    Notifier.Post(jobs[i].Queue, ids[i]);
            }
            return ids;
        }
        finally
        {
            if (owned)
            {
                Interlocked.Decrement(ref _defersInFlight);
                await Release(connection, async).ConfigureAwait(false);
            }
        }
    }

    /// <summary>From this many jobs on, a batch defer streams the rows with COPY instead of one INSERT.</summary>
    internal const int CopyDeferThreshold = 1_000;

    /// <summary>
    /// A large batch: the rows streamed with binary COPY (cheaper per row than INSERT from
    /// arrays, and PostgreSQL inserts while the client is still sending). COPY is one statement:
    /// the batch is all or nothing, fires the same triggers, and a queueing-lock conflict fails
    /// it as the INSERT would.
    /// </summary>
    /// <remarks>
    /// COPY returns no ids. The rows take theirs from the column default, the job sequence, in
    /// input order; the batch reads the sequence once before (a value it leaves unused) and once
    /// after (<c>currval</c>, the last id this session drew), in one transaction with the COPY.
    /// When nothing else drew from the sequence in between, the ids are the values in between;
    /// otherwise they are the rows in that range that this COPY wrote (same <c>xmin</c>), read in
    /// the same transaction, before any worker can see them. Without a caller's transaction the
    /// batch takes one of its own.
    /// </remarks>
    private async ValueTask<long[]> DeferByCopyAsync(IReadOnlyList<JobToDefer> jobs, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var n = jobs.Count;
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        NpgsqlTransaction? ownTransaction = null;
        try
        {
            if (transaction is null)
                ownTransaction = async ? await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false) : connection.BeginTransaction();
            var before = await JobSequenceAsync("job_id_before_copy", connection, transaction ?? ownTransaction, async, cancellationToken).ConfigureAwait(false);
            try
            {
                await using var importer = async
                    ? await connection.BeginBinaryImportAsync(CopyJobsSql, cancellationToken).ConfigureAwait(false)
                    : connection.BeginBinaryImport(CopyJobsSql);
                if (async)
                {
                    for (var i = 0; i < n; i++)
                        await WriteRowAsync(importer, jobs[i], cancellationToken).ConfigureAwait(false);
                    await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    for (var i = 0; i < n; i++)
                        WriteRow(importer, jobs[i]);
                    importer.Complete();
                }
            }
            catch (PostgresException e) when (IsQueueingLockConflict(e))
            {
                if (ownTransaction is not null)
                {
                    if (async) await ownTransaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                    else ownTransaction.Rollback();
                }
                throw await TranslateConflict(e, jobs, target, async, cancellationToken).ConfigureAwait(false);
            }
            var ids = await CopiedJobIdsAsync(connection, transaction ?? ownTransaction, before, n, async, cancellationToken).ConfigureAwait(false);
            if (trace is { } t)
            {
                await using var traced = new NpgsqlCommand(SqlQueries.Get("record_job_traces"), connection, transaction ?? ownTransaction);
                traced.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
                traced.Parameters.Add(new NpgsqlParameter<string> { TypedValue = t.TraceParent });
                traced.Parameters.Add(Nullable(t.TraceState, NpgsqlDbType.Text));
                if (async) await traced.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                else traced.ExecuteNonQuery();
            }
            if (ownTransaction is not null)
            {
                if (async) await ownTransaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                else ownTransaction.Commit();
            }
            return ids;
        }
        finally
        {
            if (ownTransaction is not null)
            {
                if (async) await ownTransaction.DisposeAsync().ConfigureAwait(false);
                else ownTransaction.Dispose();
            }
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    private static async ValueTask<long> JobSequenceAsync(string query, NpgsqlConnection connection, NpgsqlTransaction? transaction, bool async, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(SqlQueries.Get(query), connection, transaction);
        var value = async ? await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteScalar();
        return (long)value!;
    }

    /// <summary>The ids a COPY without ids gave its rows, in input order (see <see cref="DeferByCopyAsync"/>).</summary>
    private static async ValueTask<long[]> CopiedJobIdsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, long before, int n, bool async, CancellationToken cancellationToken)
    {
        var last = await JobSequenceAsync("job_id_after_copy", connection, transaction, async, cancellationToken).ConfigureAwait(false);
        var ids = new long[n];
        if (last - before == n)
        {
            // Nothing else drew from the sequence meanwhile: the ids are before+1 .. last.
            for (var i = 0; i < n; i++)
                ids[i] = before + 1 + i;
            return ids;
        }
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("copied_job_ids"), connection, transaction);
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = before });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = last });
        await using var reader = async ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteReader();
        var count = 0;
        while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
        {
            if (count == n)
                throw new InvalidOperationException($"Copied {n} jobs but found more rows of this batch between ids {before} and {last}.");
            ids[count++] = reader.GetInt64(0);
        }
        if (count != n)
            throw new InvalidOperationException($"Copied {n} jobs but found {count} rows of this batch between ids {before} and {last}.");
        return ids;
    }

    private static async ValueTask WriteRowAsync(NpgsqlBinaryImporter importer, JobToDefer j, CancellationToken cancellationToken)
    {
        await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
        await importer.WriteAsync(j.Queue, NpgsqlDbType.Varchar, cancellationToken).ConfigureAwait(false);
        await importer.WriteAsync(j.TaskName, NpgsqlDbType.Varchar, cancellationToken).ConfigureAwait(false);
        await importer.WriteAsync(j.Priority, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
        await WriteNullableAsync(importer, j.Lock, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await WriteNullableAsync(importer, j.QueueingLock, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await importer.WriteAsync(j.ArgsJson, NpgsqlDbType.Jsonb, cancellationToken).ConfigureAwait(false);
        if (j.ScheduledAt is { } at)
            await importer.WriteAsync(at.UtcDateTime, NpgsqlDbType.TimestampTz, cancellationToken).ConfigureAwait(false);
        else
            await importer.WriteNullAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void WriteRow(NpgsqlBinaryImporter importer, JobToDefer j)
    {
        importer.StartRow();
        importer.Write(j.Queue, NpgsqlDbType.Varchar);
        importer.Write(j.TaskName, NpgsqlDbType.Varchar);
        importer.Write(j.Priority, NpgsqlDbType.Integer);
        if (j.Lock is null) importer.WriteNull(); else importer.Write(j.Lock, NpgsqlDbType.Text);
        if (j.QueueingLock is null) importer.WriteNull(); else importer.Write(j.QueueingLock, NpgsqlDbType.Text);
        importer.Write(j.ArgsJson, NpgsqlDbType.Jsonb);
        if (j.ScheduledAt is { } at)
            importer.Write(at.UtcDateTime, NpgsqlDbType.TimestampTz);
        else
            importer.WriteNull();
    }

    private const string CopyJobsSql =
        "COPY procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at) FROM STDIN (FORMAT BINARY)";

    private static async ValueTask WriteNullableAsync(NpgsqlBinaryImporter importer, string? value, NpgsqlDbType type, CancellationToken cancellationToken)
    {
        if (value is null)
            await importer.WriteNullAsync(cancellationToken).ConfigureAwait(false);
        else
            await importer.WriteAsync(value, type, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<long> DeferOneAsync(JobToDefer job, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        if (owned)
            Interlocked.Increment(ref _defersInFlight);
        try
        {
            var quiet = owned && await QuietDeferAsync(connection, async, cancellationToken).ConfigureAwait(false);
            var sql = SqlQueries.Get(trace is null ? "defer_job" : "defer_job_traced");
            // A quiet defer sends the setting first, in the same round trip and implicit
            // transaction; a lone one, the insert alone.
            await using var batch = quiet ? new NpgsqlBatch(connection, transaction) : null;
            await using var command = quiet ? null : new NpgsqlCommand(sql, connection, transaction);
            NpgsqlParameterCollection parameters;
            if (batch is not null)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand(DeferNotifier.QuietSetting));
                var insert = new NpgsqlBatchCommand(sql);
                batch.BatchCommands.Add(insert);
                parameters = insert.Parameters;
            }
            else
                parameters = command!.Parameters;
            parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Queue });
            parameters.Add(new NpgsqlParameter<string> { TypedValue = job.TaskName });
            parameters.Add(new NpgsqlParameter<int> { TypedValue = job.Priority });
            parameters.Add(Nullable(job.Lock, NpgsqlDbType.Text));
            parameters.Add(Nullable(job.QueueingLock, NpgsqlDbType.Text));
            parameters.Add(new NpgsqlParameter<string> { TypedValue = job.ArgsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            parameters.Add(Nullable(job.ScheduledAt?.UtcDateTime, NpgsqlDbType.TimestampTz));
            if (trace is { } t)
            {
                parameters.Add(new NpgsqlParameter<string> { TypedValue = t.TraceParent });
                parameters.Add(Nullable(t.TraceState, NpgsqlDbType.Text));
            }
            long id;
            try
            {
                if (command is not null)
                    id = (long)(async ? await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) : command.ExecuteScalar())!;
                else
                {
                    await using var reader = async
                        ? await batch!.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
                        : batch!.ExecuteReader();
                    if (!(async ? await reader.NextResultAsync(cancellationToken).ConfigureAwait(false) : reader.NextResult())
                        || !(async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read()))
                        throw new InvalidOperationException("The defer's insert returned no id.");
                    id = reader.GetInt64(0);
                }
            }
            catch (PostgresException e) when (IsQueueingLockConflict(e))
            {
                throw await TranslateConflict(e, [job], target, async, cancellationToken).ConfigureAwait(false);
            }
            if (quiet)
                Notifier.Post(job.Queue, id);
            return id;
        }
        finally
        {
            if (owned)
            {
                Interlocked.Decrement(ref _defersInFlight);
                await Release(connection, async).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Whether a defer on a connection of the connector's own (its statement commits on its own)
    /// leaves its notification to <see cref="Notifier"/>: on the lean layout, when another defer
    /// of this connector is on its way (<see cref="DeferNotifier"/> says why). The count includes
    /// this defer. A sync defer uses the layout last seen and does not look it up.
    /// </summary>
    private async ValueTask<bool> QuietDeferAsync(NpgsqlConnection connection, bool async, CancellationToken cancellationToken)
    {
        if (!AlwaysQuietDefers && Volatile.Read(ref _defersInFlight) < 2)
            return false;
        return async
            ? await _leanColumns.HaveThemAsync(connection, cancellationToken).ConfigureAwait(false)
            : _leanColumns.LastSeen == true;
    }

    internal override async ValueTask<(long? Id, bool Inserted)> DeferJobOrGetExistingAsync(JobToDefer job, TraceContext? trace, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(SqlQueries.Get("defer_job_or_get_existing"), connection, transaction);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Queue });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.TaskName });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = job.Priority });
            cmd.Parameters.Add(Nullable(job.Lock, NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(job.QueueingLock, NpgsqlDbType.Text));
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.ArgsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            cmd.Parameters.Add(Nullable(job.ScheduledAt?.UtcDateTime, NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Nullable(trace?.TraceParent, NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(trace?.TraceState, NpgsqlDbType.Text));
            await using var reader = async
                ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
                : cmd.ExecuteReader();
            if (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
                return (reader.GetInt64(0), reader.GetBoolean(1));
            return (null, false);
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask<long?> FindWaitingJobAsync(string queueingLock, bool async, CancellationToken cancellationToken)
    {
        var result = await ScalarAsync(SqlQueries.Get("find_waiting_job_by_queueing_lock"), DbTarget.Pool, async, cancellationToken,
            new NpgsqlParameter<string> { TypedValue = queueingLock }).ConfigureAwait(false);
        return result is long id ? id : null;
    }

    internal override async ValueTask<long?> DeferPeriodicJobAsync(JobToDefer job, string periodicId, long timestamp, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("defer_periodic_job"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Queue });
        cmd.Parameters.Add(Nullable(job.Lock, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(Nullable(job.QueueingLock, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.TaskName });
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = job.Priority });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = periodicId });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = timestamp });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.ArgsJson });
        try
        {
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id ? id : null;
        }
        catch (PostgresException e) when (IsQueueingLockConflict(e))
        {
            throw new AlreadyEnqueuedException(job.QueueingLock ?? "?", null, e);
        }
    }

    internal override async ValueTask<long?> GetLastPeriodicTickAsync(string taskName, string periodicId, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("last_periodic_tick"), DbTarget.Pool, true, cancellationToken,
            new NpgsqlParameter<string> { TypedValue = taskName },
            new NpgsqlParameter<string> { TypedValue = periodicId }).ConfigureAwait(false) is long tick ? tick : null;

    internal override async ValueTask<long> RegisterWorkerAsync(WorkerRegistration registration, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        long workerId;
        await using (var cmd = new NpgsqlCommand(SqlQueries.Get("register_worker"), connection, tx))
            workerId = (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException("procrastinate_register_worker_v1 returned no worker id."));
        await using (var cmd = new NpgsqlCommand(SqlQueries.Get("record_worker_info"), connection, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = registration.Name });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = registration.Host });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = registration.ProcessId });
            cmd.Parameters.Add(Nullable(registration.Queues, NpgsqlDbType.Array | NpgsqlDbType.Varchar));
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = registration.Concurrency });
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return workerId;
    }

    internal override async ValueTask<bool> UpdateHeartbeatAsync(long workerId, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("update_heartbeat"), DbTarget.Pool, true, cancellationToken,
            new NpgsqlParameter<long> { TypedValue = workerId }).ConfigureAwait(false) is not null;

    internal override async ValueTask UnregisterWorkerAsync(long workerId, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("unregister_worker"), DbTarget.Pool, true, cancellationToken,
            new NpgsqlParameter<long> { TypedValue = workerId }).ConfigureAwait(false);

    internal override async ValueTask<IReadOnlyList<long>> PruneStalledWorkersAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("prune_stalled_workers"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<double> { TypedValue = olderThan.TotalSeconds });
        return await ReadInt64s(cmd, cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<IReadOnlyList<Job>> FetchJobsAsync(string[]? queues, long workerId, int maxJobs, CancellationToken cancellationToken, bool durable = true)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await WithLeanColumnsAsync(connection,
            lean => FetchJobsAsync(connection, lean, queues, workerId, maxJobs, durable, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a statement of the worker that has a variant for the lean layout's event columns
    /// (<see cref="LeanColumns"/>): that variant when the database has them. When they have gone
    /// since the last look (converted back to the compatible layout: a column, or the claim's
    /// function, is missing), it looks again and runs the statement again: the failed one's
    /// implicit transaction changed nothing.
    /// </summary>
    private async ValueTask<T> WithLeanColumnsAsync<T>(NpgsqlConnection connection, Func<bool, ValueTask<T>> run, CancellationToken cancellationToken)
    {
        var lean = await _leanColumns.HaveThemAsync(connection, cancellationToken).ConfigureAwait(false);
        try
        {
            return await run(lean).ConfigureAwait(false);
        }
        catch (PostgresException e) when (lean && e.SqlState is PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.UndefinedFunction)
        {
            _leanColumns.Forget();
            return await run(await _leanColumns.HaveThemAsync(connection, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }
    }

    private static async ValueTask<IReadOnlyList<Job>> FetchJobsAsync(
        NpgsqlConnection connection, bool lean, string[]? queues, long workerId, int maxJobs, bool durable, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection);
        // Every claim on all queues has the same best plan (queries.sql, fetch_jobs): plan it
        // once, whatever the statistics. PostgreSQL's own choice between a generic and a custom
        // plan averages the cost of every custom plan so far, and after a worker started on an
        // empty table it planned each claim anew for thousands of claims. So are the claims of a
        // worker on one queue and the merged claim of one on several (ClaimStatements.PlannedOnce);
        // only a claim with its queues in "= ANY" is planned each time, with its queues. The
        // settings last until this batch's implicit transaction ends.
        // The same settings say whether the commit waits for the WAL flush (WorkerOptions.DurableClaims).
        var settings = new NpgsqlBatchCommand(SqlQueries.Get(ClaimStatements.PlannedOnce(queues) ? "plan_claim_once" : "plan_claim_each_time"));
        settings.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = durable });
        batch.BatchCommands.Add(settings);
        if (lean)
        {
            // The jobs whose scheduled time has come join the claim's indexes first (LeanColumns).
            var promote = new NpgsqlBatchCommand(LeanColumns.PromoteDueJobs);
            promote.Parameters.Add(new NpgsqlParameter<int> { TypedValue = LeanColumns.PromoteAtOnce });
            batch.BatchCommands.Add(promote);
        }
        var cmd = new NpgsqlBatchCommand(ClaimStatements.For(lean, queues));
        cmd.Parameters.Add(Nullable(queues, NpgsqlDbType.Array | NpgsqlDbType.Varchar));
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Math.Min(maxJobs, MaxClaim) });
        batch.BatchCommands.Add(cmd);
        var jobs = new List<Job>(Math.Min(maxJobs, MaxClaim));
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the settings' row
            if (lean)
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the promoted count
            var columns = JobColumns.Of(reader);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                jobs.Add(columns.Read(reader));
        }
        // RETURNING has no order; run them in fetch order.
        jobs.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Id.CompareTo(b.Id));
        return jobs;
    }

    internal override async ValueTask<IReadOnlyList<Job>> FetchOrphanedJobsAsync(long workerId, long[] held, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("fetch_orphaned_jobs"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        cmd.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = held });
        return await ReadJobs(cmd, async: true, cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<IReadOnlyCollection<long>> FinishJobsAsync(IReadOnlyList<JobOutcome> outcomes, long workerId, CancellationToken cancellationToken)
    {
        var n = outcomes.Count;
        var ids = new long[n];
        var statuses = new string[n];
        var attempts = new int[n];
        var deletes = new bool[n];
        List<string>? locks = null;
        for (var i = 0; i < n; i++)
        {
            var o = outcomes[i];
            ids[i] = o.Job.Id;
            statuses[i] = o.Status.ToDbString();
            attempts[i] = o.Job.Attempts;
            deletes[i] = o.DeleteJob;
            if (o.Job.Lock is { } l)
                (locks ??= []).Add(l);
        }

        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await WithLeanColumnsAsync(connection,
            lean => FinishJobsAsync(connection, lean, ids, statuses, attempts, deletes, locks, workerId, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<IReadOnlyCollection<long>> FinishJobsAsync(NpgsqlConnection connection, bool lean,
        long[] ids, string[] statuses, int[] attempts, bool[] deletes, List<string>? locks, long workerId, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection);
        // Lookups by primary key, whatever the table's size when the plan was made (queries.sql, plan_finish).
        batch.BatchCommands.Add(new NpgsqlBatchCommand(SqlQueries.Get("plan_finish")));
        var finish = new NpgsqlBatchCommand(lean ? LeanColumns.Finish : SqlQueries.Get("finish_jobs"));
        finish.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        finish.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = statuses });
        finish.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = attempts });
        finish.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = deletes });
        finish.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        batch.BatchCommands.Add(finish);
        if (locks is not null)
        {
            // Same implicit transaction: the wake-up is delivered when the locks are released.
            var notify = new NpgsqlBatchCommand(SqlQueries.Get("notify_lock_heads"));
            notify.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. locks] });
            batch.BatchCommands.Add(notify);
        }
        var written = new HashSet<long>();
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the setting's row
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            written.Add(reader.GetInt64(0));
        return written;
    }

    internal override async ValueTask ReleaseJobsAsync(IReadOnlyList<Job> jobs, long workerId, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("release_jobs"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. jobs.Select(j => j.Id)] });
        cmd.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = [.. jobs.Select(j => j.Attempts)] });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<bool> RetryJobAsync(JobOutcome outcome, long workerId, CancellationToken cancellationToken)
    {
        var retry = outcome.Retry ?? throw new ArgumentException("The outcome has no retry decision.", nameof(outcome));
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        var cmd = new NpgsqlBatchCommand(SqlQueries.Get("retry_job"));
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = outcome.Job.Id });
        cmd.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = retry.RetryAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(Nullable(retry.Priority, NpgsqlDbType.Integer));
        cmd.Parameters.Add(Nullable(retry.Queue, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(Nullable(retry.Lock, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = outcome.Job.Attempts });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        batch.BatchCommands.Add(cmd);
        var wake = new NpgsqlBatchCommand(SqlQueries.Get("notify_job_runnable"));
        wake.Parameters.Add(new NpgsqlParameter<long> { TypedValue = outcome.Job.Id });
        batch.BatchCommands.Add(wake);
        if (outcome.Job.Lock is { } l)
        {
            var notify = new NpgsqlBatchCommand(SqlQueries.Get("notify_lock_heads"));
            notify.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [l] });
            batch.BatchCommands.Add(notify);
        }
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (IsQueueingLockConflict(e))
        {
            throw new AlreadyEnqueuedException(outcome.Job.QueueingLock ?? "?", null, e);
        }
    }

    internal override async ValueTask<IReadOnlyList<long>> ListAbortRequestedAsync(long[] jobIds, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("list_abort_requested"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = jobIds });
        return await ReadInt64s(cmd, cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<bool> CancelJobAsync(long jobId, bool abort, bool delete, DbTarget target, bool async, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("cancel_job"), target, async, cancellationToken,
            new NpgsqlParameter<long> { TypedValue = jobId },
            new NpgsqlParameter<bool> { TypedValue = abort },
            new NpgsqlParameter<bool> { TypedValue = delete }).ConfigureAwait(false) is long;

    internal override async ValueTask<JobStatus?> GetJobStatusAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("get_job_status"), target, async, cancellationToken,
            new NpgsqlParameter<long> { TypedValue = jobId }).ConfigureAwait(false) is string s
            ? JobStatusExtensions.ParseDbString(s)
            : null;

    internal override async ValueTask<Job?> GetJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(SqlQueries.Get("get_job"), connection, transaction);
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            await using var reader = async
                ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
                : cmd.ExecuteReader();
            if (!(async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read()))
                return null;
            return JobColumns.Of(reader).Read(reader);
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask<int> DeleteOldJobsAsync(int maxHours, string? queue, IReadOnlyList<JobStatus> statuses, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(SqlQueries.Get("delete_old_jobs"), connection, transaction);
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxHours });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. statuses.Select(s => s.ToDbString())] });
            cmd.Parameters.Add(Nullable(queue, NpgsqlDbType.Varchar));
            return async ? await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteNonQuery();
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask RetryJobManuallyAsync(long jobId, DateTimeOffset retryAt, int? priority, string? queue, string? @lock, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var batch = new NpgsqlBatch(connection, transaction);
            var clear = new NpgsqlBatchCommand(SqlQueries.Get("clear_abort_on_failed"));
            clear.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            var retry = new NpgsqlBatchCommand(SqlQueries.Get("manual_retry"));
            retry.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            retry.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = retryAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            retry.Parameters.Add(Nullable(priority, NpgsqlDbType.Integer));
            retry.Parameters.Add(Nullable(queue, NpgsqlDbType.Varchar));
            retry.Parameters.Add(Nullable(@lock, NpgsqlDbType.Varchar));
            var wake = new NpgsqlBatchCommand(SqlQueries.Get("notify_job_runnable"));
            wake.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            batch.BatchCommands.Add(clear);
            batch.BatchCommands.Add(retry);
            batch.BatchCommands.Add(wake);
            try
            {
                if (async) await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                else batch.ExecuteNonQuery();
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.RaiseException)
            {
                throw new InvalidOperationException(e.MessageText, e);
            }
            catch (PostgresException e) when (IsQueueingLockConflict(e))
            {
                throw new AlreadyEnqueuedException(await QueueingLockOf(jobId, async, cancellationToken).ConfigureAwait(false) ?? "?", null, e);
            }
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask<IReadOnlyList<JobEvent>> ListEventsAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(SqlQueries.Get("list_events"), connection, transaction);
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            await using var reader = async ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteReader();
            var events = new List<JobEvent>();
            while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
                events.Add(new JobEvent(reader.GetInt64(0), reader.GetInt64(1),
                    reader.IsDBNull(2) ? null : JobEventTypeExtensions.ParseDbString(reader.GetString(2)),
                    reader.IsDBNull(3) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(3), TimeSpan.Zero)));
            return events;
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask<IReadOnlyList<Job>> ListStalledJobsAsync(TimeSpan threshold, string? queue, string? taskName, bool async, CancellationToken cancellationToken)
    {
        await using var connection = async ? await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false) : DataSource.OpenConnection();
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("list_stalled_jobs"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<double> { TypedValue = threshold.TotalSeconds });
        cmd.Parameters.Add(Nullable(queue, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(Nullable(taskName, NpgsqlDbType.Varchar));
        return await ReadJobs(cmd, async, cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<IReadOnlyList<(Job Job, bool Retried)>> RescueStalledJobsAsync(TimeSpan threshold, Func<Job, bool> decide, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // One rescuer at a time, whatever the number of workers (COMPAT.md W3).
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_try_advisory_xact_lock({RescueLockKey})", connection, tx))
            if (!(bool)(await lockCmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                return [];

        IReadOnlyList<Job> stalled;
        await using (var cmd = new NpgsqlCommand(SqlQueries.Get("lock_stalled_jobs_for_rescue"), connection, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter<double> { TypedValue = threshold.TotalSeconds });
            stalled = await ReadJobs(cmd, true, cancellationToken).ConfigureAwait(false);
        }
        var done = new List<(Job, bool)>();
        foreach (var job in stalled)
        {
            var retry = decide(job);
            await tx.SaveAsync("rescue", cancellationToken).ConfigureAwait(false);
            try
            {
                await using var cmd = new NpgsqlCommand(SqlQueries.Get(retry ? "rescue_retry" : "rescue_fail"), connection, tx);
                cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = job.Id });
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                if (retry)
                {
                    await using var wake = new NpgsqlCommand(SqlQueries.Get("notify_job_runnable"), connection, tx);
                    wake.Parameters.Add(new NpgsqlParameter<long> { TypedValue = job.Id });
                    await wake.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                await tx.ReleaseAsync("rescue", cancellationToken).ConfigureAwait(false);
                done.Add((job, retry));
            }
            catch (PostgresException e) when (retry && IsQueueingLockConflict(e))
            {
                // Another job already waits under its queueing lock (W8): the stalled one fails.
                await tx.RollbackAsync("rescue", cancellationToken).ConfigureAwait(false);
                await using var fail = new NpgsqlCommand(SqlQueries.Get("rescue_fail"), connection, tx);
                fail.Parameters.Add(new NpgsqlParameter<long> { TypedValue = job.Id });
                await fail.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                done.Add((job, false));
            }
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return done;
    }

    internal override async ValueTask ReclaimRunningJobsAsync(long[] jobIds, long workerId, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("reclaim_running_jobs"), connection);
        cmd.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = jobIds });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = workerId });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<TimeSpan?> NextScheduledDelayAsync(string[]? queues, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await WithLeanColumnsAsync(connection, async lean =>
        {
            await using var cmd = new NpgsqlCommand(lean ? LeanColumns.NextScheduled : SqlQueries.Get("next_scheduled_at"), connection);
            cmd.Parameters.Add(Nullable(queues, NpgsqlDbType.Array | NpgsqlDbType.Varchar));
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is TimeSpan delay ? delay : (TimeSpan?)null;
        }, cancellationToken).ConfigureAwait(false);
    }

    internal override async ValueTask<IReadOnlyList<Job>> ListJobsAsync(JobFilter filter, JobPage page, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(SqlQueries.Get(page.NewestFirst ? "list_jobs_newest_first" : "list_jobs"), connection, transaction);
            cmd.Parameters.Add(Nullable(filter.Id, NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Nullable(filter.Queue, NpgsqlDbType.Varchar));
            cmd.Parameters.Add(Nullable(filter.Task, NpgsqlDbType.Varchar));
            cmd.Parameters.Add(Nullable(filter.Status?.ToDbString(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(filter.Lock, NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(filter.QueueingLock, NpgsqlDbType.Text));
            cmd.Parameters.Add(Nullable(filter.WorkerId, NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Nullable(page.After, NpgsqlDbType.Bigint));
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = page.Limit });
            return await ReadJobs(cmd, async, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    internal override async ValueTask<IReadOnlyList<JobCounts>> CountJobsAsync(JobGrouping grouping, JobFilter filter, bool async, CancellationToken cancellationToken)
    {
        // The grouping column comes from this closed list, never from input.
        var column = grouping switch
        {
            JobGrouping.Queue => "queue_name",
            JobGrouping.Task => "task_name",
            JobGrouping.Lock => "lock",
            _ => throw new ArgumentOutOfRangeException(nameof(grouping)),
        };
        await using var connection = async ? await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false) : DataSource.OpenConnection();
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("count_jobs_by").Replace("{group}", column, StringComparison.Ordinal), connection);
        cmd.Parameters.Add(Nullable(filter.Queue, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(Nullable(filter.Task, NpgsqlDbType.Varchar));
        cmd.Parameters.Add(Nullable(filter.Status?.ToDbString(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Nullable(filter.Lock, NpgsqlDbType.Text));
        var rows = new List<JobCounts>();
        await using var reader = async ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteReader();
        while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
            rows.Add(new JobCounts(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7)));
        return rows;
    }

    internal override async ValueTask<bool> DeleteJobAsync(long jobId, DbTarget target, bool async, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("delete_job"), target, async, cancellationToken,
            new NpgsqlParameter<long> { TypedValue = jobId }).ConfigureAwait(false) is long;

    internal override async ValueTask<IReadOnlyList<WorkerRow>> ListWorkersAsync(bool async, CancellationToken cancellationToken)
    {
        await using var connection = async ? await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false) : DataSource.OpenConnection();
        bool withInfo;
        await using (var check = new NpgsqlCommand("SELECT to_regclass('procrastinate_dotnet_workers') IS NOT NULL", connection))
            withInfo = (bool)(async ? await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) : check.ExecuteScalar())!;
        await using var cmd = new NpgsqlCommand(SqlQueries.Get(withInfo ? "list_workers" : "list_workers_without_info"), connection);
        var rows = new List<WorkerRow>();
        await using var reader = async ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteReader();
        while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
            rows.Add(new WorkerRow(
                reader.GetInt64(0),
                new DateTimeOffset(reader.GetFieldValue<DateTime>(1), TimeSpan.Zero),
                reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetInt32(4),
                reader.IsDBNull(5) ? null : reader.GetFieldValue<string[]>(5),
                reader.IsDBNull(6) ? null : reader.GetInt32(6),
                reader.IsDBNull(7) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(7), TimeSpan.Zero),
                reader.GetInt64(8)));
        return rows;
    }

    internal override async ValueTask<IReadOnlyDictionary<string, long>> CountWaitingJobsAsync(string[]? queues, CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(SqlQueries.Get("count_waiting_jobs"), connection);
        cmd.Parameters.Add(Nullable(queues, NpgsqlDbType.Array | NpgsqlDbType.Varchar));
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            counts[reader.GetString(0)] = reader.GetInt64(1);
        return counts;
    }

    internal override async ValueTask<VacuumOutcome> VacuumJobsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // PostgreSQL answers with a warning, not an error, when it skips the table: locked by
        // another vacuum (55P03), or not owned by this role.
        var locked = false;
        string? refused = null;
        void OnNotice(object? sender, NpgsqlNoticeEventArgs e)
        {
            if (e.Notice.SqlState == PostgresErrorCodes.LockNotAvailable)
                locked = true;
            else if (e.Notice.InvariantSeverity == "WARNING")
                refused ??= e.Notice.MessageText;
        }
        connection.Notice += OnNotice;
        try
        {
            // No timeout: a large table takes as long as it takes; stopping the worker cancels it.
            await using var cmd = new NpgsqlCommand(SqlQueries.Get("vacuum_jobs"), connection) { CommandTimeout = 0 };
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            connection.Notice -= OnNotice;
        }
        return refused is not null ? new VacuumOutcome(VacuumOutcomeKind.Refused, refused)
            : locked ? new VacuumOutcome(VacuumOutcomeKind.Skipped)
            : new VacuumOutcome(VacuumOutcomeKind.Done);
    }

    internal override async ValueTask PingAsync(bool async, CancellationToken cancellationToken) =>
        await ScalarAsync(SqlQueries.Get("ping"), DbTarget.Pool, async, cancellationToken).ConfigureAwait(false);

    private async ValueTask<string?> QueueingLockOf(long jobId, bool async, CancellationToken cancellationToken) =>
        (await GetJobAsync(jobId, DbTarget.Pool, async, cancellationToken).ConfigureAwait(false))?.QueueingLock;

    private const long RescueLockKey = 0x5072_6f63_5265_7363; // "ProcResc"

    private static async ValueTask<IReadOnlyList<Job>> ReadJobs(NpgsqlCommand cmd, bool async, CancellationToken cancellationToken)
    {
        var jobs = new List<Job>();
        await using var reader = async ? await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteReader();
        var columns = JobColumns.Of(reader);
        while (async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read())
            jobs.Add(columns.Read(reader));
        return jobs;
    }

    /// <summary>The shared listener reads notifications on its own pool thread (SharedListener).</summary>
    internal override bool NotifiesOnListenerThread => true;

    // One LISTEN connection per connection string and process, shared by every worker; a
    // connector disposed without its workers being stopped drops out at the listener's next wake-up.
    internal override Task ListenAsync(IReadOnlyList<string> channels, Action<string, string> onNotification,
        Action<bool> onListening, CancellationToken cancellationToken) =>
        SharedListener.ListenAsync(() => DataSource, () => !Volatile.Read(ref _disposed), ListenKeepAlive,
            channels, onNotification, onListening, cancellationToken);

    /// <summary>Quotes a channel name as a PostgreSQL identifier, doubling embedded quotes.</summary>
    internal static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            if (_notifier is { } notifier)
                await notifier.FlushAsync().ConfigureAwait(false);
            if (_ownsDataSource && _dataSource is not null)
                await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (_disposed)
            return;
        _disposed = true;
        if (disposing && _ownsDataSource)
            _dataSource?.Dispose();
    }

    internal static bool IsQueueingLockConflict(PostgresException e) =>
        e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName is QueueingLockIndex or LeanQueueingLockIndex;

    private async ValueTask<Exception> TranslateConflict(PostgresException e, IReadOnlyList<JobToDefer> jobs, DbTarget target, bool async, CancellationToken cancellationToken)
    {
        var candidates = jobs.Where(j => j.QueueingLock is not null).Select(j => j.QueueingLock!).Distinct().ToList();
        // Within one batch, a repeated key is the conflict.
        var repeated = jobs.Where(j => j.QueueingLock is not null).GroupBy(j => j.QueueingLock).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (repeated is not null)
            return new AlreadyEnqueuedException(repeated, null, e);
        // The caller's transaction is aborted now; look the waiting job up on our own connection.
        foreach (var key in candidates)
        {
            var existing = await FindWaitingJobAsync(key, async, cancellationToken).ConfigureAwait(false);
            if (existing is not null || candidates.Count == 1)
                return new AlreadyEnqueuedException(key, existing, e);
        }
        _ = target;
        return new AlreadyEnqueuedException(candidates.FirstOrDefault() ?? "?", null, e);
    }

    private static NpgsqlParameter Nullable<T>(T? value, NpgsqlDbType type) => new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = type };

    private async ValueTask<(NpgsqlConnection Connection, NpgsqlTransaction? Transaction, bool Owned)> Acquire(DbTarget target, bool async, CancellationToken cancellationToken)
    {
        if (target.Connection is { } external)
            return (external, target.Transaction, false);
        var connection = async
            ? await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false)
            : DataSource.OpenConnection();
        return (connection, null, true);
    }

    private static async ValueTask Release(NpgsqlConnection connection, bool async)
    {
        if (async)
            await connection.DisposeAsync().ConfigureAwait(false);
        else
            connection.Dispose();
    }

    private async ValueTask<object?> ScalarAsync(string sql, DbTarget target, bool async, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        var (connection, transaction, owned) = await Acquire(target, async, cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(sql, connection, transaction);
            cmd.Parameters.AddRange(parameters);
            var result = async ? await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) : cmd.ExecuteScalar();
            return result is DBNull ? null : result;
        }
        finally
        {
            if (owned)
                await Release(connection, async).ConfigureAwait(false);
        }
    }

    private static async Task<List<long>> ReadInt64s(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        var ids = new List<long>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            ids.Add(reader.GetInt64(0));
        return ids;
    }

    /// <summary>Column ordinals of a job row, looked up by name once per result (COMPAT.md 1.4).</summary>
    private readonly record struct JobColumns(int Id, int Queue, int Task, int Priority, int Lock, int QueueingLock,
        int Args, int Status, int ScheduledAt, int Attempts, int AbortRequested, int WorkerId, int TraceParent, int TraceState)
    {
        public static JobColumns Of(NpgsqlDataReader r) => new(
            r.GetOrdinal("id"), r.GetOrdinal("queue_name"), r.GetOrdinal("task_name"), r.GetOrdinal("priority"),
            r.GetOrdinal("lock"), r.GetOrdinal("queueing_lock"), r.GetOrdinal("args"), r.GetOrdinal("status"),
            r.GetOrdinal("scheduled_at"), r.GetOrdinal("attempts"), r.GetOrdinal("abort_requested"), r.GetOrdinal("worker_id"),
            Optional(r, "traceparent"), Optional(r, "tracestate"));

        private static int Optional(NpgsqlDataReader r, string name)
        {
            for (var i = 0; i < r.FieldCount; i++)
                if (r.GetName(i) == name)
                    return i;
            return -1;
        }

        public Job Read(NpgsqlDataReader r) => new()
        {
            Id = r.GetInt64(Id),
            Queue = r.GetString(Queue),
            TaskName = r.GetString(Task),
            Priority = r.GetInt32(Priority),
            Lock = r.IsDBNull(Lock) ? null : r.GetString(Lock),
            QueueingLock = r.IsDBNull(QueueingLock) ? null : r.GetString(QueueingLock),
            ArgsJson = r.GetString(Args),
            Status = JobStatusExtensions.ParseDbString(r.GetString(Status)),
            ScheduledAt = r.IsDBNull(ScheduledAt) ? null : new DateTimeOffset(r.GetFieldValue<DateTime>(ScheduledAt), TimeSpan.Zero),
            Attempts = r.GetInt32(Attempts),
            AbortRequested = r.GetBoolean(AbortRequested),
            WorkerId = r.IsDBNull(WorkerId) ? null : r.GetInt64(WorkerId),
            TraceParent = TraceParent < 0 || r.IsDBNull(TraceParent) ? null : r.GetString(TraceParent),
            TraceState = TraceState < 0 || r.IsDBNull(TraceState) ? null : r.GetString(TraceState),
        };
    }
}
