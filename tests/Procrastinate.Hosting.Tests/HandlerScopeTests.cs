using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Hosting.Tests;

public sealed class HandlerScopeTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    /// <summary>A scoped service that remembers whether it was disposed.</summary>
    public sealed class ScopedProbe : IDisposable
    {
        private static int s_next;

        public int Number { get; } = Interlocked.Increment(ref s_next);

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    /// <summary>A scoped service that only has an async dispose.</summary>
    public sealed class AsyncOnlyProbe : IAsyncDisposable
    {
        public bool Disposed { get; private set; }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>What the handlers saw, kept by a singleton.</summary>
    public sealed class Recorder
    {
        public ConcurrentQueue<(long JobId, ScopedProbe Probe, bool DisposedDuringJob, bool SameAsScope)> Runs { get; } = new();

        public ConcurrentQueue<ProbeHandler> DisposedHandlers { get; } = new();
    }

    public sealed record ProbeArgs(int N);

    /// <summary>Not registered in the container: created by ActivatorUtilities, disposed by the lease.</summary>
    public sealed class ProbeHandler(ScopedProbe probe, Recorder recorder, IServiceProvider scope) : IJobHandler<ProbeArgs>, IDisposable
    {
        public ScopedProbe Probe => probe;

        public Task HandleAsync(ProbeArgs args, JobContext context, CancellationToken cancellationToken)
        {
            recorder.Runs.Enqueue((context.Job.Id, probe, probe.Disposed, ReferenceEquals(probe, scope.GetRequiredService<ScopedProbe>())));
            return Task.CompletedTask;
        }

        public void Dispose() => recorder.DisposedHandlers.Enqueue(this);
    }

    /// <summary>Registered as scoped: resolved from the job's scope, disposed by it.</summary>
    public sealed class RegisteredHandler(ScopedProbe probe) : IJobHandler<ProbeArgs>, IDisposable
    {
        public ScopedProbe Probe => probe;

        public bool Disposed { get; private set; }

        public Task HandleAsync(ProbeArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose() => Disposed = true;
    }

    private static ServiceProvider Services(Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddScoped<ScopedProbe>();
        services.AddScoped<AsyncOnlyProbe>();
        services.AddSingleton<Recorder>();
        configure?.Invoke(services);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true });
    }

    [Fact]
    public async Task Each_activation_gets_a_fresh_scope_disposed_with_the_lease()
    {
        await using var services = Services();
        var activator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>());

        var first = activator.Activate(typeof(ProbeHandler), null!);
        var second = activator.Activate(typeof(ProbeHandler), null!);
        var firstProbe = ((ProbeHandler)first.Handler).Probe;
        var secondProbe = ((ProbeHandler)second.Handler).Probe;

        Assert.NotSame(firstProbe, secondProbe);
        Assert.False(firstProbe.Disposed);
        await first.DisposeAsync();
        Assert.True(firstProbe.Disposed);
        Assert.False(secondProbe.Disposed);
        await second.DisposeAsync();
        Assert.True(secondProbe.Disposed);
    }

    [Fact]
    public async Task An_unregistered_handler_is_created_with_its_dependencies_and_disposed_by_the_lease()
    {
        await using var services = Services();
        var activator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>());
        var recorder = services.GetRequiredService<Recorder>();

        var lease = activator.Activate(typeof(ProbeHandler), null!);
        var handler = Assert.IsType<ProbeHandler>(lease.Handler);
        Assert.Empty(recorder.DisposedHandlers);
        await lease.DisposeAsync();

        Assert.Same(handler, Assert.Single(recorder.DisposedHandlers));
    }

    [Fact]
    public async Task A_registered_handler_is_resolved_from_the_jobs_scope_and_disposed_by_it()
    {
        RegisteredHandler? created = null;
        await using var services = Services(s => s.AddScoped(sp => created = new RegisteredHandler(sp.GetRequiredService<ScopedProbe>())));
        var activator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>());

        var lease = activator.Activate(typeof(RegisteredHandler), null!);
        Assert.Same(created, lease.Handler);
        await lease.DisposeAsync();

        Assert.True(created!.Disposed);
        Assert.True(created.Probe.Disposed);
    }

    [Fact]
    public async Task Async_only_scoped_services_are_disposed_asynchronously()
    {
        await using var services = Services();
        var activator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>());

        var lease = activator.Activate(typeof(AsyncOnlyConsumer), null!);
        var probe = ((AsyncOnlyConsumer)lease.Handler).Probe;
        await lease.DisposeAsync();

        Assert.True(probe.Disposed);
    }

    public sealed class AsyncOnlyConsumer(AsyncOnlyProbe probe) : IJobHandler<ProbeArgs>
    {
        public AsyncOnlyProbe Probe => probe;

        public Task HandleAsync(ProbeArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task A_handler_whose_dependencies_are_missing_cannot_be_activated()
    {
        await using var services = Services();
        var activator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>());

        Assert.Throws<InvalidOperationException>(() => activator.Activate(typeof(NeedsUnregisteredService), null!));
    }

    public sealed class NeedsUnregisteredService(IFormatProvider missing) : IJobHandler<ProbeArgs>
    {
        public IFormatProvider Missing => missing;

        public Task HandleAsync(ProbeArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task The_hosted_worker_runs_each_job_in_its_own_scope_disposed_after_the_job()
    {
        await db.ResetAsync();
        using var host = TestHosts.Build(output, b =>
        {
            b.Services.AddScoped<ScopedProbe>();
            b.Services.AddSingleton<Recorder>();
            b.Services.AddProcrastinate(db.ConnectionString, p => p.AddTask<ProbeArgs, ProbeHandler>("probe", queue: "scopes"));
            b.Services.AddProcrastinateWorker("scopes", o =>
            {
                o.Queues = ["scopes"];
                o.Concurrency = 1;
            });
        });
        var app = host.Services.GetRequiredService<App>();
        var recorder = host.Services.GetRequiredService<Recorder>();
        var task = app.GetTask<ProbeArgs>("probe");
        var ids = new[] { await task.DeferAsync(new ProbeArgs(1)), await task.DeferAsync(new ProbeArgs(2)) };

        await host.StartAsync();
        try
        {
            await Eventually.WaitAsync(
                () => db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' AND id = ANY($1)", ids),
                n => n == 2, "both jobs to succeed");
        }
        finally
        {
            await host.StopAsync();
        }

        var runs = recorder.Runs.ToArray();
        Assert.Equal(ids.Order(), runs.Select(r => r.JobId).Order());
        Assert.NotSame(runs[0].Probe, runs[1].Probe);
        Assert.All(runs, r => Assert.False(r.DisposedDuringJob));
        Assert.All(runs, r => Assert.True(r.SameAsScope));
        // The outcome is written after the lease is disposed: by now both scopes are gone.
        Assert.All(runs, r => Assert.True(r.Probe.Disposed));
        Assert.Equal(2, recorder.DisposedHandlers.Count);
    }
}
