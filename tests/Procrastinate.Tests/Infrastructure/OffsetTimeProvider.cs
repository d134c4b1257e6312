namespace Procrastinate.Tests.Infrastructure;

/// <summary>The system clock shifted by a fixed offset: "a worker started N minutes later" without waiting.</summary>
public sealed class OffsetTimeProvider(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}
