using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;

namespace Procrastinate.Hosting;

/// <summary>
/// Creates job handlers from dependency injection, in a fresh <see cref="IServiceScope"/> per
/// job: scoped services (a <c>DbContext</c>, say) live for one job and are disposed when it ends.
/// </summary>
/// <remarks>
/// A handler registered in the container is resolved from the job's scope (and disposed by it,
/// when the container created it). An unregistered handler is created with
/// <see cref="ActivatorUtilities"/>, its constructor's parameters resolved from the scope, and
/// disposed (<see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>) before the scope.
/// </remarks>
public sealed class ServiceProviderJobHandlerActivator : IJobHandlerActivator
{
    private readonly IServiceScopeFactory _scopeFactory;
    private readonly ConcurrentDictionary<Type, ObjectFactory> _factories = new();

    /// <summary>Creates the activator over the container's root scope factory.</summary>
    public ServiceProviderJobHandlerActivator(IServiceScopeFactory scopeFactory)
    {
        ArgumentNullException.ThrowIfNull(scopeFactory);
        _scopeFactory = scopeFactory;
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The handler is not registered and cannot be constructed from the container's services.</exception>
    public IJobHandlerLease Activate(Type handlerType, JobContext context)
    {
        ArgumentNullException.ThrowIfNull(handlerType);
        var scope = _scopeFactory.CreateAsyncScope();
        try
        {
            var provider = scope.ServiceProvider;
            if (provider.GetService(handlerType) is { } registered)
                return new Lease(scope, registered, ownsHandler: false);
            var factory = _factories.GetOrAdd(handlerType, static t => ActivatorUtilities.CreateFactory(t, Type.EmptyTypes));
            return new Lease(scope, factory(provider, null), ownsHandler: true);
        }
        catch
        {
            scope.Dispose();
            throw;
        }
    }

    private sealed class Lease(AsyncServiceScope scope, object handler, bool ownsHandler) : IJobHandlerLease
    {
        public object Handler => handler;

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (ownsHandler)
                {
                    if (handler is IAsyncDisposable asyncDisposable)
                        await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    else if (handler is IDisposable disposable)
                        disposable.Dispose();
                }
            }
            finally
            {
                await scope.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
