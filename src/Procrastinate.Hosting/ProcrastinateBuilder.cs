using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Procrastinate.Hosting;

/// <summary>
/// Configures the <see cref="App"/> that <c>services.AddProcrastinate(...)</c> registers: where
/// it connects, its options, and its tasks. Every call to <c>AddProcrastinate</c> on one service
/// collection returns the same builder, so several modules can each add their tasks.
/// </summary>
/// <remarks>
/// The app is built when it is first resolved. Its <see cref="AppOptions"/> start with the
/// <see cref="ILoggerFactory"/>, the <see cref="System.Diagnostics.Metrics.IMeterFactory"/> and, when one is registered, the <see cref="TimeProvider"/> of the
/// container, and a <see cref="ServiceProviderJobHandlerActivator"/> (one DI scope per job); then
/// the <see cref="ConfigureAppOptions(Func{AppOptions, AppOptions})"/> callbacks run, in order.
/// </remarks>
public sealed class ProcrastinateBuilder
{
    /// <summary>The name of the connection string read from configuration by default: <c>ConnectionStrings:Procrastinate</c>.</summary>
    public const string DefaultConnectionStringName = "Procrastinate";

    private readonly List<Func<AppOptions, IServiceProvider, AppOptions>> _appOptions = [];
    private readonly List<Action<App, IServiceProvider>> _appConfigurations = [];
    private Func<IServiceProvider, Connector> _connector = FromConfiguration(DefaultConnectionStringName);

    internal ProcrastinateBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection the app is registered in.</summary>
    public IServiceCollection Services { get; }

    // ---- Connection ---------------------------------------------------------------------------

    /// <summary>
    /// Connects with <paramref name="connectionString"/>: an Npgsql connection string or a
    /// <c>postgresql://user:password@host:port/db</c> URL. The app owns (and disposes) its data source.
    /// </summary>
    /// <exception cref="ArgumentException">The connection string is empty.</exception>
    public ProcrastinateBuilder UseConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        _connector = _ => new NpgsqlConnector(connectionString);
        return this;
    }

    /// <summary>
    /// Connects with the connection string <c>ConnectionStrings:{name}</c> of the container's
    /// <see cref="IConfiguration"/> (a connection string or a <c>postgresql://</c> URL), read when the
    /// app is built; when it is missing or empty, with the environment, as <c>new NpgsqlConnector()</c>
    /// does (<c>PROCRASTINATE_DATABASE_URL</c>, then the <c>PG*</c> variables). This is the default,
    /// with the name <c>Procrastinate</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public ProcrastinateBuilder UseConfiguration(string connectionStringName = DefaultConnectionStringName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringName);
        _connector = FromConfiguration(connectionStringName);
        return this;
    }

    /// <summary>
    /// Uses the <see cref="NpgsqlDataSource"/> registered in the container (for instance by
    /// <c>AddNpgsqlDataSource</c>), so the app shares its pool. The app does not dispose it: the container does.
    /// </summary>
    public ProcrastinateBuilder UseDataSource() =>
        UseDataSource(static sp => sp.GetRequiredService<NpgsqlDataSource>());

    /// <summary>
    /// Uses the <see cref="NpgsqlDataSource"/> that <paramref name="dataSourceFactory"/> returns, called
    /// once when the app is built. The app disposes it only when <paramref name="ownsDataSource"/> is true.
    /// </summary>
    public ProcrastinateBuilder UseDataSource(Func<IServiceProvider, NpgsqlDataSource> dataSourceFactory, bool ownsDataSource = false)
    {
        ArgumentNullException.ThrowIfNull(dataSourceFactory);
        _connector = sp => new NpgsqlConnector(dataSourceFactory(sp), ownsDataSource);
        return this;
    }

    /// <summary>Uses the connector that <paramref name="connectorFactory"/> returns (the app disposes it).</summary>
    public ProcrastinateBuilder UseConnector(Func<IServiceProvider, Connector> connectorFactory)
    {
        ArgumentNullException.ThrowIfNull(connectorFactory);
        _connector = connectorFactory;
        return this;
    }

    // ---- App ----------------------------------------------------------------------------------

    /// <summary>
    /// Changes the app's options, for instance <c>o =&gt; o with { LogArguments = true }</c>.
    /// Callbacks run in the order they were added, after the container's defaults are set.
    /// </summary>
    public ProcrastinateBuilder ConfigureAppOptions(Func<AppOptions, AppOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return ConfigureAppOptions((options, _) => configure(options));
    }

    /// <inheritdoc cref="ConfigureAppOptions(Func{AppOptions, AppOptions})"/>
    public ProcrastinateBuilder ConfigureAppOptions(Func<AppOptions, IServiceProvider, AppOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _appOptions.Add(configure);
        return this;
    }

    /// <summary>
    /// Runs <paramref name="configure"/> on the app once it is built: register tasks with lambda
    /// bodies (<c>app.Task&lt;TArgs&gt;(...)</c>), blueprints, task middleware or schedules there.
    /// </summary>
    public ProcrastinateBuilder ConfigureApp(Action<App, IServiceProvider> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _appConfigurations.Add(configure);
        return this;
    }

    /// <summary>
    /// Registers a task written as a handler class. Each job runs on an instance resolved in a
    /// fresh DI scope, disposed when the job ends; the handler does not need to be registered
    /// (it is then created with <see cref="ActivatorUtilities"/>, its constructor taking services).
    /// </summary>
    /// <typeparam name="TArgs">The arguments record, stored as a JSON object.</typeparam>
    /// <typeparam name="THandler">The handler class.</typeparam>
    /// <param name="name">The stable name stored with each job (at most 128 characters).</param>
    /// <param name="queue">Default queue (<c>default</c> when null).</param>
    /// <param name="priority">Default priority; higher runs first.</param>
    /// <param name="lock">Default lock: jobs sharing it run one at a time.</param>
    /// <param name="queueingLock">Default queueing lock: at most one waiting job per value.</param>
    /// <param name="aliases">Other names that resolve to this task (for renames).</param>
    /// <param name="retry">What happens when a run throws; default: no retry.</param>
    /// <remarks>Names are validated when the app is built, with the same rules as <see cref="Blueprint"/>.</remarks>
    public ProcrastinateBuilder AddTask<TArgs, THandler>(string name, string? queue = null, int priority = 0,
        string? @lock = null, string? queueingLock = null, IEnumerable<string>? aliases = null, RetryStrategy? retry = null)
        where THandler : IJobHandler<TArgs>
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var aliasList = aliases?.ToList();
        return ConfigureApp((app, _) => app.Task<TArgs, THandler>(name, queue, priority, @lock, queueingLock, aliasList, retry));
    }

    // ---- Building -------------------------------------------------------------------------------

    internal App Build(IServiceProvider services)
    {
        var options = new AppOptions
        {
            LoggerFactory = services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            TimeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System,
            MeterFactory = services.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            HandlerActivator = new ServiceProviderJobHandlerActivator(services.GetRequiredService<IServiceScopeFactory>()),
        };
        foreach (var configure in _appOptions)
            options = configure(options, services)
                ?? throw new InvalidOperationException("A ConfigureAppOptions callback returned null.");

        var app = new App(_connector(services), options);
        try
        {
            foreach (var configure in _appConfigurations)
                configure(app, services);
        }
        catch
        {
            app.Dispose();
            throw;
        }
        return app;
    }

    private static Func<IServiceProvider, Connector> FromConfiguration(string name) => services =>
    {
        var connectionString = services.GetService<IConfiguration>()?.GetConnectionString(name);
        return string.IsNullOrWhiteSpace(connectionString) ? new NpgsqlConnector() : new NpgsqlConnector(connectionString);
    };
}
