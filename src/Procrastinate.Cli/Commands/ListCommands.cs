using System.CommandLine;
using System.Globalization;
using Procrastinate.Cli.Internal;

namespace Procrastinate.Cli.Commands;

/// <summary>The filters shared by the listings.</summary>
internal sealed class FilterOptions
{
    public Option<string> Queue { get; } = new("--queue") { Description = "Only this queue.", HelpName = "name" };
    public Option<string> Task { get; } = new("--task") { Description = "Only this task name.", HelpName = "name" };
    public Option<string> Status { get; } = new("--status")
    {
        Description = "Only this status: todo, doing, succeeded, failed, cancelled, aborted.",
        HelpName = "status",
    };
    public Option<string> Lock { get; } = new("--lock") { Description = "Only this lock.", HelpName = "name" };

    public IEnumerable<Option> All => [Queue, Task, Status, Lock];

    public JobFilter Read(Settings settings) => new()
    {
        Queue = settings.Get(Queue),
        Task = settings.Get(Task),
        Status = settings.Get(Status) is { } status ? ParseStatus(status) : null,
        Lock = settings.Get(Lock),
    };

    public static JobStatus ParseStatus(string value)
    {
        try
        {
            return JobStatusExtensions.ParseDbString(value.Trim().ToLowerInvariant());
        }
        catch (ArgumentException)
        {
            throw new CliUsageException($"--status: '{value}' is not a status (todo, doing, succeeded, failed, cancelled, aborted).");
        }
    }
}

/// <summary><c>jobs</c>: lists jobs, oldest first, one page at a time.</summary>
internal sealed class JobsCommand : CliCommand
{
    private readonly FilterOptions _filters = new();
    private readonly Option<long> _id = new("--id") { Description = "Only this job.", HelpName = "id" };
    private readonly Option<string> _queueingLock = new("--queueing-lock") { Description = "Only this queueing lock.", HelpName = "name" };
    private readonly Option<long> _workerId = new("--worker-id") { Description = "Only jobs last claimed by this worker.", HelpName = "id" };
    private readonly Option<int> _limit = new("--limit") { Description = "At most this many jobs (1 to 10000; default 100).", HelpName = "n" };
    private readonly Option<long> _after = new("--after") { Description = "The next page: jobs after this id (before it with --newest-first).", HelpName = "id" };
    private readonly Option<bool> _newestFirst = new("--newest-first") { Description = "Newest jobs first." };
    private readonly Option<bool> _json = JsonOption();

    public override Command Build()
    {
        var command = new Command("jobs", "List jobs, with filters.") { _id };
        foreach (var option in _filters.All)
            command.Options.Add(option);
        foreach (var option in new Option[] { _queueingLock, _workerId, _limit, _after, _newestFirst, _json })
            command.Options.Add(option);
        return command;
    }

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var filter = _filters.Read(settings) with
        {
            Id = settings.GetNullable(_id),
            QueueingLock = settings.Get(_queueingLock),
            WorkerId = settings.GetNullable(_workerId),
        };
        var limit = settings.Get(_limit, 100);
        if (limit is < 1 or > 10_000)
            throw new CliUsageException($"--limit: {limit} is not between 1 and 10000.");
        var page = new JobPage(limit, settings.GetNullable(_after), settings.Get(_newestFirst, false));
        var jobs = await invocation.Session().App.Jobs.ListAsync(filter, page, cancellationToken).ConfigureAwait(false);
        if (settings.Get(_json, false))
            invocation.WriteLine(Output.JobsJson(jobs));
        else if (jobs.Count == 0)
            invocation.WriteLine("No jobs.");
        else
        {
            invocation.Console.Ansi.Write(Output.JobsTable(jobs));
            if (jobs.Count == limit)
                invocation.WriteLine($"{jobs.Count} jobs shown; the next page: --after {jobs[^1].Id.ToString(CultureInfo.InvariantCulture)}");
        }
        return ExitCodes.Ok;
    }
}

/// <summary><c>queues</c>, <c>tasks</c>, <c>locks</c>: job counts per status, grouped.</summary>
internal sealed class CountsCommand(string name) : CliCommand
{
    private readonly FilterOptions _filters = new();
    private readonly Option<bool> _json = JsonOption();

    public override Command Build()
    {
        var what = name switch { "queues" => "queue", "tasks" => "task", _ => "lock" };
        var command = new Command(name, $"Count jobs per {what} and status.");
        foreach (var option in _filters.All)
            command.Options.Add(option);
        command.Options.Add(_json);
        return command;
    }

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var settings = invocation.Settings;
        var filter = _filters.Read(settings);
        var jobs = invocation.Session().App.Jobs;
        var counts = name switch
        {
            "queues" => await jobs.ListQueuesAsync(filter, cancellationToken).ConfigureAwait(false),
            "tasks" => await jobs.ListTasksAsync(filter, cancellationToken).ConfigureAwait(false),
            _ => await jobs.ListLocksAsync(filter, cancellationToken).ConfigureAwait(false),
        };
        if (settings.Get(_json, false))
            invocation.WriteLine(Output.CountsJson(counts));
        else if (counts.Count == 0)
            invocation.WriteLine($"No {name}.");
        else
            invocation.Console.Ansi.Write(Output.CountsTable(name switch { "queues" => "Queue", "tasks" => "Task", _ => "Lock" }, counts));
        return ExitCodes.Ok;
    }
}

/// <summary><c>workers</c>: the rows of <c>procrastinate_workers</c>.</summary>
internal sealed class WorkersCommand : CliCommand
{
    private readonly Option<bool> _json = JsonOption();

    public override Command Build() => new("workers", "List the workers registered in the database (Python's and .NET's).") { _json };

    public override async Task<int> ExecuteAsync(Invocation invocation, CancellationToken cancellationToken)
    {
        var workers = await invocation.Session().App.Jobs.ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        if (invocation.Settings.Get(_json, false))
            invocation.WriteLine(Output.WorkersJson(workers));
        else if (workers.Count == 0)
            invocation.WriteLine("No workers.");
        else
            invocation.Console.Ansi.Write(Output.WorkersTable(workers));
        return ExitCodes.Ok;
    }
}
