using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Procrastinate.Hosting.Internal;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procrastinate.Hosting.Tests;

public sealed class ServiceRegistrationTests(DatabaseFixture db, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    public sealed record NoteArgs(string Text);

    public sealed class NoteHandler : IJobHandler<NoteArgs>
    {
        public Task HandleAsync(NoteArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class TestTimeProvider : TimeProvider;

    [Fact]
    public async Task The_app_is_one_singleton_with_the_containers_logger_factory_time_provider_and_a_scoped_activator()
    {
        var time = new TestTimeProvider();
        using var host = TestHosts.Build(output, b =>
        {
            b.Services.AddSingleton<TimeProvider>(time);
            b.Services.AddProcrastinate(db.ConnectionString);
        });

        var app = host.Services.GetRequiredService<App>();
        Assert.Same(app, host.Services.GetRequiredService<App>());
        Assert.Same(host.Services.GetRequiredService<ILoggerFactory>(), app.Options.LoggerFactory);
        Assert.Same(time, app.Options.TimeProvider);
        Assert.IsType<ServiceProviderJobHandlerActivator>(app.Options.HandlerActivator);
        Assert.IsType<JobDeferrer>(host.Services.GetRequiredService<IJobDeferrer>());
        Assert.Same(host.Services.GetRequiredService<IJobDeferrer>(), host.Services.GetRequiredService<IJobDeferrer>());
        Assert.True((await app.Schema.CheckAsync()).IsUsable);
    }

    [Fact]
    public void Without_a_registered_time_provider_the_app_uses_the_system_clock()
    {
        using var host = TestHosts.Build(output, b => b.Services.AddProcrastinate(db.ConnectionString));
        Assert.Same(TimeProvider.System, host.Services.GetRequiredService<App>().Options.TimeProvider);
    }

    [Fact]
    public async Task The_connection_string_is_read_from_ConnectionStrings_Procrastinate()
    {
        using var host = TestHosts.Build(output,
            b => b.Services.AddProcrastinate(p => p.AddTask<NoteArgs, NoteHandler>("config.note")),
            [new("ConnectionStrings:Procrastinate", db.ConnectionString)]);
        var app = host.Services.GetRequiredService<App>();

        var id = await app.GetTask<NoteArgs>("config.note").DeferAsync(new NoteArgs("from configuration"));

        Assert.Equal("config.note", await db.ScalarAsync<string>("SELECT task_name FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task UseConfiguration_reads_another_connection_string_name()
    {
        using var host = TestHosts.Build(output,
            b => b.Services.AddProcrastinate(p => p.UseConfiguration("Jobs")),
            [new("ConnectionStrings:Jobs", db.ConnectionString)]);
        var app = host.Services.GetRequiredService<App>();

        var id = await app.DeferAsync("named.connection", """{"x": 1}""");

        Assert.Equal("named.connection", await db.ScalarAsync<string>("SELECT task_name FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task A_data_source_from_the_container_is_shared_and_not_disposed_with_the_app()
    {
        var dataSource = NpgsqlDataSource.Create(db.ConnectionString);
        await using (dataSource)
        {
            var host = TestHosts.Build(output, b =>
            {
                b.Services.AddSingleton(dataSource);
                b.Services.AddProcrastinate(p => p.UseDataSource());
            });
            var app = host.Services.GetRequiredService<App>();
            Assert.Same(dataSource, Assert.IsType<NpgsqlConnector>(app.Connector).DataSource);
            var id = await app.DeferAsync("shared.pool", "{}");

            // Disposing the container disposes the app, which must leave the data source alone.
            host.Dispose();

            await using var connection = await dataSource.OpenConnectionAsync();
            await using var command = new NpgsqlCommand("SELECT count(*) FROM procrastinate_jobs WHERE id = $1", connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
            Assert.Equal(1L, await command.ExecuteScalarAsync());
        }
    }

    [Fact]
    public void App_options_callbacks_run_in_order_after_the_container_defaults_and_ConfigureApp_sees_the_app()
    {
        App? configured = null;
        using var host = TestHosts.Build(output, b => b.Services.AddProcrastinate(db.ConnectionString, p => p
            .ConfigureAppOptions(o =>
            {
                Assert.IsType<ServiceProviderJobHandlerActivator>(o.HandlerActivator);
                return o with { MaxArgsBytes = 1000 };
            })
            .ConfigureAppOptions((o, sp) => o with { MaxArgsBytes = o.MaxArgsBytes * 2, LogArguments = sp.GetService<ILoggerFactory>() is not null })
            .ConfigureApp((app, _) =>
            {
                configured = app;
                app.Task<NoteArgs>("lambda.note", _ => { });
            })));

        var app = host.Services.GetRequiredService<App>();
        Assert.Same(app, configured);
        Assert.Equal(2000, app.Options.MaxArgsBytes);
        Assert.True(app.Options.LogArguments);
        Assert.NotNull(app.FindTask("lambda.note"));
    }

    [Fact]
    public void Calling_AddProcrastinate_again_adds_tasks_to_the_same_app()
    {
        using var host = TestHosts.Build(output, b =>
        {
            var first = b.Services.AddProcrastinate(db.ConnectionString, p => p.AddTask<NoteArgs, NoteHandler>("module_a.note"));
            var second = b.Services.AddProcrastinate(p => p.AddTask<NoteArgs, NoteHandler>("module_b.note", queue: "notes", priority: 3, aliases: ["old.note"]));
            Assert.Same(first, second);
            Assert.Single(b.Services, d => d.ServiceType == typeof(App));
        });

        var app = host.Services.GetRequiredService<App>();
        Assert.NotNull(app.FindTask("module_a.note"));
        var task = app.GetTask<NoteArgs>("module_b.note");
        Assert.Equal("notes", task.Queue);
        Assert.Equal(3, task.Priority);
        Assert.Same(task, app.GetTask<NoteArgs>("old.note"));
    }

    [Fact]
    public void GetTask_names_the_problem_when_a_task_is_missing_or_takes_other_arguments()
    {
        using var host = TestHosts.Build(output, b => b.Services.AddProcrastinate(db.ConnectionString, p => p.AddTask<NoteArgs, NoteHandler>("typed.note")));
        var app = host.Services.GetRequiredService<App>();

        var missing = Assert.Throws<InvalidOperationException>(() => app.GetTask<NoteArgs>("nope"));
        Assert.Contains("'nope'", missing.Message, StringComparison.Ordinal);
        var wrongType = Assert.Throws<InvalidOperationException>(() => app.GetTask<string>("typed.note"));
        Assert.Contains(typeof(NoteArgs).FullName!, wrongType.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hosted_worker_without_AddProcrastinate_fails_at_start_with_a_clear_message()
    {
        using var host = TestHosts.Build(output, b => b.Services.AddProcrastinateWorker());
        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
        Assert.Contains("AddProcrastinate", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Worker_names_that_cannot_name_a_configuration_section_are_refused()
    {
        var services = new ServiceCollection();
        Assert.Throws<ArgumentException>(() => services.AddProcrastinateWorker("a:b"));
        Assert.Throws<ArgumentException>(() => services.AddProcrastinateWorker(" "));
    }
}
