using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Internal.Sql;

namespace Procrastinate;

/// <summary>The outcome of <see cref="SchemaManager.Apply()"/>.</summary>
/// <param name="InstalledBase">True when the Procrastinate schema was created now; false when it was already there.</param>
/// <param name="AppliedMigrations">The .NET migrations applied now (in order).</param>
/// <param name="RecordedExisting">True when an existing schema (installed by Python, say) was recorded in the ledger now.</param>
public sealed record SchemaApplyResult(bool InstalledBase, IReadOnlyList<string> AppliedMigrations, bool RecordedExisting)
{
    /// <summary>The table layout the database has after the call.</summary>
    public SchemaLayout Layout { get; init; }

    /// <summary>True when the layout was converted by this call (see <see cref="SchemaLayout"/>).</summary>
    public bool LayoutChanged { get; init; }

    /// <summary>True when anything was created.</summary>
    public bool Changed => InstalledBase || AppliedMigrations.Count > 0 || RecordedExisting || LayoutChanged;

    /// <summary>A one-line summary for people.</summary>
    public override string ToString() => Summary() + (LayoutChanged ? $" Converted to the {LayoutName(Layout)} layout." : "");

    internal static string LayoutName(SchemaLayout layout) => layout == SchemaLayout.Lean ? "lean" : "Procrastinate-compatible";

    private string Summary() => (InstalledBase, AppliedMigrations.Count, RecordedExisting) switch
    {
        (true, _, _) => $"Schema installed ({SchemaManager.BaseVersion}), with {AppliedMigrations.Count} .NET migration(s).",
        (false, 0, false) => LayoutChanged ? "Schema already installed and up to date." : "Schema already installed and up to date; nothing changed.",
        (false, 0, true) => "Schema already installed (Procrastinate 3.4 level or later); recorded it in the .NET ledger; no Procrastinate object changed.",
        _ => $"Schema already installed; applied .NET migration(s): {string.Join(", ", AppliedMigrations)}.",
    };
}

/// <summary>What the database holds, as read by <see cref="SchemaManager.Check"/>.</summary>
/// <param name="Installed">The Procrastinate tables exist.</param>
/// <param name="AtSupportedLevel">The schema is at the Procrastinate 3.4 level or later.</param>
/// <param name="PendingMigrations">.NET migrations this version knows but the database lacks.</param>
/// <param name="UnknownMigrations">Migrations in the ledger that this version does not know (the database is newer).</param>
public sealed record SchemaStatus(bool Installed, bool AtSupportedLevel, IReadOnlyList<string> PendingMigrations, IReadOnlyList<string> UnknownMigrations)
{
    /// <summary>True when this version can use the database as it is.</summary>
    public bool IsUsable => Installed && AtSupportedLevel && PendingMigrations.Count == 0 && UnknownMigrations.Count == 0;

    /// <summary>The table layout installed (see <see cref="SchemaLayout"/>).</summary>
    public SchemaLayout Layout { get; init; }
}

/// <summary>
/// How the Procrastinate tables are kept. Both layouts have the same tables, columns, functions
/// and event rows, and the library behaves the same on both; they differ in triggers, foreign
/// keys and indexes. Choose with <see cref="SchemaManager.ApplyAsync(SchemaLayout?, CancellationToken)"/>
/// or <c>procrastinate schema --apply --layout lean</c>; either can be converted into the other.
/// </summary>
public enum SchemaLayout
{
    /// <summary>
    /// Procrastinate 3.x's own schema (COMPAT.md section 2): Python and .NET processes can share
    /// the database. Per-row triggers write the events and the notifications.
    /// </summary>
    Compatible,

    /// <summary>
    /// For databases only .NET processes use: statement-level triggers (one event INSERT and one
    /// notification per queue per statement instead of several trigger calls per job), no
    /// foreign keys checked row by row, and partial indexes. About twice the throughput on
    /// batched work. Python Procrastinate cannot share such a database.
    /// </summary>
    Lean,
}

/// <summary>
/// Installs the Procrastinate schema (COMPAT.md section 2) and the .NET additions, idempotently,
/// and reports what a database holds.
/// </summary>
public sealed class SchemaManager
{
    /// <summary>The Procrastinate release whose schema this library installs.</summary>
    public const string BaseVersion = "procrastinate-3.9.0";

    /// <summary>The ledger table of the .NET installer.</summary>
    public const string LedgerTable = "procrastinate_dotnet_schema_migrations";

    private const long AdvisoryLockKey = 0x5072_6f63_7261_7374; // "Procrast"

    private static readonly (string Name, string Resource)[] Migrations =
    [
        ("0001_dotnet_worker_info", "Procrastinate.Schema/Migrations/0001_dotnet_worker_info.sql"),
        ("0002_dotnet_defer_periodic_job", "Procrastinate.Schema/Migrations/0002_dotnet_defer_periodic_job.sql"),
        ("0003_dotnet_job_trace", "Procrastinate.Schema/Migrations/0003_dotnet_job_trace.sql"),
        ("0004_dotnet_pending_events", "Procrastinate.Schema/Migrations/0004_dotnet_pending_events.sql"),
        ("0005_dotnet_queue_claim_index", "Procrastinate.Schema/Migrations/0005_dotnet_queue_claim_index.sql"),
        ("0006_dotnet_scheduled_index", "Procrastinate.Schema/Migrations/0006_dotnet_scheduled_index.sql"),
    ];

    /// <summary>The ledger row that marks a database converted to <see cref="SchemaLayout.Lean"/>.</summary>
    public const string LeanLayoutMarker = "dotnet_layout_lean";

    /// <summary>
    /// The ledger row that marks a lean database whose event-writing trigger functions are the
    /// current ones (<c>Layouts/lean_triggers.sql</c>); a database converted by an earlier version
    /// has working but slower ones, which <see cref="Apply()"/> replaces. Revision 5 keeps the jobs
    /// scheduled for later out of the claim's indexes; revision 6 lets a defer send its
    /// notification after its commit (<see cref="Internal.DeferNotifier"/>).
    /// </summary>
    public const string LeanTriggersMarker = "dotnet_layout_lean_triggers_6";

    /// <summary>What the marker of the current trigger functions says in the ledger.</summary>
    private const string LeanTriggersNote = "lean trigger functions, revision 6";

    /// <summary>
    /// Markers of earlier revisions of the lean trigger functions: known (a database carrying one
    /// is not newer than this version), and replaced by <see cref="LeanTriggersMarker"/> on apply.
    /// Revision 2 had plans that could go quadratic in a session whose first update was small;
    /// revisions 2 and 3 wrote a job's 'deferred' and 'started' events in the defer and the claim;
    /// revisions 2 to 4 kept the jobs scheduled for later in the claim's indexes; revisions 2 to 5
    /// notified in every defer's transaction.
    /// </summary>
    private static readonly string[] EarlierLeanTriggersMarkers =
        ["dotnet_layout_lean_triggers_2", "dotnet_layout_lean_triggers_3", "dotnet_layout_lean_triggers_4", "dotnet_layout_lean_triggers_5"];

    private readonly App _app;

    internal SchemaManager(App app) => _app = app;

    /// <summary>The SQL that converts an installed schema to <paramref name="layout"/> (from the other layout).</summary>
    public static string ReadLayoutSql(SchemaLayout layout) => layout == SchemaLayout.Lean
        ? ReadLeanTriggersSql() + "\n" + SqlQueries.ReadResource("Procrastinate.Schema/Layouts/lean.sql")
        : SqlQueries.ReadResource("Procrastinate.Schema/Layouts/compatible.sql");

    private static string ReadLeanTriggersSql() => SqlQueries.ReadResource("Procrastinate.Schema/Layouts/lean_triggers.sql");

    /// <summary>The names of the .NET migrations this version knows, in order.</summary>
    public static IReadOnlyList<string> KnownMigrations { get; } = [.. Migrations.Select(m => m.Name)];

    /// <summary>The SQL of one .NET migration (see <see cref="KnownMigrations"/>).</summary>
    /// <exception cref="ArgumentException">No migration has this name.</exception>
    public static string ReadMigrationSql(string name)
    {
        foreach (var (known, resource) in Migrations)
            if (known == name)
                return SqlQueries.ReadResource(resource);
        throw new ArgumentException($"No .NET migration is named '{name}'.", nameof(name));
    }

    /// <summary>The SQL that creates the Procrastinate objects.</summary>
    public static string ReadSchemaSql() => SqlQueries.ReadResource("Procrastinate.Schema/schema.sql");

    /// <summary>
    /// Creates the schema when it is missing, then applies the .NET migrations not yet applied.
    /// On a database that already has everything, changes nothing. Runs in one transaction,
    /// serialized against concurrent calls by an advisory lock. Keeps the installed
    /// <see cref="SchemaLayout"/>; a new schema gets the compatible one.
    /// </summary>
    /// <exception cref="SchemaException">The existing schema is older than Procrastinate 3.4, or newer than this version.</exception>
    public SchemaApplyResult Apply() => SyncRunner.Run(ApplyAsync(null, async: false, CancellationToken.None));

    /// <summary>
    /// As <see cref="Apply()"/>, and then makes the table layout <paramref name="layout"/>, converting
    /// an installed schema of the other layout (null: keep the installed one). Converting takes
    /// an exclusive lock on the job table for the time it runs (index builds included): do it
    /// while few jobs are stored, or at a quiet time. Converting to <see cref="SchemaLayout.Lean"/>
    /// shuts Python Procrastinate processes out of the database.
    /// </summary>
    public SchemaApplyResult Apply(SchemaLayout? layout) => SyncRunner.Run(ApplyAsync(layout, async: false, CancellationToken.None));

    /// <inheritdoc cref="Apply()"/>
    public Task<SchemaApplyResult> ApplyAsync(CancellationToken cancellationToken = default) =>
        ApplyAsync(null, async: true, cancellationToken).AsTask();

    /// <inheritdoc cref="Apply(SchemaLayout?)"/>
    public Task<SchemaApplyResult> ApplyAsync(SchemaLayout? layout, CancellationToken cancellationToken = default) =>
        ApplyAsync(layout, async: true, cancellationToken).AsTask();

    /// <summary>Reads what the database holds, without changing anything.</summary>
    public SchemaStatus Check() => SyncRunner.Run(CheckAsync(async: false, CancellationToken.None));

    /// <inheritdoc cref="Check"/>
    public Task<SchemaStatus> CheckAsync(CancellationToken cancellationToken = default) =>
        CheckAsync(async: true, cancellationToken).AsTask();

    private NpgsqlDataSource DataSource => (_app.Connector as NpgsqlConnector)?.DataSource
        ?? throw new NotSupportedException($"{_app.Connector.GetType().Name} has no database schema to manage.");

    private async ValueTask<SchemaApplyResult> ApplyAsync(SchemaLayout? layout, bool async, CancellationToken ct)
    {
        try
        {
            return await ApplyCoreAsync(layout, async, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new SchemaException(
                $"The schema needs changes that this database role may not make ({e.MessageText}): apply it as the role that owns the Procrastinate objects (`procrastinate schema --apply`).", e);
        }
    }

    private async ValueTask<SchemaApplyResult> ApplyCoreAsync(SchemaLayout? layout, bool async, CancellationToken ct)
    {
        await using var connection = async ? await DataSource.OpenConnectionAsync(ct).ConfigureAwait(false) : DataSource.OpenConnection();
        await using var tx = async ? await connection.BeginTransactionAsync(ct).ConfigureAwait(false) : connection.BeginTransaction();
        await Exec(connection, tx, $"SELECT pg_advisory_xact_lock({AdvisoryLockKey})", async, ct).ConfigureAwait(false);

        var existing = await Scalar<bool>(connection, tx, "SELECT to_regclass('procrastinate_jobs') IS NOT NULL", async, ct).ConfigureAwait(false);
        if (!existing)
        {
            await EnsurePlpgsql(connection, tx, async, ct).ConfigureAwait(false);
            await Exec(connection, tx, ReadSchemaSql(), async, ct).ConfigureAwait(false);
        }
        if (!await IsSupportedLevel(connection, tx, async, ct).ConfigureAwait(false))
            throw new SchemaException(
                "The database has a Procrastinate schema older than 3.4. Apply Procrastinate's Python migrations up to 3.4 or later first.");

        // No DDL unless something is missing: a role that may use but not create objects can
        // call this on an up-to-date database (docs/least-privilege.sql).
        if (!await Scalar<bool>(connection, tx, $"SELECT to_regclass('{LedgerTable}') IS NOT NULL", async, ct).ConfigureAwait(false))
        {
            await Exec(connection, tx, $"""
                CREATE TABLE {LedgerTable} (
                    name text PRIMARY KEY,
                    applied_at timestamp with time zone NOT NULL DEFAULT now(),
                    note text
                )
                """, async, ct).ConfigureAwait(false);
        }
        var applied = await AppliedNames(connection, tx, async, ct).ConfigureAwait(false);
        var unknown = applied.Where(n => !IsKnownLedgerName(n)).ToList();
        if (unknown.Count > 0)
            throw new SchemaException(
                $"The database's schema is newer than this version of Procrastinate for .NET (unknown migrations: {string.Join(", ", unknown)}). Upgrade the library.");

        var recordedExisting = false;
        if (!applied.Contains(BaseVersion))
        {
            await Record(connection, tx, BaseVersion, existing ? "existing schema found" : "installed", async, ct).ConfigureAwait(false);
            recordedExisting = existing;
        }
        var appliedNow = new List<string>();
        foreach (var (name, resource) in Migrations)
        {
            if (applied.Contains(name))
                continue;
            await Exec(connection, tx, SqlQueries.ReadResource(resource), async, ct).ConfigureAwait(false);
            await Record(connection, tx, name, "applied", async, ct).ConfigureAwait(false);
            appliedNow.Add(name);
        }

        // The layout conversion comes last: it works on the objects the migrations created.
        var current = applied.Contains(LeanLayoutMarker) ? SchemaLayout.Lean : SchemaLayout.Compatible;
        var target = layout ?? current;
        if (target != current)
        {
            await Exec(connection, tx, ReadLayoutSql(target), async, ct).ConfigureAwait(false);
            if (target == SchemaLayout.Lean)
            {
                await Record(connection, tx, LeanLayoutMarker, "converted to the lean layout", async, ct).ConfigureAwait(false);
                await Record(connection, tx, LeanTriggersMarker, LeanTriggersNote, async, ct).ConfigureAwait(false);
            }
            else
            {
                await Exec(connection, tx, $"DELETE FROM {LedgerTable} WHERE name IN ({LeanLedgerNames})", async, ct).ConfigureAwait(false);
            }
        }
        else if (target == SchemaLayout.Lean && !applied.Contains(LeanTriggersMarker))
        {
            // Converted by an earlier version: same events, slower functions.
            await Exec(connection, tx, ReadLeanTriggersSql(), async, ct).ConfigureAwait(false);
            await Exec(connection, tx, $"DELETE FROM {LedgerTable} WHERE name IN ({EarlierLeanTriggersNames})", async, ct).ConfigureAwait(false);
            await Record(connection, tx, LeanTriggersMarker, LeanTriggersNote, async, ct).ConfigureAwait(false);
            appliedNow.Add(LeanTriggersMarker);
        }

        if (async) await tx.CommitAsync(ct).ConfigureAwait(false);
        else tx.Commit();

        var result = new SchemaApplyResult(!existing, appliedNow, recordedExisting) { Layout = target, LayoutChanged = target != current };
        Log.Schema(_app.Logger, "apply_schema", result.ToString());
        return result;
    }

    private async ValueTask<SchemaStatus> CheckAsync(bool async, CancellationToken ct)
    {
        await using var connection = async ? await DataSource.OpenConnectionAsync(ct).ConfigureAwait(false) : DataSource.OpenConnection();
        var installed = await Scalar<bool>(connection, null, "SELECT to_regclass('procrastinate_jobs') IS NOT NULL", async, ct).ConfigureAwait(false);
        if (!installed)
            return new SchemaStatus(false, false, KnownMigrations, []);
        var level = await IsSupportedLevel(connection, null, async, ct).ConfigureAwait(false);
        var hasLedger = await Scalar<bool>(connection, null, $"SELECT to_regclass('{LedgerTable}') IS NOT NULL", async, ct).ConfigureAwait(false);
        var applied = hasLedger ? await AppliedNames(connection, null, async, ct).ConfigureAwait(false) : [];
        return new SchemaStatus(true, level,
            [.. KnownMigrations.Where(m => !applied.Contains(m))],
            [.. applied.Where(n => !IsKnownLedgerName(n))])
        {
            Layout = applied.Contains(LeanLayoutMarker) ? SchemaLayout.Lean : SchemaLayout.Compatible,
        };
    }

    private static bool IsKnownLedgerName(string name) =>
        name == BaseVersion || name == LeanLayoutMarker || name == LeanTriggersMarker
        || EarlierLeanTriggersMarkers.Contains(name) || KnownMigrations.Contains(name);

    /// <summary>The ledger names of earlier trigger revisions, as a SQL list of literals.</summary>
    private static string EarlierLeanTriggersNames => string.Join(", ", EarlierLeanTriggersMarkers.Select(n => $"'{n}'"));

    /// <summary>Every ledger name of the lean layout (SQL list), removed when converting back.</summary>
    private static string LeanLedgerNames => $"'{LeanLayoutMarker}', '{LeanTriggersMarker}', {EarlierLeanTriggersNames}";

    private static async ValueTask<bool> IsSupportedLevel(NpgsqlConnection c, NpgsqlTransaction? tx, bool async, CancellationToken ct) =>
        await Scalar<bool>(c, tx, """
            SELECT EXISTS (
                       SELECT 1 FROM pg_enum e
                       WHERE e.enumtypid = to_regtype('procrastinate_job_event_type') AND e.enumlabel = 'retried')
                   AND to_regprocedure('procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, character varying, character varying)') IS NOT NULL
            """, async, ct).ConfigureAwait(false);

    private static async ValueTask EnsurePlpgsql(NpgsqlConnection c, NpgsqlTransaction tx, bool async, CancellationToken ct)
    {
        // As Python does: try to create it; a failure is fine when the extension is already there
        // (managed services often refuse CREATE EXTENSION to non-superusers).
        if (async) await tx.SaveAsync("plpgsql", ct).ConfigureAwait(false); else tx.Save("plpgsql");
        try
        {
            await Exec(c, tx, "CREATE EXTENSION IF NOT EXISTS plpgsql WITH SCHEMA pg_catalog", async, ct).ConfigureAwait(false);
            if (async) await tx.ReleaseAsync("plpgsql", ct).ConfigureAwait(false); else tx.Release("plpgsql");
        }
        catch (PostgresException)
        {
            if (async) await tx.RollbackAsync("plpgsql", ct).ConfigureAwait(false); else tx.Rollback("plpgsql");
            if (!await Scalar<bool>(c, tx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'plpgsql')", async, ct).ConfigureAwait(false))
                throw;
        }
    }

    private static async ValueTask<HashSet<string>> AppliedNames(NpgsqlConnection c, NpgsqlTransaction? tx, bool async, CancellationToken ct)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand($"SELECT name FROM {LedgerTable}", c, tx);
        await using var reader = async ? await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false) : cmd.ExecuteReader();
        while (async ? await reader.ReadAsync(ct).ConfigureAwait(false) : reader.Read())
            names.Add(reader.GetString(0));
        return names;
    }

    private static async ValueTask Record(NpgsqlConnection c, NpgsqlTransaction tx, string name, string note, bool async, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"INSERT INTO {LedgerTable} (name, note) VALUES ($1, $2)", c, tx);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = note });
        if (async) await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false); else cmd.ExecuteNonQuery();
    }

    private static async ValueTask Exec(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, bool async, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, c, tx);
        if (async) await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false); else cmd.ExecuteNonQuery();
    }

    private static async ValueTask<T> Scalar<T>(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, bool async, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, c, tx);
        var value = async ? await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) : cmd.ExecuteScalar();
        return (T)value!;
    }
}
