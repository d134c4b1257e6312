namespace Procrastinate.Internal.Workers;

/// <summary>An auto-reset wake-up flag: many <see cref="Set"/> calls collapse into one pending wake.</summary>
internal sealed class AsyncSignal(TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Set()
    {
        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already set: the waiter will wake once, which is all a signal promises.
        }
    }

    public void Reset()
    {
        while (_semaphore.Wait(0))
        {
        }
    }

    /// <summary>Waits until set, until <paramref name="timeout"/> on the app's clock, or cancellation; returns true when set.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
            return await _semaphore.WaitAsync(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            return await _semaphore.WaitAsync(Timeout.Infinite, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public void Dispose() => _semaphore.Dispose();
}
