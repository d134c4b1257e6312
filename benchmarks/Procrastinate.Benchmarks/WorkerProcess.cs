using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Procrastinate.Benchmarks;

/// <summary>
/// A worker child process (this executable in <c>worker</c> mode). Every live one is in a
/// process-wide registry so that the orchestrator kills them on any exit path.
/// </summary>
internal sealed partial class WorkerProcess : IAsyncDisposable
{
    private const int SigTerm = 15;
    private static readonly ConcurrentDictionary<int, Process> Live = new();

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _tail = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _resultFile;

    private WorkerProcess(Process process, string resultFile, long startTimestamp, long startUtcTicks)
    {
        _process = process;
        _resultFile = resultFile;
        StartTimestamp = startTimestamp;
        StartUtcTicks = startUtcTicks;
    }

    /// <summary><see cref="Stopwatch.GetTimestamp"/> just before the process was started.</summary>
    public long StartTimestamp { get; }

    /// <summary><c>DateTime.UtcNow.Ticks</c> just before the process was started.</summary>
    public long StartUtcTicks { get; }

    /// <summary>Stopwatch timestamp of the READY line (the app is built; the worker is about to start).</summary>
    public long ReadyTimestamp { get; private set; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The last /proc sample taken while the process was alive.</summary>
    public ProcessSample? LastSample { get; private set; }

    public string Arguments { get; private set; } = "";

    public static WorkerProcess Start(string connectionString, int concurrency, IReadOnlyList<string> options, bool oneShot, string? logLevel,
        IReadOnlyDictionary<string, string> environment)
    {
        var resultFile = Path.Combine(Path.GetTempPath(), $"procrastinate-bench-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        var info = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
        };
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this executable's path.");
        info.FileName = self;
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            info.ArgumentList.Add(typeof(WorkerProcess).Assembly.Location); // run as "dotnet Procrastinate.Benchmarks.dll"
        var argv = new List<string> { "worker", "--connection", connectionString, "--concurrency", concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture), "--result-file", resultFile };
        if (oneShot)
            argv.Add("--one-shot");
        foreach (var option in options)
        {
            argv.Add("--worker-option");
            argv.Add(option);
        }
        if (logLevel is not null)
        {
            argv.Add("--log-level");
            argv.Add(logLevel);
        }
        foreach (var a in argv)
            info.ArgumentList.Add(a);
        foreach (var (name, value) in environment)
            info.Environment[name] = value;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var startTimestamp = Stopwatch.GetTimestamp();
        var startUtc = DateTime.UtcNow.Ticks;
        var worker = new WorkerProcess(process, resultFile, startTimestamp, startUtc)
        {
            Arguments = string.Join(' ', argv.Where(a => a != connectionString)),
        };
        process.OutputDataReceived += (_, e) => worker.OnLine(e.Data, stdout: true);
        process.ErrorDataReceived += (_, e) => worker.OnLine(e.Data, stdout: false);
        if (!process.Start())
            throw new InvalidOperationException("The worker process did not start.");
        Live[process.Id] = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    private void OnLine(string? line, bool stdout)
    {
        if (line is null)
            return;
        if (stdout && line.StartsWith("READY ", StringComparison.Ordinal))
        {
            ReadyTimestamp = Stopwatch.GetTimestamp();
            _ready.TrySetResult();
        }
        _tail.Enqueue((stdout ? "" : "[stderr] ") + line);
        while (_tail.Count > 60)
            _tail.TryDequeue(out _);
    }

    /// <summary>The last lines the worker printed, for error messages.</summary>
    public string OutputTail => _tail.IsEmpty ? "(no output)" : string.Join("\n  ", _tail);

    /// <summary>Waits for the READY line.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var exited = _process.WaitForExitAsync(cancellationToken);
        var done = await Task.WhenAny(_ready.Task, exited, Task.Delay(timeout, cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
        if (done == _ready.Task)
            return;
        if (done == exited)
            throw new BenchmarkException($"The worker process exited (code {_process.ExitCode}) before it was ready. Output:\n  {OutputTail}");
        throw new BenchmarkException($"The worker process was not ready after {timeout.TotalSeconds:0} s. Output:\n  {OutputTail}");
    }

    /// <summary>Reads /proc/&lt;pid&gt; while the process lives; throws when it died unexpectedly.</summary>
    public void Sample()
    {
        if (_process.HasExited)
            throw new BenchmarkException($"The worker process exited unexpectedly (code {_process.ExitCode}). Output:\n  {OutputTail}");
        if (ProcStats.TryReadProcess(_process.Id) is { } sample)
            LastSample = sample;
    }

    /// <summary>
    /// SIGTERM (a graceful stop), then waits up to <paramref name="timeout"/> for the exit and reads the
    /// worker's result file; kills the process when it does not stop in time.
    /// </summary>
    public async Task<WorkerResult> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            if (ProcStats.TryReadProcess(_process.Id) is { } sample)
                LastSample = sample;
            if (Kill(_process.Id, SigTerm) != 0)
                throw new BenchmarkException($"kill(SIGTERM) on the worker {_process.Id} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        return await WaitForResultAsync(timeout);
    }

    /// <summary>Waits for a worker started with <c>oneShot</c> to exit by itself, then reads its result.</summary>
    public Task<WorkerResult> WaitForExitAsync(TimeSpan timeout) => WaitForResultAsync(timeout);

    private async Task<WorkerResult> WaitForResultAsync(TimeSpan timeout)
    {
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                KillNow();
                throw new BenchmarkException($"The worker did not stop within {timeout.TotalSeconds:0} s; killed it. Output:\n  {OutputTail}");
            }
        }
        Live.TryRemove(_process.Id, out _);
        if (!File.Exists(_resultFile))
            throw new BenchmarkException($"The worker exited (code {_process.ExitCode}) without writing its result. Output:\n  {OutputTail}");
        var result = JsonSerializer.Deserialize<WorkerResult>(await File.ReadAllTextAsync(_resultFile), Json.Compact)
            ?? throw new BenchmarkException("The worker's result file is empty.");
        File.Delete(_resultFile);
        if (result.Error is not null)
            throw new BenchmarkException($"The worker failed: {result.Error}");
        if (_process.ExitCode != 0)
            throw new BenchmarkException($"The worker exited with code {_process.ExitCode}. Output:\n  {OutputTail}");
        return result;
    }

    private void KillNow()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        Live.TryRemove(_process.Id, out _);
    }

    public async ValueTask DisposeAsync()
    {
        KillNow();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // reported by the caller's own failure
        }
        _process.Dispose();
        if (File.Exists(_resultFile))
            File.Delete(_resultFile);
    }

    /// <summary>Kills every worker still running (on exit, failure or Ctrl+C).</summary>
    public static void KillAll()
    {
        foreach (var (pid, process) in Live)
        {
            try
            {
                if (!process.HasExited)
                {
                    Console.Error.WriteLine($"bench: killing worker process {pid}");
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // already gone
            }
            Live.TryRemove(pid, out _);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>A benchmark run failed for a reason worth a clear message (not a bug in the harness).</summary>
internal sealed class BenchmarkException : Exception
{
    public BenchmarkException(string message) : base(message)
    {
    }

    public BenchmarkException(string message, Exception inner) : base(message, inner)
    {
    }

    public BenchmarkException()
    {
    }
}
