namespace Procrastinate;

/// <summary>
/// A decision to run a job again. Set <see cref="RetryAt"/> or <see cref="RetryIn"/> (not both;
/// neither means "now"). The optional new values replace the job's priority, queue or lock;
/// <c>null</c> keeps the current one (a retry can never clear a lock or queue).
/// </summary>
public sealed record RetryDecision
{
    /// <summary>The instant to run again.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>The delay, from the worker's clock, before running again.</summary>
    public TimeSpan? RetryIn { get; init; }

    /// <summary>A new priority, or <c>null</c> to keep it.</summary>
    public int? Priority { get; init; }

    /// <summary>A new queue, or <c>null</c> to keep it.</summary>
    public string? Queue { get; init; }

    /// <summary>A new lock, or <c>null</c> to keep it.</summary>
    public string? Lock { get; init; }

    /// <summary>Retry after <paramref name="delay"/>.</summary>
    public static RetryDecision In(TimeSpan delay) => new() { RetryIn = delay };

    /// <summary>Retry at <paramref name="instant"/>.</summary>
    public static RetryDecision At(DateTimeOffset instant) => new() { RetryAt = instant };

    internal DateTimeOffset ResolveRetryAt(DateTimeOffset now)
    {
        if (RetryAt is not null && RetryIn is not null)
            throw new InvalidOperationException("A retry decision cannot set both RetryAt and RetryIn.");
        if (RetryAt is { } at)
            return at;
        if (RetryIn is { } delay)
        {
            // Procrastinate stores its largest instant when the sum overflows.
            return delay >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + delay;
        }
        return now;
    }
}
