using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Procrastinate.Hosting.Internal;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Hosting.Tests;

public sealed class WorkerOptionsTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    private IHost Build(Action<IServiceCollection> configure, params (string Key, string Value)[] settings) =>
        TestHosts.Build(output, b =>
        {
            b.Services.AddProcrastinate(db.ConnectionString);
            configure(b.Services);
        }, settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));

    private static WorkerOptions Resolve(IHost host, string name = "") =>
        host.Services.GetRequiredService<ProcrastinateWorkerService>().ResolveOptions(name);

    [Fact]
    public void The_default_worker_binds_Procrastinate_Worker()
    {
        using var host = Build(s => s.AddProcrastinateWorker(),
            ("Procrastinate:Worker:Name", "bound"),
            ("Procrastinate:Worker:Queues:0", "alpha"),
            ("Procrastinate:Worker:Queues:1", "beta"),
            ("Procrastinate:Worker:Concurrency", "3"),
            ("Procrastinate:Worker:PrefetchJobs", "40"),
            ("Procrastinate:Worker:ClaimsInFlight", "2"),
            ("Procrastinate:Worker:DurableClaims", "false"),
            ("Procrastinate:Worker:FetchJobPollingInterval", "00:00:02"),
            ("Procrastinate:Worker:AbortJobPollingInterval", "00:00:03"),
            ("Procrastinate:Worker:ShutdownGracefulTimeout", "00:00:07"),
            ("Procrastinate:Worker:ListenNotify", "false"),
            ("Procrastinate:Worker:DeleteJobs", "Successful"),
            ("Procrastinate:Worker:VacuumAfterClaimedJobs", "0"),
            ("Procrastinate:Worker:UpdateHeartbeatInterval", "00:00:04"),
            ("Procrastinate:Worker:StalledWorkerTimeout", "00:00:40"),
            ("Procrastinate:Worker:StalledJobs", "Fail"),
            ("Procrastinate:Worker:StalledJobsCheckInterval", "00:00:20"));

        var options = Resolve(host);

        Assert.Equal("bound", options.Name);
        Assert.Equal(["alpha", "beta"], options.Queues);
        Assert.Equal(3, options.Concurrency);
        Assert.Equal(40, options.PrefetchJobs);
        Assert.Equal(2, options.ClaimsInFlight);
        Assert.False(options.DurableClaims);
        Assert.Equal(TimeSpan.FromSeconds(2), options.FetchJobPollingInterval);
        Assert.Equal(TimeSpan.FromSeconds(3), options.AbortJobPollingInterval);
        Assert.Equal(TimeSpan.FromSeconds(7), options.ShutdownGracefulTimeout);
        Assert.False(options.ListenNotify);
        Assert.Equal(DeleteJobsMode.Successful, options.DeleteJobs);
        Assert.Equal(0, options.VacuumAfterClaimedJobs);
        Assert.Equal(TimeSpan.FromSeconds(4), options.UpdateHeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(40), options.StalledWorkerTimeout);
        Assert.Equal(StalledJobPolicy.Fail, options.StalledJobs);
        Assert.Equal(TimeSpan.FromSeconds(20), options.StalledJobsCheckInterval);
        Assert.False(options.HandleSignals);
        Assert.True(options.Wait);
    }

    [Fact]
    public void Without_configuration_the_defaults_are_the_core_defaults_with_the_host_handling_signals()
    {
        using var host = Build(s => s.AddProcrastinateWorker());
        var options = Resolve(host);
        var core = new WorkerOptions();

        Assert.Equal("worker", options.Name);
        Assert.Null(options.Queues);
        Assert.Equal(core.Concurrency, options.Concurrency);
        Assert.Equal(core.PrefetchJobs, options.PrefetchJobs);
        Assert.Equal(core.ClaimsInFlight, options.ClaimsInFlight);
        Assert.Equal(core.DurableClaims, options.DurableClaims);
        Assert.Equal(core.FetchJobPollingInterval, options.FetchJobPollingInterval);
        Assert.Equal(core.UpdateHeartbeatInterval, options.UpdateHeartbeatInterval);
        Assert.Equal(core.StalledWorkerTimeout, options.StalledWorkerTimeout);
        Assert.Equal(core.DeleteJobs, options.DeleteJobs);
        Assert.Equal(core.VacuumAfterClaimedJobs, options.VacuumAfterClaimedJobs);
        Assert.Equal(core.StalledJobs, options.StalledJobs);
        Assert.Null(options.Middleware);
        Assert.Null(options.AdditionalContext);
        Assert.False(options.HandleSignals);
    }

    [Fact]
    public void A_named_worker_binds_its_own_section_and_is_named_after_it()
    {
        using var host = Build(s =>
            {
                s.AddProcrastinateWorker();
                s.AddProcrastinateWorker("emails");
            },
            ("Procrastinate:Worker:Concurrency", "2"),
            ("Procrastinate:Workers:emails:Concurrency", "5"),
            ("Procrastinate:Workers:emails:Queues:0", "emails"));

        var emails = Resolve(host, "emails");
        Assert.Equal("emails", emails.Name);
        Assert.Equal(5, emails.Concurrency);
        Assert.Equal(["emails"], emails.Queues);
        Assert.Equal(2, Resolve(host).Concurrency);
        Assert.Equal(["", "emails"], host.Services.GetRequiredService<ProcrastinateWorkerService>().Workers.Select(w => w.RegistrationName));
    }

    [Fact]
    public void Code_runs_after_configuration_and_adding_a_name_twice_adds_no_second_worker()
    {
        var middleware = new NoOpMiddleware();
        using var host = Build(s =>
            {
                s.AddProcrastinateWorker("reports", o => o.Concurrency = 8);
                s.AddProcrastinateWorker("reports", o =>
                {
                    o.Middleware.Add(middleware);
                    o.AdditionalContext["tenant"] = "acme";
                });
            },
            ("Procrastinate:Workers:reports:Concurrency", "2"),
            ("Procrastinate:Workers:reports:Name", "reporter"));

        var options = Resolve(host, "reports");
        Assert.Equal(8, options.Concurrency);
        Assert.Equal("reporter", options.Name);
        Assert.Same(middleware, Assert.Single(options.Middleware!));
        Assert.Equal("acme", options.AdditionalContext!["tenant"]);
        Assert.Single(host.Services.GetRequiredService<ProcrastinateWorkerService>().Workers);
    }

    private sealed class NoOpMiddleware : IJobMiddleware
    {
        public Task InvokeAsync(JobContext context, JobDelegate next) => next(context);
    }

    [Theory]
    [InlineData(30, 25)]
    [InlineData(10, 7.5)]
    [InlineData(2, 1.5)]
    public void The_graceful_timeout_defaults_to_a_little_less_than_the_hosts_shutdown_timeout(double hostSeconds, double gracefulSeconds)
    {
        using var host = Build(s =>
        {
            s.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(hostSeconds));
            s.AddProcrastinateWorker();
        });

        Assert.Equal(TimeSpan.FromSeconds(gracefulSeconds), Resolve(host).ShutdownGracefulTimeout);
    }

    [Fact]
    public void An_infinite_host_shutdown_timeout_lets_jobs_finish_without_limit()
    {
        using var host = Build(s =>
        {
            s.Configure<HostOptions>(o => o.ShutdownTimeout = Timeout.InfiniteTimeSpan);
            s.AddProcrastinateWorker();
        });

        Assert.Null(Resolve(host).ShutdownGracefulTimeout);
    }

    [Fact]
    public async Task Concurrency_zero_makes_the_host_start_fail_with_an_options_validation_exception()
    {
        using var host = Build(s => s.AddProcrastinateWorker(), ("Procrastinate:Worker:Concurrency", "0"));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Concurrency", error.Message, StringComparison.Ordinal);
        Assert.Contains("'worker'", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers WHERE name = 'worker'"));
    }

    [Fact]
    public async Task An_invalid_named_worker_makes_the_host_start_fail()
    {
        using var host = Build(s => s.AddProcrastinateWorker("beats"),
            ("Procrastinate:Workers:beats:UpdateHeartbeatInterval", "00:01:00"),
            ("Procrastinate:Workers:beats:StalledWorkerTimeout", "00:00:30"));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("UpdateHeartbeatInterval", error.Message, StringComparison.Ordinal);
        Assert.Contains("'beats'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_settings_from_code_are_refused_at_start_too()
    {
        using var host = Build(s => s.AddProcrastinateWorker(o => o.Queues = [new string('q', 41)]));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Queues", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_misspelt_setting_is_refused_at_start()
    {
        using var host = Build(s => s.AddProcrastinateWorker(), ("Procrastinate:Worker:Concurency", "4"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains("Concurency", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_running_worker_uses_the_bound_settings()
    {
        using var host = Build(s => s.AddProcrastinateWorker("bound_run"),
            ("Procrastinate:Workers:bound_run:Concurrency", "3"),
            ("Procrastinate:Workers:bound_run:Queues:0", "q1"),
            ("Procrastinate:Workers:bound_run:Queues:1", "q2"));

        await host.StartAsync();
        try
        {
            var row = await Eventually.WaitAsync(
                () => db.QueryAsync("SELECT concurrency, queues, process_id FROM procrastinate_dotnet_workers WHERE name = 'bound_run'"),
                rows => rows.Count == 1, "the worker's row");
            Assert.Equal(3, row[0]["concurrency"]);
            Assert.Equal(["q1", "q2"], (string[])row[0]["queues"]!);
            Assert.Equal(Environment.ProcessId, row[0]["process_id"]);
        }
        finally
        {
            await host.StopAsync();
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_dotnet_workers WHERE name = 'bound_run'"));
    }
}
