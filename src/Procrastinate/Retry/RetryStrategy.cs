namespace Procrastinate;

/// <summary>
/// Decides whether a failed run is tried again, and when. The built-in strategy matches
/// Procrastinate's: the delay before retry number <c>a + 1</c> (where <c>a</c> is the job's
/// attempts so far) is <c>wait + linear_wait × a + exponential_wait ^ (a + 1)</c> seconds.
/// </summary>
public class RetryStrategy
{
    /// <summary>Never retry (Procrastinate's <c>retry=False</c>).</summary>
    public static RetryStrategy None { get; } = new() { MaxAttempts = -1 };

    /// <summary>Retry forever, at once (Procrastinate's <c>retry=True</c>).</summary>
    public static RetryStrategy Forever { get; } = new();

    /// <summary>Retry at most <paramref name="retries"/> times, at once; 0 means never.</summary>
    public static RetryStrategy Times(int retries)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(retries);
        return retries == 0 ? None : new RetryStrategy { MaxAttempts = retries };
    }

    /// <summary>A strategy given by a function returning a decision, or <c>null</c> for no retry.</summary>
    public static RetryStrategy Custom(Func<Exception, Job, RetryDecision?> decide)
    {
        ArgumentNullException.ThrowIfNull(decide);
        return new DelegateRetryStrategy(decide);
    }

    /// <summary>Maximum number of retries; <c>null</c> or 0 means unlimited (as in Procrastinate).</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Constant part of the delay.</summary>
    public TimeSpan Wait { get; init; }

    /// <summary>Delay added per earlier attempt.</summary>
    public TimeSpan LinearWait { get; init; }

    /// <summary>Base, in seconds, of the exponential part: <c>base ^ (attempts + 1)</c> seconds; zero disables it.</summary>
    public TimeSpan ExponentialWait { get; init; }

    /// <summary>Only exceptions of these types (or subtypes) are retried; <c>null</c> retries every exception.</summary>
    public IReadOnlyList<Type>? RetryExceptions { get; init; }

    /// <summary>
    /// Returns the decision for a run of <paramref name="job"/> that ended with
    /// <paramref name="exception"/>, or <c>null</c> to end the job as failed.
    /// </summary>
    public virtual RetryDecision? GetRetryDecision(Exception exception, Job job)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(job);
        if (MaxAttempts < 0)
            return null;
        var attempts = job.Attempts;
        if (MaxAttempts is > 0 and var max && attempts >= max)
            return null;
        if (RetryExceptions is { } types && !types.Any(t => t.IsInstanceOfType(exception)))
            return null;
        return RetryDecision.In(GetDelay(attempts));
    }

    /// <summary>The delay before the retry that follows <paramref name="attempts"/> completed runs.</summary>
    public TimeSpan GetDelay(int attempts)
    {
        var seconds = Wait.TotalSeconds + LinearWait.TotalSeconds * attempts;
        if (ExponentialWait > TimeSpan.Zero)
            seconds += Math.Pow(ExponentialWait.TotalSeconds, attempts + 1);
        return seconds >= TimeSpan.MaxValue.TotalSeconds ? TimeSpan.MaxValue : TimeSpan.FromSeconds(seconds);
    }

    private sealed class DelegateRetryStrategy(Func<Exception, Job, RetryDecision?> decide) : RetryStrategy
    {
        public override RetryDecision? GetRetryDecision(Exception exception, Job job) => decide(exception, job);
    }
}
