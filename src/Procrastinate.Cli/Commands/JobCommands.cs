using System.CommandLine;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary>Shared by the commands that act on one job.</summary>
internal abstract class JobCommand : CliCommand
{
    protected Argument<long> JobId { get; } = new("JOB_ID") { Description = "The job's id." };

    protected static async Task<CliException> NothingMatchedAsync(App app, long id, string action, string requirement, CancellationToken cancellationToken)
    {
        var job = await app.Jobs.GetAsync(id, cancellationToken).ConfigureAwait(false);
        return new CliException(job is null
            ? $"no job #{id}; nothing was {action}."
            : $"job #{id} is {job.Status.ToDbString()}: {requirement}; nothing was {action}.");
    }

    protected static async Task PrintJobAsync(Invocation invocation, App app, long id, CancellationToken cancellationToken)
    {
        if (await app.Jobs.GetAsync(id, cancellationToken).ConfigureAwait(false) is { } job)
            invocation.WriteLine(job.ToString());
    }
}

/// <summary><c>cancel JOB_ID</c>.</summary>
internal sealed class CancelCommand : JobCommand
{
    private readonly Option<bool> _delete = new("--delete") { Description = "Delete the job instead of marking it cancelled." };

    public override Command Build() => new("cancel", "Cancel a waiting (todo) job.") { JobId, _delete };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var id = invocation.Argument(JobId);
        var delete = invocation.Settings.Get(_delete, false);
        var app = invocation.Session().App;
        if (!await app.Jobs.CancelAsync(id, delete: delete, cancellationToken: cancellationToken).ConfigureAwait(false))
            throw await NothingMatchedAsync(app, id, "cancelled", "only a waiting (todo) job can be cancelled; use abort for a running job", cancellationToken).ConfigureAwait(false);
        if (delete)
            invocation.WriteLine($"Job #{id} cancelled and deleted.");
        else
            await PrintJobAsync(invocation, app, id, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Ok;
    }
}

/// <summary><c>abort JOB_ID</c>.</summary>
internal sealed class AbortCommand : JobCommand
{
    public override Command Build() => new("abort", "Ask a running job to stop (a waiting job is cancelled).") { JobId };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var id = invocation.Argument(JobId);
        var app = invocation.Session().App;
        if (!await app.Jobs.AbortAsync(id, cancellationToken).ConfigureAwait(false))
            throw await NothingMatchedAsync(app, id, "aborted", "only a waiting or running job can be aborted", cancellationToken).ConfigureAwait(false);
        // A waiting job is cancelled at once; a running one may already have stopped by now.
        var job = await app.Jobs.GetAsync(id, cancellationToken).ConfigureAwait(false);
        invocation.WriteLine(job switch
        {
            null => $"Job #{id}: abort requested.",
            { Status: JobStatus.Cancelled } => job.ToString(),
            _ => $"#{job.Id} {job.TaskName} on {job.Queue} - abort requested (now {job.Status.ToDbString()})",
        });
        return ExitCodes.Ok;
    }
}

/// <summary><c>retry JOB_ID</c>.</summary>
internal sealed class RetryCommand : JobCommand
{
    private readonly Option<string> _at = new("--at") { Description = "Retry at this ISO-8601 instant, with an offset.", HelpName = "instant" };
    private readonly Option<string> _in = new("--in") { Description = "Retry after this delay (10, 90s, 5m, 1:30:00).", HelpName = "delay" };
    private readonly Option<int> _priority = new("--priority") { Description = "A new priority.", HelpName = "n" };
    private readonly Option<string> _queue = new("--queue") { Description = "A new queue.", HelpName = "name" };
    private readonly Option<string> _lock = new("--lock") { Description = "A new lock.", HelpName = "name" };

    public override Command Build() => new("retry", "Run a failed (or stuck running) job again, now or later.") { JobId, _at, _in, _priority, _queue, _lock };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var id = invocation.Argument(JobId);
        var at = settings.Get(_at) is { } atText ? TimeParsing.ParseInstant(atText, "--at") : (DateTimeOffset?)null;
        var delay = settings.Get(_in) is { } inText ? TimeParsing.ParseDelay(inText, "--in") : (TimeSpan?)null;
        if (at is not null && delay is not null)
            throw new CliUsageException("--at and --in cannot be combined.");
        var app = invocation.Session().App;
        if (delay is { } d)
            at = app.Options.TimeProvider.GetUtcNow() + d;
        try
        {
            await app.Jobs.RetryAsync(id, at, settings.GetNullable(_priority), settings.Get(_queue), settings.Get(_lock), cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new CliException($"job #{id} was not retried: {e.Message}", innerException: e);
        }
        await PrintJobAsync(invocation, app, id, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Ok;
    }
}

/// <summary><c>delete JOB_ID</c>.</summary>
internal sealed class DeleteCommand : JobCommand
{
    public override Command Build() => new("delete", "Delete a job that is not running, with its history.") { JobId };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var id = invocation.Argument(JobId);
        var app = invocation.Session().App;
        if (!await app.Jobs.DeleteAsync(id, cancellationToken).ConfigureAwait(false))
            throw await NothingMatchedAsync(app, id, "deleted", "a running job cannot be deleted; abort it first", cancellationToken).ConfigureAwait(false);
        invocation.WriteLine($"Job #{id} deleted.");
        return ExitCodes.Ok;
    }
}
