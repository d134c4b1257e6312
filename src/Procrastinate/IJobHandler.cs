namespace Procrastinate;

/// <summary>A task written as a class: one instance handles one job.</summary>
/// <typeparam name="TArgs">The arguments record.</typeparam>
public interface IJobHandler<in TArgs>
{
    /// <summary>Runs the job. The token fires on abort or on shutdown past the graceful timeout.</summary>
    Task HandleAsync(TArgs args, JobContext context, CancellationToken cancellationToken);
}

/// <summary>A handler instance lent for one job; disposing it ends the job's scope.</summary>
public interface IJobHandlerLease : IAsyncDisposable
{
    /// <summary>The handler instance.</summary>
    object Handler { get; }
}

/// <summary>Creates handler instances; the hosting package resolves them from dependency injection, one scope per job.</summary>
public interface IJobHandlerActivator
{
    /// <summary>Creates an instance of <paramref name="handlerType"/> for the job in <paramref name="context"/>.</summary>
    IJobHandlerLease Activate(Type handlerType, JobContext context);
}

/// <summary>Creates handlers with their public parameterless constructor.</summary>
public sealed class DefaultJobHandlerActivator : IJobHandlerActivator
{
    /// <summary>The shared instance.</summary>
    public static DefaultJobHandlerActivator Instance { get; } = new();

    /// <inheritdoc />
    public IJobHandlerLease Activate(Type handlerType, JobContext context)
    {
        ArgumentNullException.ThrowIfNull(handlerType);
        var handler = Activator.CreateInstance(handlerType)
            ?? throw new InvalidOperationException($"Could not create a {handlerType}.");
        return new Lease(handler);
    }

    private sealed class Lease(object handler) : IJobHandlerLease
    {
        public object Handler => handler;

        public ValueTask DisposeAsync() => handler switch
        {
            IAsyncDisposable a => a.DisposeAsync(),
            IDisposable d => Dispose(d),
            _ => ValueTask.CompletedTask,
        };

        private static ValueTask Dispose(IDisposable d)
        {
            d.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
