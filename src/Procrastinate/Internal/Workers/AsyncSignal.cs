namespace Procrastinate.Internal.Workers;

/// <summary>An auto-reset wake-up flag: many <see cref="Set"/> calls collapse into one pending wake.</summary>
internal sealed class AsyncSignal : IDisposable
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

    /// <summary>Waits until set or until <paramref name="timeout"/>; returns true when set.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        _semaphore.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _semaphore.Dispose();
}
