using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Procrastinate.Cli.Internal;
using Spectre.Console;

namespace Procrastinate.Cli.Commands;

/// <summary>
/// Shows a one-shot worker draining its queues: the jobs left (todo and doing in the served queues)
/// and the rate (jobs the worker finished per second). A live bar on a terminal; otherwise a few
/// plain lines on stderr, so stdout stays clean for scripts.
/// </summary>
internal static partial class WorkerProgress
{
    private static readonly TimeSpan TerminalInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(2);

    public static async Task ShowAsync(CliConsole console, App app, WorkerOptions options, JobCounter counter, Task run, ILogger logger,
        CancellationToken cancellationToken)
    {
        var sampler = new Sampler(app, options, counter, logger);
        var scope = options.Queues is { Count: > 0 } queues ? string.Join(", ", queues) : "all queues";
        if (console.OutputIsTerminal && console.Ansi.Profile.Capabilities.Interactive)
            await ShowLiveAsync(console.Ansi, sampler, scope, run, cancellationToken).ConfigureAwait(false);
        else
            await ShowPlainAsync(console.Error, sampler, scope, run, cancellationToken).ConfigureAwait(false);
    }

    private static async Task ShowLiveAsync(IAnsiConsole ansi, Sampler sampler, string scope, Task run, CancellationToken cancellationToken)
    {
        await ansi.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var first = await sampler.SampleAsync(cancellationToken).ConfigureAwait(false);
                var task = context.AddTask(Markup.Escape($"{scope}: {Left(first.Left)} left"), maxValue: Math.Max(1, first.Left ?? 1));
                while (true)
                {
                    var finished = await Task.WhenAny(run, Task.Delay(TerminalInterval, CancellationToken.None)).ConfigureAwait(false) == run;
                    var sample = await sampler.SampleAsync(cancellationToken).ConfigureAwait(false);
                    task.MaxValue = Math.Max(1, sample.Completed + (sample.Left ?? 0));
                    task.Value = sample.Completed;
                    task.Description = Markup.Escape($"{scope}: {Left(sample.Left)} left, {sample.Completed} done, {Rate(sample)} jobs/s");
                    if (finished)
                        break;
                }
                task.StopTask();
            }).ConfigureAwait(false);
    }

    private static async Task ShowPlainAsync(TextWriter error, Sampler sampler, string scope, Task run, CancellationToken cancellationToken)
    {
        var first = await sampler.SampleAsync(cancellationToken).ConfigureAwait(false);
        if (first.Left is not null)
            await error.WriteLineAsync($"progress: {Left(first.Left)} job(s) left in {scope}").ConfigureAwait(false);
        while (await Task.WhenAny(run, Task.Delay(PlainInterval, CancellationToken.None)).ConfigureAwait(false) != run)
        {
            var sample = await sampler.SampleAsync(cancellationToken).ConfigureAwait(false);
            await error.WriteLineAsync($"progress: {Left(sample.Left)} job(s) left, {sample.Completed} done, {Rate(sample)} jobs/s").ConfigureAwait(false);
        }
        if (run.IsFaulted)
            return;   // the worker's error is what matters; it is reported next
        var last = await sampler.SampleAsync(cancellationToken).ConfigureAwait(false);
        await error.WriteLineAsync(
            $"progress: done: {last.Completed} job(s) in {last.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s ({Rate(last)} jobs/s), {Left(last.Left)} left in {scope}")
            .ConfigureAwait(false);
    }

    private static string Left(long? left) => left?.ToString(CultureInfo.InvariantCulture) ?? "?";

    private static string Rate(Sample sample) =>
        (sample.Elapsed.TotalSeconds > 0 ? sample.Completed / sample.Elapsed.TotalSeconds : 0).ToString("F1", CultureInfo.InvariantCulture);

    private readonly record struct Sample(long? Left, long Completed, TimeSpan Elapsed);

    private sealed partial class Sampler(App app, WorkerOptions options, JobCounter counter, ILogger logger)
    {
        private readonly long _started = Stopwatch.GetTimestamp();

        public async Task<Sample> SampleAsync(CancellationToken cancellationToken)
        {
            long? left;
            try
            {
                var counts = await app.Jobs.ListQueuesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                left = counts.Where(c => options.Queues is not { Count: > 0 } served || served.Contains(c.Name)).Sum(c => c.Todo + c.Doing);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The count is informative only; the worker reports database failures itself.
                LogCountFailed(logger, e);
                left = null;
            }
            return new Sample(left, counter.Completed, Stopwatch.GetElapsedTime(_started));
        }

        [LoggerMessage(3, LogLevel.Debug, "Could not count the jobs left")]
        private static partial void LogCountFailed(ILogger logger, Exception exception);
    }
}

/// <summary>Counts the jobs a worker has run (whatever their outcome), as its outermost middleware.</summary>
internal sealed class JobCounter : IJobMiddleware
{
    private long _completed;

    public long Completed => Interlocked.Read(ref _completed);

    public async Task InvokeAsync(JobContext context, JobDelegate next)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Increment(ref _completed);
        }
    }
}
