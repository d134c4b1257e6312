using System.Globalization;
using Npgsql;

namespace Procrastinate.Tests.Schema;

/// <summary>
/// Reads the Procrastinate objects of the current schema (the first existing schema of the
/// search_path, normally <c>public</c>) from pg_catalog and turns them into normalized
/// <see cref="CatalogObject"/>s.
/// </summary>
/// <remarks>
/// In scope: every object whose name starts with <c>procrastinate_</c>, <c>idx_procrastinate_</c> or
/// <c>check_not_todo_abort_requested</c>, plus every column, constraint, index, trigger, rule and
/// policy attached to a table with such a name (whatever its own name). Expressions are rendered by
/// PostgreSQL itself (<c>format_type</c>, <c>pg_get_expr</c>, <c>pg_get_constraintdef</c>,
/// <c>pg_get_indexdef</c>, <c>pg_get_triggerdef</c>, <c>pg_get_function_arguments</c>...), and the
/// current schema's qualifier (<c>public.</c>) is stripped from them.
/// </remarks>
public static class CatalogReader
{
    public static async Task<IReadOnlyList<CatalogObject>> ReadAsync(NpgsqlDataSource dataSource)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        var qualifier = (await QueryAsync(connection, "SELECT quote_ident(current_schema()) || '.'"))[0][0] as string
            ?? throw new InvalidOperationException("No current schema: the search_path names no existing schema.");
        string N(string s) => s.Replace(qualifier, "", StringComparison.Ordinal);

        var objects = new List<CatalogObject>();

        // Enums: labels in sort order.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT t.typname::text,
                   coalesce(string_agg(e.enumlabel::text, ', ' ORDER BY e.enumsortorder), '')
            FROM pg_type t
            LEFT JOIN pg_enum e ON e.enumtypid = t.oid
            WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e' AND {InScope("t.typname")}
            GROUP BY t.typname
            """))
        {
            objects.Add(new(CatalogKind.Enum, S(r[0]), [new("labels", S(r[1]))]));
        }

        // Stand-alone composite types: fields in order.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT t.typname::text,
                   coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                             FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
            FROM pg_type t
            JOIN pg_class c ON c.oid = t.typrelid
            WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'c' AND c.relkind = 'c' AND {InScope("t.typname")}
            """))
        {
            objects.Add(new(CatalogKind.CompositeType, S(r[0]), [new("fields", N(S(r[1])))]));
        }

        // Tables: kind, persistence, access method, row security, and the column order.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT c.relname::text, c.relkind::text, c.relpersistence::text, coalesce(am.amname::text, ''), c.relrowsecurity,
                   coalesce((SELECT string_agg(a.attname, ', ' ORDER BY a.attnum)
                             FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
                   coalesce((SELECT string_agg(p.relname, ', ' ORDER BY i.inhseqno)
                             FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                             WHERE i.inhrelid = c.oid), '')
            FROM pg_class c
            LEFT JOIN pg_am am ON am.oid = c.relam
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND {InScope("c.relname")}
            """))
        {
            objects.Add(new(CatalogKind.Table, S(r[0]),
            [
                new("kind", S(r[1]) switch { "r" => "ordinary table", "p" => "partitioned table", var k => k }),
                new("persistence", S(r[2]) switch { "p" => "permanent", "u" => "unlogged", "t" => "temporary", var p => p }),
                new("access method", S(r[3])),
                new("row level security", (bool)r[4]! ? "enabled" : "disabled"),
                new("columns", S(r[5])),
                new("inherits from", S(r[6])),
            ]));
        }

        // Columns (attnum order is the table's "columns" property).
        foreach (var r in await QueryAsync(connection, $"""
            SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
            FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND {InScope("c.relname")}
            """))
        {
            objects.Add(new(CatalogKind.Column, $"{S(r[0])}.{S(r[1])}",
            [
                new("type", N(S(r[2]))),
                new("not null", (bool)r[3]! ? "NOT NULL" : "NULL"),
                new("default", S(r[6]) == "" && r[4] is string def ? N(def) : ""),
                new("generated", S(r[6]) == "" ? "" : $"{S(r[6])}: {N(S(r[4]))}"),
                new("identity", S(r[5]) switch { "a" => "GENERATED ALWAYS", "d" => "GENERATED BY DEFAULT", var i => i }),
            ]));
        }

        // Constraints, except PostgreSQL 18's catalogued NOT NULL ones (the columns' "not null" covers them).
        foreach (var r in await QueryAsync(connection, $"""
            SELECT con.conname::text, coalesce(c.relname::text, ''), con.contype::text, pg_get_constraintdef(con.oid)
            FROM pg_constraint con
            LEFT JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.connamespace = current_schema()::regnamespace AND con.contype <> 'n'
              AND ({InScope("con.conname")} OR (c.relname IS NOT NULL AND {InScope("c.relname")}))
            """))
        {
            objects.Add(new(CatalogKind.Constraint, S(r[0]),
            [
                new("table", S(r[1])),
                new("type", ConstraintType(S(r[2]))),
                new("definition", N(S(r[3]))),
            ]));
        }

        // Indexes, including those backing primary keys and unique constraints.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT ic.relname::text, tc.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid), i.indisvalid,
                   coalesce((SELECT string_agg(con.conname, ', ') FROM pg_constraint con
                             WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')), '')
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_class tc ON tc.oid = i.indrelid
            WHERE ic.relnamespace = current_schema()::regnamespace AND ({InScope("ic.relname")} OR {InScope("tc.relname")})
            """))
        {
            objects.Add(new(CatalogKind.Index, S(r[0]),
            [
                new("table", S(r[1])),
                new("unique", (bool)r[2]! ? "unique" : "not unique"),
                new("definition", N(S(r[3]))),
                new("valid", (bool)r[4]! ? "valid" : "INVALID"),
                new("backs constraint", S(r[5])),
            ]));
        }

        // Sequences, with the column that owns them (serial) or uses them as identity.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                   coalesce((SELECT string_agg(t.relname || '.' || a.attname || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END, ', ')
                             FROM pg_depend d
                             JOIN pg_class t ON t.oid = d.refobjid
                             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), '')
            FROM pg_sequence s
            JOIN pg_class c ON c.oid = s.seqrelid
            WHERE c.relnamespace = current_schema()::regnamespace AND {InScope("c.relname")}
            """))
        {
            objects.Add(new(CatalogKind.Sequence, S(r[0]),
            [
                new("type", S(r[1])),
                new("start", L(r[2])),
                new("increment", L(r[3])),
                new("min", L(r[4])),
                new("max", L(r[5])),
                new("cache", L(r[6])),
                new("cycle", (bool)r[7]! ? "CYCLE" : "NO CYCLE"),
                new("owned by", S(r[8])),
            ]));
        }

        // Functions and trigger functions (and any procedure or aggregate with a Procrastinate name).
        foreach (var r in await QueryAsync(connection, $"""
            SELECT p.oid::regprocedure::text, p.proname::text, p.prokind::text,
                   pg_get_function_arguments(p.oid), coalesce(pg_get_function_result(p.oid), ''),
                   l.lanname::text, p.provolatile::text, p.prosecdef, p.proisstrict, p.proleakproof, p.proparallel::text,
                   coalesce(array_to_string(p.proconfig, ', '), ''), p.proretset, p.prorettype = 'trigger'::regtype
            FROM pg_proc p
            JOIN pg_language l ON l.oid = p.prolang
            WHERE p.pronamespace = current_schema()::regnamespace AND {InScope("p.proname")}
            """))
        {
            objects.Add(new((bool)r[13]! ? CatalogKind.TriggerFunction : CatalogKind.Function, N(S(r[0])), S(r[1]),
            [
                new("kind", S(r[2]) switch { "f" => "function", "p" => "procedure", "a" => "aggregate", "w" => "window", var k => k }),
                new("arguments", N(S(r[3]))),
                new("result", N(S(r[4]))),
                new("returns set", (bool)r[12]! ? "SETOF" : "single"),
                new("language", S(r[5])),
                new("volatility", S(r[6]) switch { "v" => "VOLATILE", "s" => "STABLE", "i" => "IMMUTABLE", var v => v }),
                new("security", (bool)r[7]! ? "SECURITY DEFINER" : "SECURITY INVOKER"),
                new("strict", (bool)r[8]! ? "STRICT" : "CALLED ON NULL INPUT"),
                new("leakproof", (bool)r[9]! ? "LEAKPROOF" : "NOT LEAKPROOF"),
                new("parallel", S(r[10]) switch { "u" => "PARALLEL UNSAFE", "r" => "PARALLEL RESTRICTED", "s" => "PARALLEL SAFE", var p => p }),
                new("SET options", S(r[11])),
            ]));
        }

        // User triggers (not the internal ones that implement foreign keys).
        foreach (var r in await QueryAsync(connection, $"""
            SELECT t.tgname::text, c.relname::text, pg_get_triggerdef(t.oid), t.tgenabled::text
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
              AND ({InScope("t.tgname")} OR {InScope("c.relname")})
            """))
        {
            objects.Add(new(CatalogKind.Trigger, S(r[0]),
            [
                new("table", S(r[1])),
                new("definition", N(S(r[2]))),
                new("enabled", S(r[3]) switch { "O" => "enabled", "D" => "DISABLED", "R" => "ENABLED REPLICA", "A" => "ENABLED ALWAYS", var e => e }),
            ]));
        }

        // Everything else: views, foreign tables, domains, ranges, base types, rules and policies.
        foreach (var r in await QueryAsync(connection, $"""
            SELECT c.relname::text, 'relation of relkind ' || c.relkind::text, ''
            FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind NOT IN ('r', 'p', 'i', 'I', 'S', 'c')
              AND {InScope("c.relname")}
            UNION ALL
            SELECT t.typname::text, 'type of typtype ' || t.typtype::text, ''
            FROM pg_type t
            WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype NOT IN ('e', 'c') AND {InScope("t.typname")}
            UNION ALL
            SELECT c.relname || '.' || rw.rulename, 'rule', c.relname::text
            FROM pg_rewrite rw
            JOIN pg_class c ON c.oid = rw.ev_class
            WHERE rw.rulename <> '_RETURN' AND c.relnamespace = current_schema()::regnamespace AND {InScope("c.relname")}
            UNION ALL
            SELECT c.relname || '.' || pol.polname, 'policy', c.relname::text
            FROM pg_policy pol
            JOIN pg_class c ON c.oid = pol.polrelid
            WHERE c.relnamespace = current_schema()::regnamespace AND {InScope("c.relname")}
            """))
        {
            objects.Add(new(CatalogKind.Other, $"{S(r[0])} ({S(r[1])})", S(r[0]),
            [
                new("what", S(r[1])),
                new("table", S(r[2])),
            ]));
        }

        return objects;
    }

    /// <summary>The SQL test "this name is a Procrastinate name".</summary>
    private static string InScope(string column) =>
        $"(starts_with({column}::text, 'procrastinate_') OR starts_with({column}::text, 'idx_procrastinate_')"
        + $" OR starts_with({column}::text, 'check_not_todo_abort_requested'))";

    private static string ConstraintType(string contype) => contype switch
    {
        "p" => "PRIMARY KEY",
        "f" => "FOREIGN KEY",
        "u" => "UNIQUE",
        "c" => "CHECK",
        "x" => "EXCLUDE",
        "t" => "CONSTRAINT TRIGGER",
        _ => contype,
    };

    private static string S(object? value) => value as string ?? "";

    private static string L(object? value) => Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);

    private static async Task<List<object?[]>> QueryAsync(NpgsqlConnection connection, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }
}
