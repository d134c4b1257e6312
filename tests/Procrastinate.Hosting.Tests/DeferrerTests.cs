using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Hosting.Tests;

public sealed class DeferrerTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    public sealed record GreetArgs(string PersonName, int Times);

    public sealed class Greetings
    {
        public TaskCompletionSource<GreetArgs> Received { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public sealed class GreetHandler(Greetings greetings) : IJobHandler<GreetArgs>
    {
        public Task HandleAsync(GreetArgs args, JobContext context, CancellationToken cancellationToken)
        {
            greetings.Received.TrySetResult(args);
            return Task.CompletedTask;
        }
    }

    private IHost Build(bool withWorker = false) => TestHosts.Build(output, b =>
    {
        b.Services.AddSingleton<Greetings>();
        b.Services.AddProcrastinate(db.ConnectionString, p => p.AddTask<GreetArgs, GreetHandler>("greet", queue: "greetings", priority: 4));
        if (withWorker)
            b.Services.AddProcrastinateWorker(o => o.Queues = ["greetings"]);
    });

    private async Task<Dictionary<string, object?>> JobAsync(long id) =>
        Assert.Single(await db.QueryAsync("SELECT task_name, queue_name, priority, args::text AS args FROM procrastinate_jobs WHERE id = $1", id));

    [Fact]
    public async Task Deferring_a_registered_task_by_name_applies_its_defaults()
    {
        using var host = Build();
        var deferrer = host.Services.GetRequiredService<IJobDeferrer>();

        var id = await deferrer.DeferAsync("greet", new GreetArgs("Ada", 2));

        var job = await JobAsync(id);
        Assert.Equal("greet", job["task_name"]);
        Assert.Equal("greetings", job["queue_name"]);
        Assert.Equal(4, job["priority"]);
        using var args = JsonDocument.Parse((string)job["args"]!);
        Assert.Equal("Ada", args.RootElement.GetProperty("person_name").GetString());
        Assert.Equal(2, args.RootElement.GetProperty("times").GetInt32());
    }

    [Fact]
    public async Task Deferring_an_unregistered_task_serializes_the_arguments_with_the_apps_options()
    {
        using var host = Build();
        var deferrer = host.Services.GetRequiredService<IJobDeferrer>();

        var id = await deferrer.DeferAsync("elsewhere.greet", new GreetArgs("Bob", 1), new DeferOptions { Queue = "python", Priority = 1 });

        var job = await JobAsync(id);
        Assert.Equal("elsewhere.greet", job["task_name"]);
        Assert.Equal("python", job["queue_name"]);
        Assert.Equal(1, job["priority"]);
        using var args = JsonDocument.Parse((string)job["args"]!);
        Assert.Equal("Bob", args.RootElement.GetProperty("person_name").GetString());
    }

    [Fact]
    public async Task Deferring_a_registered_task_with_other_arguments_is_refused_before_any_write()
    {
        using var host = Build();
        var deferrer = host.Services.GetRequiredService<IJobDeferrer>();
        var before = await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => deferrer.DeferAsync("greet", new { Name = "x" }));

        Assert.Contains(typeof(GreetArgs).FullName!, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));
    }

    [Fact]
    public async Task Deferring_through_a_task_object_uses_that_task()
    {
        using var host = Build();
        var deferrer = host.Services.GetRequiredService<IJobDeferrer>();
        var task = host.Services.GetRequiredService<App>().GetTask<GreetArgs>("greet");

        var id = await deferrer.DeferAsync(task, new GreetArgs("Cy", 3), new DeferOptions { Priority = 9 });

        var job = await JobAsync(id);
        Assert.Equal("greetings", job["queue_name"]);
        Assert.Equal(9, job["priority"]);
    }

    [Fact]
    public async Task A_job_deferred_through_the_client_runs_on_the_hosted_worker()
    {
        await db.ResetAsync();
        using var host = Build(withWorker: true);
        await host.StartAsync();
        try
        {
            var id = await host.Services.GetRequiredService<IJobDeferrer>().DeferAsync("greet", new GreetArgs("Dee", 5));

            var received = await host.Services.GetRequiredService<Greetings>().Received.Task.WaitAsync(Eventually.DefaultTimeout);
            Assert.Equal(new GreetArgs("Dee", 5), received);
            await Eventually.WaitAsync(
                () => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id),
                s => s == "succeeded", "the job to succeed");
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
