using System.Text;

namespace Procrastinate.Testing;

/// <summary>A deferred-jobs assertion failed; the message lists what was deferred.</summary>
public sealed class JobAssertionException(string message) : Exception(message);

/// <summary>
/// Assertions on deferred jobs, for tests of code that defers: a job of a task (or of an
/// arguments type) was deferred, with given arguments or options; none was; exactly N were.
/// They read the app's connector, whatever it is.
/// </summary>
public static class JobAssertions
{
    /// <summary>Asserts that at least one job of <paramref name="task"/> matching the predicates was deferred; returns the first.</summary>
    /// <param name="app">The app under test.</param>
    /// <param name="task">The task.</param>
    /// <param name="args">A condition on the arguments, read back from the stored JSON.</param>
    /// <param name="options">Expected queue, priority, lock, queueing lock and schedule (those set are compared).</param>
    /// <exception cref="JobAssertionException">No such job.</exception>
    public static Job AssertDeferred<TArgs>(this App app, JobTask<TArgs> task, Func<TArgs, bool>? args = null, DeferOptions? options = null) =>
        Matching(app, task, args, options) is { Count: > 0 } found
            ? found[0]
            : throw Fail(app, $"Expected a job of task '{task.Name}'{Describe(args, options)} to be deferred, but none was.", task.Name);

    /// <summary>Asserts that exactly <paramref name="count"/> jobs of <paramref name="task"/> match; returns them.</summary>
    /// <exception cref="JobAssertionException">Another number of jobs matched.</exception>
    public static IReadOnlyList<Job> AssertDeferred<TArgs>(this App app, int count, JobTask<TArgs> task, Func<TArgs, bool>? args = null, DeferOptions? options = null)
    {
        var found = Matching(app, task, args, options);
        return found.Count == count
            ? found
            : throw Fail(app, $"Expected {count} job(s) of task '{task.Name}'{Describe(args, options)} to be deferred, but {found.Count} were.", task.Name);
    }

    /// <summary>Asserts that no job of <paramref name="task"/> matching the predicates was deferred.</summary>
    /// <exception cref="JobAssertionException">Such a job exists.</exception>
    public static void AssertNotDeferred<TArgs>(this App app, JobTask<TArgs> task, Func<TArgs, bool>? args = null, DeferOptions? options = null)
    {
        if (Matching(app, task, args, options).Count > 0)
            throw Fail(app, $"Expected no job of task '{task.Name}'{Describe(args, options)} to be deferred, but some were.", task.Name);
    }

    /// <summary>Asserts that a job of any task whose arguments are <typeparamref name="TArgs"/> was deferred; returns the first.</summary>
    /// <exception cref="JobAssertionException">No such job.</exception>
    public static Job AssertDeferred<TArgs>(this App app, Func<TArgs, bool>? args = null, DeferOptions? options = null)
    {
        var tasks = app.Tasks.OfType<JobTask<TArgs>>().ToList();
        if (tasks.Count == 0)
            throw new JobAssertionException($"No task of the app takes {typeof(TArgs).Name} arguments.");
        return tasks.SelectMany(t => Matching(app, t, args, options)).OrderBy(j => j.Id).FirstOrDefault()
            ?? throw Fail(app, $"Expected a job with {typeof(TArgs).Name} arguments{Describe(args, options)} to be deferred, but none was.", null);
    }

    private static List<Job> Matching<TArgs>(App app, JobTask<TArgs> task, Func<TArgs, bool>? args, DeferOptions? options)
    {
        var names = task.Aliases.Prepend(task.Name).ToHashSet(StringComparer.Ordinal);
        return [.. All(app).Where(j => names.Contains(j.TaskName)
            && (args is null || args(task.Deserialize(j.ArgsJson)))
            && Fits(j, options))];
    }

    private static bool Fits(Job job, DeferOptions? o) =>
        o is null
        || ((o.Queue is null || job.Queue == o.Queue)
            && (o.Priority is null || job.Priority == o.Priority)
            && (o.Lock is null || job.Lock == o.Lock)
            && (o.QueueingLock is null || job.QueueingLock == o.QueueingLock)
            && (o.ScheduleAt is null || job.ScheduledAt == o.ScheduleAt));

    private static List<Job> All(App app)
    {
        var jobs = new List<Job>();
        long? after = null;
        while (true)
        {
            var page = app.Jobs.List(page: new JobPage(Limit: 1000, After: after));
            jobs.AddRange(page);
            if (page.Count < 1000)
                return jobs;
            after = page[^1].Id;
        }
    }

    private static string Describe(Delegate? args, DeferOptions? options) =>
        (args is null ? "" : " with matching arguments") + (options is null ? "" : $" and options {options}");

    private static JobAssertionException Fail(App app, string message, string? taskName)
    {
        var text = new StringBuilder(message).AppendLine().Append("Deferred jobs").Append(taskName is null ? "" : $" of '{taskName}'").AppendLine(":");
        var jobs = All(app).Where(j => taskName is null || j.TaskName == taskName).ToList();
        if (jobs.Count == 0)
            text.AppendLine("  (none)");
        foreach (var job in jobs.Take(50))
            text.Append("  ").Append(job).Append(' ').AppendLine(job.ArgsJson);
        return new JobAssertionException(text.ToString());
    }
}
