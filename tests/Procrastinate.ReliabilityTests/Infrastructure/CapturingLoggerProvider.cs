using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>Captures every log record (message, exception text, structured state and scopes) as text.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public ConcurrentQueue<(LogLevel Level, EventId Id, string Text)> Records { get; } = new();

    /// <summary>Everything that was logged, as one text.</summary>
    public string AllText => string.Join("\n", Records.Select(r => r.Text));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    public static ILoggerFactory Factory(CapturingLoggerProvider provider) =>
        LoggerFactory.Create(b => b.AddProvider(provider).SetMinimumLevel(LogLevel.Trace));

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = new System.Text.StringBuilder($"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)}");
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (k, v) in pairs)
                    text.Append($" {k}={v}");
            owner._scopes.ForEachScope((scope, sb) =>
            {
                sb.Append($" scope:{scope}");
                if (scope is IEnumerable<KeyValuePair<string, object?>> kvs)
                    foreach (var (k, v) in kvs)
                        sb.Append($" {k}={v}");
            }, text);
            if (exception is not null)
                text.Append(" exception: ").Append(exception);
            owner.Records.Enqueue((logLevel, eventId, text.ToString()));
        }
    }
}
