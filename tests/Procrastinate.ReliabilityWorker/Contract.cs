namespace Procrastinate.Reliability;

/// <summary>
/// What the reliability suite and its worker process agree on: task names, argument records
/// and the ledger table. This file is compiled into both projects.
/// </summary>
public static class Contract
{
    /// <summary>Appends a ledger row, sleeps <c>ms</c>, closes the row. Retried up to <see cref="LedgerRetries"/> times.</summary>
    public const string Ledger = "ledger";

    /// <summary>The same body without retries.</summary>
    public const string LedgerNoRetry = "ledger_noretry";

    /// <summary>Appends a ledger row and throws; retried <see cref="PoisonRetries"/> times.</summary>
    public const string PoisonThrow = "poison_throw";

    /// <summary>Appends a ledger row and crashes the process (stack overflow, exit, fail-fast); retried <see cref="PoisonRetries"/> times.</summary>
    public const string PoisonCrash = "poison_crash";

    public const int LedgerRetries = 10;
    public const int PoisonRetries = 2;

    /// <summary>
    /// One row per execution, written by the job itself on its own connection: inserted when the
    /// body starts, closed when it ends. A run whose process died keeps <c>ended_at</c> NULL.
    /// </summary>
    public const string LedgerDdl = """
        CREATE TABLE IF NOT EXISTS ledger (
            run_id uuid PRIMARY KEY,
            job_id bigint NOT NULL,
            pid integer NOT NULL,
            attempt integer NOT NULL,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            ended_at timestamptz,
            outcome text
        );
        CREATE INDEX IF NOT EXISTS ledger_job_idx ON ledger (job_id);
        """;
}

/// <summary>
/// Arguments of the ledger tasks: sleep <c>ms</c> (<c>later_ms</c> instead on attempts after the
/// first, when set); throw while the job's attempts are below <c>fail_below_attempt</c>.
/// </summary>
public sealed record LedgerArgs(int Ms = 0, bool HonorCancel = true, int FailBelowAttempt = 0, int? LaterMs = null);

/// <summary>Arguments of the crashing task: <c>stackoverflow</c>, <c>exit</c> or <c>failfast</c>.</summary>
public sealed record CrashArgs(string Mode);
