using System.Text.Json;

namespace Procrastinate.Hosting.Internal;

/// <summary>The <see cref="IJobDeferrer"/> over the container's <see cref="App"/>.</summary>
internal sealed class JobDeferrer(App app) : IJobDeferrer
{
    public Task<long> DeferAsync<TArgs>(string taskName, TArgs args, DeferOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskName);
        ArgumentNullException.ThrowIfNull(args);
        return app.FindTask(taskName) switch
        {
            JobTask<TArgs> task => task.DeferAsync(args, options, cancellationToken),
            { } other => throw new ArgumentException(
                $"Task '{taskName}' takes {other.ArgsType.FullName} arguments, not {typeof(TArgs).FullName}.", nameof(args)),
            null => app.DeferAsync(taskName, JsonSerializer.Serialize(args, app.Options.JsonSerializerOptions), options, cancellationToken),
        };
    }

    public Task<long> DeferAsync<TArgs>(JobTask<TArgs> task, TArgs args, DeferOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.DeferAsync(args, options, cancellationToken);
    }
}
