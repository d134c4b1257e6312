using System.CommandLine;
using System.Globalization;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary><c>defer TASK [JSON]</c>: creates a job and prints its id.</summary>
internal sealed class DeferCommand : CliCommand
{
    private readonly Argument<string> _task = new("TASK") { Description = "The task's name (as registered in the app, or any name with --unknown)." };
    private readonly Argument<string> _json = new("JSON")
    {
        Description = "The task's arguments as a JSON object, such as '{\"a\": 3, \"b\": 5}'; - reads it from stdin. Default: {}.",
        Arity = ArgumentArity.ZeroOrOne,
    };
    private readonly Option<string> _queue = new("--queue") { Description = "The queue (default: the task's, else 'default').", HelpName = "name" };
    private readonly Option<string> _lock = new("--lock") { Description = "A lock: jobs sharing it run one at a time.", HelpName = "name" };
    private readonly Option<string> _queueingLock = new("--queueing-lock") { Description = "A queueing lock: at most one waiting job per value.", HelpName = "name" };
    private readonly Option<string> _at = new("--at") { Description = "Run at this ISO-8601 instant, with an offset (2030-01-01T09:00:00Z, ...+02:00).", HelpName = "instant" };
    private readonly Option<string> _in = new("--in") { Description = "Run after this delay: seconds (10), a time span (1:30:00) or units (90s, 5m, 2h, 1d, 1h30m).", HelpName = "delay" };
    private readonly Option<int> _priority = new("--priority") { Description = "Priority; higher runs first (default: the task's, else 0).", HelpName = "n" };
    private readonly Option<bool> _unknown = new("--unknown") { Description = "Defer even when the task is not registered in the app (or no app is loaded)." };
    private readonly Option<bool> _ignoreAlreadyEnqueued = new("--ignore-already-enqueued")
    {
        Description = "When a job with the same queueing lock is already waiting, print its id instead of failing.",
    };

    public override Command Build() => new("defer", "Create a job from a task name and JSON arguments, and print its id.")
    {
        _task, _json, _queue, _lock, _queueingLock, _at, _in, _priority, _unknown, _ignoreAlreadyEnqueued,
    };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var taskName = invocation.Argument(_task);
        var json = invocation.ParseResult.GetValue(_json) ?? "{}";
        if (json == "-")
            json = await invocation.Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        var at = settings.Get(_at) is { } atText ? TimeParsing.ParseInstant(atText, "--at") : (DateTimeOffset?)null;
        var delay = settings.Get(_in) is { } inText ? TimeParsing.ParseDelay(inText, "--in") : (TimeSpan?)null;
        if (at is not null && delay is not null)
            throw new CliUsageException("--at and --in cannot be combined.");
        var options = new DeferOptions
        {
            Queue = settings.Get(_queue),
            Lock = settings.Get(_lock),
            QueueingLock = settings.Get(_queueingLock),
            Priority = settings.GetNullable(_priority),
            ScheduleAt = at,
            ScheduleIn = delay,
            IgnoreAlreadyEnqueued = settings.Get(_ignoreAlreadyEnqueued, false),
        };

        var session = invocation.Session();
        if (!settings.Get(_unknown, false) && session.App.FindTask(taskName) is null)
            throw new CliException(session.UserApp is { } app
                ? $"task '{taskName}' is not registered in {app.Description}; nothing was deferred. Pass --unknown to defer it by name anyway."
                : $"task '{taskName}' is unknown: no app is loaded (--app or PROCRASTINATE_APP); nothing was deferred. Pass --unknown to defer it by name.");

        var id = await session.App.DeferAsync(taskName, json, options, cancellationToken).ConfigureAwait(false);
        invocation.WriteLine(id.ToString(CultureInfo.InvariantCulture));
        return ExitCodes.Ok;
    }
}
