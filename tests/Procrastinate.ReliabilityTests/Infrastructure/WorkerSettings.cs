using System.Globalization;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>Command-line settings of the worker process; short timeouts so faults are noticed in seconds.</summary>
public sealed record WorkerSettings
{
    public int Concurrency { get; init; } = 4;
    public int? Prefetch { get; init; }
    public int StalledMs { get; init; } = 3000;
    public int HeartbeatMs { get; init; } = 500;
    public int RescueMs { get; init; } = 1000;
    public int PollMs { get; init; } = 1000;
    public int? GracefulMs { get; init; }
    public string StalledPolicy { get; init; } = "retry";
    public string Log { get; init; } = "warning";
    public bool Listen { get; init; } = true;

    /// <summary>The ledger's commits wait for the flush (for scenarios that crash the server).</summary>
    public bool LedgerSync { get; init; }

    /// <summary>WorkerOptions.DurableClaims.</summary>
    public bool DurableClaims { get; init; } = true;

    public TimeSpan StalledTimeout => TimeSpan.FromMilliseconds(StalledMs);
    public TimeSpan RescueInterval => TimeSpan.FromMilliseconds(RescueMs);

    public string[] ToArgs()
    {
        var args = new List<string>
        {
            $"concurrency={Concurrency}", $"stalled_ms={StalledMs}", $"heartbeat_ms={HeartbeatMs}", $"rescue_ms={RescueMs}",
            $"poll_ms={PollMs}", $"stalled_policy={StalledPolicy}", $"log={Log}", $"listen={(Listen ? "true" : "false")}",
        };
        if (Prefetch is { } p)
            args.Add($"prefetch={p.ToString(CultureInfo.InvariantCulture)}");
        if (GracefulMs is { } g)
            args.Add($"graceful_ms={g.ToString(CultureInfo.InvariantCulture)}");
        if (LedgerSync)
            args.Add("ledger_sync=true");
        if (!DurableClaims)
            args.Add("durable_claims=false");
        return [.. args];
    }
}
