namespace Procrastinate.Tests.Schema;

/// <summary>
/// The schema contract of COMPAT.md section 2 (Procrastinate 3.9.0), transcribed BY HAND into the
/// normalized form PostgreSQL prints (format_type, pg_get_expr, pg_get_constraintdef,
/// pg_get_indexdef, pg_get_triggerdef, pg_get_function_arguments/result), without the schema
/// qualifier. Deliberately neither read from COMPAT.md nor generated from schema.sql: the point is
/// to catch drift between the two. When COMPAT.md changes, change this file by hand.
/// </summary>
public static class ExpectedCatalog
{
    /// <summary>Names our own additions use (COMPAT.md 1.2 rule 2). Such objects are tolerated, not required.</summary>
    public const string AllowedExtraPrefix = "procrastinate_dotnet_";

    /// <summary>The .NET additions known today (all tolerated through <see cref="AllowedExtraPrefix"/>).</summary>
    public static IReadOnlyList<string> KnownExtraTables { get; } =
    [
        "procrastinate_dotnet_schema_migrations", // the installer's ledger (COMPAT.md 1.4)
        "procrastinate_dotnet_workers",           // per-worker metadata side table (COMPAT.md 2.4.1)
    ];

    /// <summary>The four core tables of section 2.4.</summary>
    public static IReadOnlySet<string> CoreTables { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "procrastinate_workers", "procrastinate_jobs", "procrastinate_periodic_defers", "procrastinate_events",
    };

    public static IReadOnlyList<CatalogObject> All { get; } = Build();

    private static List<CatalogObject> Build()
    {
        var o = new List<CatalogObject>();

        // 2.2 Enumerated types, labels in this exact order.
        o.Add(Enum("procrastinate_job_status",
            "todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted"));
        o.Add(Enum("procrastinate_job_event_type",
            "deferred", "started", "deferred_for_retry", "failed", "succeeded", "cancelled",
            "abort_requested", "aborted", "scheduled", "retried"));

        // 2.3 Composite type; field order is part of the contract.
        o.Add(Composite("procrastinate_job_to_defer_v1",
            ("queue_name", "character varying"),
            ("task_name", "character varying"),
            ("priority", "integer"),
            ("lock", "text"),
            ("queueing_lock", "text"),
            ("args", "jsonb"),
            ("scheduled_at", "timestamp with time zone")));

        // 2.4.1 procrastinate_workers
        o.AddRange(Table("procrastinate_workers",
            new Col("id", "bigint", NotNull: true, Identity: "GENERATED ALWAYS"),
            new Col("last_heartbeat", "timestamp with time zone", NotNull: true, Default: "now()")));
        o.Add(Constraint("procrastinate_workers_pkey", "procrastinate_workers", "PRIMARY KEY", "PRIMARY KEY (id)"));

        // 2.4.2 procrastinate_jobs, fresh-install column order.
        o.AddRange(Table("procrastinate_jobs",
            new Col("id", "bigint", NotNull: true, Default: "nextval('procrastinate_jobs_id_seq'::regclass)"),
            new Col("queue_name", "character varying(128)", NotNull: true),
            new Col("task_name", "character varying(128)", NotNull: true),
            new Col("priority", "integer", NotNull: true, Default: "0"),
            new Col("lock", "text", NotNull: false),
            new Col("queueing_lock", "text", NotNull: false),
            new Col("args", "jsonb", NotNull: true, Default: "'{}'::jsonb"),
            new Col("status", "procrastinate_job_status", NotNull: true, Default: "'todo'::procrastinate_job_status"),
            new Col("scheduled_at", "timestamp with time zone", NotNull: false),
            new Col("attempts", "integer", NotNull: true, Default: "0"),
            new Col("abort_requested", "boolean", NotNull: true, Default: "false"),
            new Col("worker_id", "bigint", NotNull: false)));
        o.Add(Constraint("procrastinate_jobs_pkey", "procrastinate_jobs", "PRIMARY KEY", "PRIMARY KEY (id)"));
        o.Add(Constraint("procrastinate_jobs_worker_id_fkey", "procrastinate_jobs", "FOREIGN KEY",
            "FOREIGN KEY (worker_id) REFERENCES procrastinate_workers(id) ON DELETE SET NULL"));
        o.Add(Constraint("check_not_todo_abort_requested", "procrastinate_jobs", "CHECK",
            "CHECK ((NOT ((status = 'todo'::procrastinate_job_status) AND (abort_requested = true))))"));

        // 2.4.3 procrastinate_periodic_defers
        o.AddRange(Table("procrastinate_periodic_defers",
            new Col("id", "bigint", NotNull: true, Default: "nextval('procrastinate_periodic_defers_id_seq'::regclass)"),
            new Col("task_name", "character varying(128)", NotNull: true),
            new Col("defer_timestamp", "bigint", NotNull: false),
            new Col("job_id", "bigint", NotNull: false),
            new Col("periodic_id", "character varying(128)", NotNull: true, Default: "''::character varying")));
        o.Add(Constraint("procrastinate_periodic_defers_pkey", "procrastinate_periodic_defers", "PRIMARY KEY", "PRIMARY KEY (id)"));
        o.Add(Constraint("procrastinate_periodic_defers_unique", "procrastinate_periodic_defers", "UNIQUE",
            "UNIQUE (task_name, periodic_id, defer_timestamp)"));
        o.Add(Constraint("procrastinate_periodic_defers_job_id_fkey", "procrastinate_periodic_defers", "FOREIGN KEY",
            "FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id)"));

        // 2.4.4 procrastinate_events
        o.AddRange(Table("procrastinate_events",
            new Col("id", "bigint", NotNull: true, Default: "nextval('procrastinate_events_id_seq'::regclass)"),
            new Col("job_id", "bigint", NotNull: true),
            new Col("type", "procrastinate_job_event_type", NotNull: false),
            new Col("at", "timestamp with time zone", NotNull: false, Default: "now()")));
        o.Add(Constraint("procrastinate_events_pkey", "procrastinate_events", "PRIMARY KEY", "PRIMARY KEY (id)"));
        o.Add(Constraint("procrastinate_events_job_id_fkey", "procrastinate_events", "FOREIGN KEY",
            "FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id) ON DELETE CASCADE"));

        // 2.4 Sequences: bigint, start 1, increment 1, no cycle (and the defaults of bigserial / identity).
        o.Add(Sequence("procrastinate_jobs_id_seq", "procrastinate_jobs.id"));
        o.Add(Sequence("procrastinate_periodic_defers_id_seq", "procrastinate_periodic_defers.id"));
        o.Add(Sequence("procrastinate_events_id_seq", "procrastinate_events.id"));
        o.Add(Sequence("procrastinate_workers_id_seq", "procrastinate_workers.id (identity)"));

        // 2.4 / 2.5 Indexes backing the primary keys and the unique constraint, same names.
        o.Add(Index("procrastinate_workers_pkey", "procrastinate_workers", unique: true, "id", backs: "procrastinate_workers_pkey"));
        o.Add(Index("procrastinate_jobs_pkey", "procrastinate_jobs", unique: true, "id", backs: "procrastinate_jobs_pkey"));
        o.Add(Index("procrastinate_periodic_defers_pkey", "procrastinate_periodic_defers", unique: true, "id",
            backs: "procrastinate_periodic_defers_pkey"));
        o.Add(Index("procrastinate_periodic_defers_unique", "procrastinate_periodic_defers", unique: true,
            "task_name, periodic_id, defer_timestamp", backs: "procrastinate_periodic_defers_unique"));
        o.Add(Index("procrastinate_events_pkey", "procrastinate_events", unique: true, "id", backs: "procrastinate_events_pkey"));

        // 2.5 Indexes (all btree).
        o.Add(Index("procrastinate_jobs_queueing_lock_idx_v1", "procrastinate_jobs", unique: true, "queueing_lock",
            where: "status = 'todo'::procrastinate_job_status"));
        o.Add(Index("procrastinate_jobs_lock_idx_v1", "procrastinate_jobs", unique: true, "lock",
            where: "status = 'doing'::procrastinate_job_status"));
        o.Add(Index("idx_procrastinate_jobs_worker_not_null", "procrastinate_jobs", unique: false, "worker_id",
            where: "(worker_id IS NOT NULL) AND (status = 'doing'::procrastinate_job_status)"));
        o.Add(Index("procrastinate_jobs_queue_name_idx_v1", "procrastinate_jobs", unique: false, "queue_name"));
        o.Add(Index("procrastinate_jobs_id_lock_idx_v1", "procrastinate_jobs", unique: false, "id, lock",
            where: "status = ANY (ARRAY['todo'::procrastinate_job_status, 'doing'::procrastinate_job_status])"));
        o.Add(Index("procrastinate_jobs_priority_idx_v1", "procrastinate_jobs", unique: false, "priority DESC, id",
            where: "status = 'todo'::procrastinate_job_status"));
        o.Add(Index("procrastinate_events_job_id_fkey_v1", "procrastinate_events", unique: false, "job_id"));
        o.Add(Index("procrastinate_periodic_defers_job_id_fkey_v1", "procrastinate_periodic_defers", unique: false, "job_id"));
        o.Add(Index("idx_procrastinate_workers_last_heartbeat", "procrastinate_workers", unique: false, "last_heartbeat"));

        // 2.6 Functions called by clients: parameter names, types and order, and return types.
        o.Add(Function("procrastinate_defer_jobs_v1", "bigint[]",
            ("jobs", "procrastinate_job_to_defer_v1[]")));
        o.Add(Function("procrastinate_defer_periodic_job_v2", "bigint",
            ("_queue_name", "character varying"),
            ("_lock", "character varying"),
            ("_queueing_lock", "character varying"),
            ("_task_name", "character varying"),
            ("_priority", "integer"),
            ("_periodic_id", "character varying"),
            ("_defer_timestamp", "bigint"),
            ("_args", "jsonb")));
        o.Add(Function("procrastinate_fetch_job_v2", "procrastinate_jobs",
            ("target_queue_names", "character varying[]"),
            ("p_worker_id", "bigint")));
        o.Add(Function("procrastinate_finish_job_v1", "void",
            ("job_id", "bigint"),
            ("end_status", "procrastinate_job_status"),
            ("delete_job", "boolean")));
        o.Add(Function("procrastinate_cancel_job_v1", "bigint",
            ("job_id", "bigint"),
            ("abort", "boolean"),
            ("delete_job", "boolean")));
        o.Add(Function("procrastinate_retry_job_v2", "void",
            ("job_id", "bigint"),
            ("retry_at", "timestamp with time zone"),
            ("new_priority", "integer"),
            ("new_queue_name", "character varying"),
            ("new_lock", "character varying")));
        o.Add(Function("procrastinate_retry_job_v1", "void",
            ("job_id", "bigint"),
            ("retry_at", "timestamp with time zone"),
            ("new_priority", "integer"),
            ("new_queue_name", "character varying"),
            ("new_lock", "character varying")));
        o.Add(Function("procrastinate_register_worker_v1", "TABLE(worker_id bigint)"));
        o.Add(Function("procrastinate_unregister_worker_v1", "void",
            ("worker_id", "bigint")));
        o.Add(Function("procrastinate_update_heartbeat_v1", "void",
            ("worker_id", "bigint")));
        o.Add(Function("procrastinate_prune_stalled_workers_v1", "TABLE(worker_id bigint)",
            ("seconds_since_heartbeat", "double precision")));

        // 2.7 Trigger functions: no arguments, RETURNS trigger, plpgsql, no other options.
        o.Add(TriggerFunction("procrastinate_notify_queue_job_inserted_v1"));
        o.Add(TriggerFunction("procrastinate_notify_queue_abort_job_v1"));
        o.Add(TriggerFunction("procrastinate_trigger_function_status_events_insert_v1"));
        o.Add(TriggerFunction("procrastinate_trigger_function_status_events_update_v1"));
        o.Add(TriggerFunction("procrastinate_trigger_function_scheduled_events_v1"));
        o.Add(TriggerFunction("procrastinate_trigger_abort_requested_events_procedure_v1"));
        o.Add(TriggerFunction("procrastinate_unlink_periodic_defers_v1"));

        // 2.8 Triggers, all on procrastinate_jobs, FOR EACH ROW.
        o.Add(Trigger("procrastinate_jobs_notify_queue_job_inserted_v1", "AFTER INSERT",
            "(new.status = 'todo'::procrastinate_job_status)",
            "procrastinate_notify_queue_job_inserted_v1"));
        o.Add(Trigger("procrastinate_jobs_notify_queue_job_aborted_v1", "AFTER UPDATE OF abort_requested",
            "((old.abort_requested = false) AND (new.abort_requested = true) AND (new.status = 'doing'::procrastinate_job_status))",
            "procrastinate_notify_queue_abort_job_v1"));
        o.Add(Trigger("procrastinate_trigger_status_events_update_v1", "AFTER UPDATE OF status",
            null,
            "procrastinate_trigger_function_status_events_update_v1"));
        o.Add(Trigger("procrastinate_trigger_status_events_insert_v1", "AFTER INSERT",
            "(new.status = 'todo'::procrastinate_job_status)",
            "procrastinate_trigger_function_status_events_insert_v1"));
        o.Add(Trigger("procrastinate_trigger_scheduled_events_v1", "AFTER INSERT OR UPDATE",
            "((new.scheduled_at IS NOT NULL) AND (new.status = 'todo'::procrastinate_job_status))",
            "procrastinate_trigger_function_scheduled_events_v1"));
        o.Add(Trigger("procrastinate_trigger_abort_requested_events_v1", "AFTER UPDATE OF abort_requested",
            "(new.abort_requested = true)",
            "procrastinate_trigger_abort_requested_events_procedure_v1"));
        o.Add(Trigger("procrastinate_trigger_delete_jobs_v1", "BEFORE DELETE",
            null,
            "procrastinate_unlink_periodic_defers_v1"));

        return o;
    }

    private sealed record Col(string Name, string Type, bool NotNull, string Default = "", string Identity = "");

    private static KeyValuePair<string, string> P(string key, string value) => new(key, value);

    private static CatalogObject Enum(string name, params string[] labels) =>
        new(CatalogKind.Enum, name, [P("labels", string.Join(", ", labels))]);

    private static CatalogObject Composite(string name, params (string Name, string Type)[] fields) =>
        new(CatalogKind.CompositeType, name, [P("fields", string.Join(", ", fields.Select(f => $"{f.Name} {f.Type}")))]);

    private static IEnumerable<CatalogObject> Table(string name, params Col[] columns)
    {
        yield return new(CatalogKind.Table, name,
        [
            P("kind", "ordinary table"),
            P("persistence", "permanent"),
            P("access method", "heap"),
            P("row level security", "disabled"),
            P("columns", string.Join(", ", columns.Select(c => c.Name))),
            P("inherits from", ""),
        ]);
        foreach (var c in columns)
        {
            yield return new(CatalogKind.Column, $"{name}.{c.Name}",
            [
                P("type", c.Type),
                P("not null", c.NotNull ? "NOT NULL" : "NULL"),
                P("default", c.Default),
                P("generated", ""),
                P("identity", c.Identity),
            ]);
        }
    }

    private static CatalogObject Constraint(string name, string table, string type, string definition) =>
        new(CatalogKind.Constraint, name, [P("table", table), P("type", type), P("definition", definition)]);

    private static CatalogObject Index(string name, string table, bool unique, string columns, string? where = null, string backs = "") =>
        new(CatalogKind.Index, name,
        [
            P("table", table),
            P("unique", unique ? "unique" : "not unique"),
            P("definition", $"CREATE {(unique ? "UNIQUE " : "")}INDEX {name} ON {table} USING btree ({columns})"
                + (where is null ? "" : $" WHERE ({where})")),
            P("valid", "valid"),
            P("backs constraint", backs),
        ]);

    private static CatalogObject Sequence(string name, string ownedBy) =>
        new(CatalogKind.Sequence, name,
        [
            P("type", "bigint"),
            P("start", "1"),
            P("increment", "1"),
            P("min", "1"),
            P("max", "9223372036854775807"),
            P("cache", "1"),
            P("cycle", "NO CYCLE"),
            P("owned by", ownedBy),
        ]);

    private static CatalogObject Function(string name, string result, params (string Name, string Type)[] parameters) =>
        Routine(CatalogKind.Function, name, result, parameters);

    private static CatalogObject TriggerFunction(string name) => Routine(CatalogKind.TriggerFunction, name, "trigger", []);

    /// <summary>Keyed like regprocedure prints it: name(type,type). Properties common to 2.6 and 2.7.</summary>
    private static CatalogObject Routine(CatalogKind kind, string name, string result, (string Name, string Type)[] parameters) =>
        new(kind, $"{name}({string.Join(",", parameters.Select(p => p.Type))})", name,
        [
            P("kind", "function"),
            P("arguments", string.Join(", ", parameters.Select(p => $"{p.Name} {p.Type}"))),
            P("result", result),
            P("returns set", result.StartsWith("TABLE(", StringComparison.Ordinal) ? "SETOF" : "single"),
            P("language", "plpgsql"),
            P("volatility", "VOLATILE"),
            P("security", "SECURITY INVOKER"),
            P("strict", "CALLED ON NULL INPUT"),
            P("leakproof", "NOT LEAKPROOF"),
            P("parallel", "PARALLEL UNSAFE"),
            P("SET options", ""),
        ]);

    private static CatalogObject Trigger(string name, string timingAndEvents, string? when, string function) =>
        new(CatalogKind.Trigger, name,
        [
            P("table", "procrastinate_jobs"),
            P("definition", $"CREATE TRIGGER {name} {timingAndEvents} ON procrastinate_jobs FOR EACH ROW"
                + (when is null ? "" : $" WHEN ({when})")
                + $" EXECUTE FUNCTION {function}()"),
            P("enabled", "enabled"),
        ]);
}
