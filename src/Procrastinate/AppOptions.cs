using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Procrastinate;

/// <summary>Settings shared by everything an <see cref="App"/> does.</summary>
public sealed record AppOptions
{
    /// <summary>Default limit on the JSON size of one job's arguments: 1 MB.</summary>
    public const int DefaultMaxArgsBytes = 1024 * 1024;

    /// <summary>
    /// How task arguments are written and read. The default writes snake_case names
    /// (<c>{"a": 3, "b": 5}</c>), as Python's keyword arguments, and refuses missing
    /// required constructor parameters.
    /// </summary>
    public JsonSerializerOptions JsonSerializerOptions { get; init; } = CreateDefaultJsonOptions();

    /// <summary>Where logs go. Default: nowhere.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>The clock for client-side times (schedule_in, retry delays). The database clock decides due times.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Creates handler-class instances for jobs. Default: <see cref="DefaultJobHandlerActivator"/>.</summary>
    public IJobHandlerActivator HandlerActivator { get; init; } = DefaultJobHandlerActivator.Instance;

    /// <summary>Largest accepted JSON size of one job's arguments, in bytes.</summary>
    public int MaxArgsBytes { get; init; } = DefaultMaxArgsBytes;

    /// <summary>
    /// How late a periodic tick may still be deferred. When a worker starts, the ticks of the
    /// last <see cref="PeriodicMaxDelay"/> not deferred yet are caught up; older ones are skipped.
    /// Default 600 s, as in Procrastinate.
    /// </summary>
    public TimeSpan PeriodicMaxDelay { get; init; } = TimeSpan.FromSeconds(600);

    /// <summary>Creates the app's <see cref="System.Diagnostics.Metrics.Meter"/> (from DI, say); a plain <c>new Meter("Procrastinate")</c> when null.</summary>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; init; }

    /// <summary>How far ahead a job may be scheduled; later instants are refused as mistakes. Default 100 years.</summary>
    public TimeSpan MaxScheduleAhead { get; init; } = TimeSpan.FromDays(36525);

    /// <summary>Include task arguments in log records. Off by default: arguments may hold personal data.</summary>
    public bool LogArguments { get; init; }

    /// <summary>The serializer options used when none are given.</summary>
    public static JsonSerializerOptions CreateDefaultJsonOptions() => new(JsonSerializerDefaults.General)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        NumberHandling = JsonNumberHandling.Strict,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        Converters = { new Internal.WellFormedStringConverter() },
    };
}
