namespace Procrastinate.Internal.Workers;

/// <summary>
/// An auto-reset wake-up flag for one waiter: many <see cref="Set()"/> calls collapse into one
/// pending wake. <see cref="Set()"/> is called after every job, so setting a flag that is already
/// set costs one read, and no call throws. The waiter resumes on a pool thread, except after
/// <see cref="SetInline"/>.
/// </summary>
internal sealed class AsyncSignal(TimeProvider time)
{
    private static readonly Task<bool> SetTask = Task.FromResult(true);
    private readonly Lock _gate = new();
    private volatile bool _set;
    // Created without RunContinuationsAsynchronously: whoever completes it decides where the waiter resumes.
    private TaskCompletionSource<bool>? _waiter;

    /// <summary>Wakes the waiter on a pool thread, or leaves the wake pending for the next wait.</summary>
    public void Set() => Set(inline: false);

    /// <summary>
    /// Wakes the waiter on this thread: it runs until its next await before this returns. Only for
    /// a thread that has nothing else to do (an executor that is leaving): it saves a pool hop.
    /// </summary>
    public void SetInline() => Set(inline: true);

    private void Set(bool inline)
    {
        if (_set)
            return; // already pending: the waiter will wake once, which is all a signal promises
        TaskCompletionSource<bool>? waiter;
        lock (_gate)
        {
            waiter = _waiter;
            _waiter = null;
            if (waiter is null)
            {
                _set = true;
                return;
            }
        }
        if (inline)
            Wake(waiter);
        else
            ThreadPool.UnsafeQueueUserWorkItem(static waiter => ((AsyncSignal)waiter.Task.AsyncState!).Wake(waiter), waiter, preferLocal: false);
    }

    private void Wake(TaskCompletionSource<bool> waiter)
    {
        // That wait may have just timed out or been cancelled: then the wake goes to the next wait.
        if (!waiter.TrySetResult(true))
            Set(inline: false);
    }

    public void Reset() => _set = false;

    /// <summary>Waits until set, until <paramref name="timeout"/> on the app's clock, or cancellation; returns true when set.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return Task.FromCanceled<bool>(cancellationToken);
        TaskCompletionSource<bool> waiter;
        lock (_gate)
        {
            if (_set)
            {
                _set = false;
                return SetTask;
            }
            waiter = _waiter = new TaskCompletionSource<bool>(this);
        }
        return WaitCoreAsync(waiter, timeout, cancellationToken);
    }

    private async Task<bool> WaitCoreAsync(TaskCompletionSource<bool> waiter, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // A timeout or a cancellation resumes the waiter on the pool, not on the timer's or the canceller's thread.
        using var registration = cancellationToken.UnsafeRegister(static (state, token) => ThreadPool.UnsafeQueueUserWorkItem(
            static s => s.Waiter.TrySetCanceled(s.Token), (Waiter: (TaskCompletionSource<bool>)state!, Token: token), preferLocal: false), waiter);
        using var timer = timeout == Timeout.InfiniteTimeSpan ? null
            : time.CreateTimer(static state => ThreadPool.UnsafeQueueUserWorkItem(
                static waiter => waiter.TrySetResult(false), (TaskCompletionSource<bool>)state!, preferLocal: false), waiter, timeout, Timeout.InfiniteTimeSpan);
        try
        {
            return await waiter.Task.ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                if (_waiter == waiter)
                    _waiter = null; // timed out or cancelled: a later Set leaves the flag set instead
            }
        }
    }
}
