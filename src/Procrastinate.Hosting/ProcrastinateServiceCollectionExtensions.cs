using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Procrastinate;
using Procrastinate.Hosting;
using Procrastinate.Hosting.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Procrastinate in a service collection: the app, the deferrer and hosted workers.</summary>
public static class ProcrastinateServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Procrastinate <see cref="App"/> (a singleton, disposed with the container) and
    /// <see cref="IJobDeferrer"/>. Unless <paramref name="configure"/> says otherwise, the app connects
    /// with the connection string <c>ConnectionStrings:Procrastinate</c> of the configuration, else with
    /// <c>PROCRASTINATE_DATABASE_URL</c> or the <c>PG*</c> variables (see <see cref="ProcrastinateBuilder.UseConfiguration"/>).
    /// Calling it again returns the same builder: tasks added by each call are all registered.
    /// </summary>
    /// <example>
    /// <code>
    /// services.AddProcrastinate(p =&gt; p
    ///     .AddTask&lt;EmailArgs, SendEmail&gt;("send_email", queue: "emails")
    ///     .ConfigureAppOptions(o =&gt; o with { LogArguments = true }));
    /// services.AddProcrastinateWorker();   // settings from Procrastinate:Worker
    /// </code>
    /// </example>
    public static ProcrastinateBuilder AddProcrastinate(this IServiceCollection services, Action<ProcrastinateBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = GetOrAddBuilder(services);
        configure?.Invoke(builder);
        return builder;
    }

    /// <summary>
    /// Registers the Procrastinate <see cref="App"/> connected with <paramref name="connectionString"/>
    /// (an Npgsql connection string or a <c>postgresql://</c> URL), and <see cref="IJobDeferrer"/>.
    /// </summary>
    /// <inheritdoc cref="AddProcrastinate(IServiceCollection, Action{ProcrastinateBuilder}?)"/>
    public static ProcrastinateBuilder AddProcrastinate(this IServiceCollection services, string connectionString, Action<ProcrastinateBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = GetOrAddBuilder(services).UseConnectionString(connectionString);
        configure?.Invoke(builder);
        return builder;
    }

    /// <summary>
    /// Runs a Procrastinate worker as a hosted service, with <see cref="ProcrastinateWorkerOptions"/>
    /// bound from the configuration section <c>Procrastinate:Worker</c>, then changed by
    /// <paramref name="configure"/>, and validated when the host starts (an invalid setting makes
    /// <c>StartAsync</c> throw an <see cref="OptionsValidationException"/>). Needs <c>AddProcrastinate</c>.
    /// </summary>
    /// <remarks>
    /// The worker stops with the host. Unless <see cref="ProcrastinateWorkerOptions.ShutdownGracefulTimeout"/>
    /// is set, running jobs get their cancellation a little before the host's
    /// <c>HostOptions.ShutdownTimeout</c> expires. Keys of the section that match no setting are refused.
    /// </remarks>
    public static IServiceCollection AddProcrastinateWorker(this IServiceCollection services, Action<ProcrastinateWorkerOptions>? configure = null) =>
        AddWorker(services, Options.Options.DefaultName, ProcrastinateWorkerOptions.SectionName, configure);

    /// <summary>
    /// Runs a named Procrastinate worker as a hosted service, with its options bound from
    /// <c>Procrastinate:Workers:{name}</c>; its worker name defaults to <paramref name="name"/>.
    /// Workers of one host run side by side and stop together. Adding a name again only adds
    /// <paramref name="configure"/> to that worker.
    /// </summary>
    /// <inheritdoc cref="AddProcrastinateWorker(IServiceCollection, Action{ProcrastinateWorkerOptions}?)"/>
    /// <exception cref="ArgumentException">The name is empty or holds a ':'.</exception>
    public static IServiceCollection AddProcrastinateWorker(this IServiceCollection services, string name, Action<ProcrastinateWorkerOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException("A worker name cannot contain ':' (it names a configuration section).", nameof(name));
        return AddWorker(services, name, $"{ProcrastinateWorkerOptions.NamedSectionPrefix}:{name}", configure);
    }

    private static ProcrastinateBuilder GetOrAddBuilder(IServiceCollection services)
    {
        if (FindInstance<ProcrastinateBuilder>(services) is { } existing)
            return existing;
        var builder = new ProcrastinateBuilder(services);
        services.AddSingleton(builder);
        services.TryAddSingleton(sp => builder.Build(sp));
        services.TryAddSingleton<IJobDeferrer, JobDeferrer>();
        return builder;
    }

    private static IServiceCollection AddWorker(IServiceCollection services, string name, string section, Action<ProcrastinateWorkerOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        var registry = FindInstance<WorkerRegistry>(services);
        if (registry is null)
        {
            registry = new WorkerRegistry();
            services.AddSingleton(registry);
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ProcrastinateWorkerOptions>, ProcrastinateWorkerOptionsValidator>());
            services.TryAddSingleton<ProcrastinateWorkerService>();
            services.AddHostedService(sp => sp.GetRequiredService<ProcrastinateWorkerService>());
        }

        var options = services.AddOptions<ProcrastinateWorkerOptions>(name);
        if (registry.Add(name))
            options.BindConfiguration(section, binder => binder.ErrorOnUnknownConfiguration = true).ValidateOnStart();
        if (configure is not null)
            options.Configure(configure);
        return services;
    }

    private static T? FindInstance<T>(IServiceCollection services) where T : class =>
        services.LastOrDefault(d => d.ServiceType == typeof(T) && !d.IsKeyedService)?.ImplementationInstance as T;
}
