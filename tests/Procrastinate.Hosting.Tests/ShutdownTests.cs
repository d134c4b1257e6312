using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Hosting.Tests;

public sealed class ShutdownTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    public sealed record WorkArgs(int N);

    /// <summary>Lets a test see a job start and decide when it ends.</summary>
    public sealed class Gate
    {
        public TaskCompletionSource<long> Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<AbortReason> Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private IHost Build(string queue, TimeSpan shutdownTimeout, Func<WorkArgs, JobContext, CancellationToken, Gate, Task> body) =>
        TestHosts.Build(output, b =>
        {
            b.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdownTimeout);
            b.Services.AddSingleton<Gate>();
            b.Services.AddProcrastinate(db.ConnectionString, p => p.ConfigureApp((app, sp) =>
                app.Task<WorkArgs>("work." + queue, (args, context, ct) => body(args, context, ct, sp.GetRequiredService<Gate>()), queue: queue)));
            b.Services.AddProcrastinateWorker(queue, o => o.Queues = [queue]);
        });

    [Fact]
    public async Task A_running_job_may_finish_while_the_host_stops()
    {
        using var host = Build("finishing", TimeSpan.FromSeconds(30), async (_, context, ct, gate) =>
        {
            gate.Started.TrySetResult(context.Job.Id);
            await gate.Release.Task.WaitAsync(ct);
        });
        var gate = host.Services.GetRequiredService<Gate>();
        await host.StartAsync();
        var id = await host.Services.GetRequiredService<IJobDeferrer>().DeferAsync("work.finishing", new WorkArgs(1));
        Assert.Equal(id, await gate.Started.Task.WaitAsync(Eventually.DefaultTimeout));

        var stopping = host.StopAsync();
        // The worker stops fetching but waits for the running job.
        Assert.False(stopping.IsCompleted);
        gate.Release.SetResult();
        await stopping.WaitAsync(Eventually.DefaultTimeout);

        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND queue_name = 'finishing'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers WHERE name = 'finishing'"));
    }

    [Fact]
    public async Task A_job_that_outlives_the_graceful_timeout_is_cancelled_before_the_hosts_shutdown_timeout()
    {
        var shutdownTimeout = TimeSpan.FromSeconds(12);   // graceful timeout: 9 s
        using var host = Build("stubborn", shutdownTimeout, async (_, context, ct, gate) =>
        {
            gate.Started.TrySetResult(context.Job.Id);
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            finally
            {
                gate.Cancelled.TrySetResult(context.AbortReason);
            }
        });
        var gate = host.Services.GetRequiredService<Gate>();
        await host.StartAsync();
        var id = await host.Services.GetRequiredService<IJobDeferrer>().DeferAsync("work.stubborn", new WorkArgs(2));
        Assert.Equal(id, await gate.Started.Task.WaitAsync(Eventually.DefaultTimeout));

        var clock = Stopwatch.StartNew();
        await host.StopAsync();
        clock.Stop();

        Assert.True(clock.Elapsed < shutdownTimeout, $"StopAsync took {clock.Elapsed}");
        Assert.Equal(AbortReason.Shutdown, await gate.Cancelled.Task.WaitAsync(Eventually.DefaultTimeout));
        Assert.Equal("aborted", await db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND queue_name = 'stubborn'"));
    }

    [Fact]
    public async Task Stopping_an_idle_host_is_prompt_and_unregisters_the_worker()
    {
        using var host = Build("idle", TimeSpan.FromSeconds(30), (_, _, _, _) => Task.CompletedTask);
        await host.StartAsync();
        await Eventually.WaitAsync(
            () => db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers WHERE name = 'idle'"),
            n => n == 1, "the worker to register");

        var clock = Stopwatch.StartNew();
        await host.StopAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"StopAsync took {clock.Elapsed}");
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers WHERE name = 'idle'"));
    }
}
