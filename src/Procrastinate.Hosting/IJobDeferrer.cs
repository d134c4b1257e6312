namespace Procrastinate.Hosting;

/// <summary>
/// Defers jobs from application code (controllers, minimal APIs, services) through the
/// <see cref="App"/> registered by <c>AddProcrastinate</c>. Registered as a singleton; easy to
/// replace with a fake in tests.
/// </summary>
public interface IJobDeferrer
{
    /// <summary>
    /// Defers a job of the task named <paramref name="taskName"/> and returns its id. When the
    /// task is registered in the app, its defaults apply and <typeparamref name="TArgs"/> must be
    /// its arguments type; when it is not (a task run by another process), the arguments are
    /// serialized with the app's JSON options and deferred by name.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The name, arguments or options are invalid, or the registered task takes another arguments type; nothing was written.
    /// </exception>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    Task<long> DeferAsync<TArgs>(string taskName, TArgs args, DeferOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Defers a job of <paramref name="task"/> and returns its id (as <see cref="JobTask{TArgs}.DeferAsync(TArgs, DeferOptions?, CancellationToken)"/>).</summary>
    /// <exception cref="ArgumentException">The arguments or options are invalid; nothing was written.</exception>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    Task<long> DeferAsync<TArgs>(JobTask<TArgs> task, TArgs args, DeferOptions? options = null, CancellationToken cancellationToken = default);
}
