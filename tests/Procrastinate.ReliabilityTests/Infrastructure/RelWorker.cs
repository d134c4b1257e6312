using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Procrastinate.Reliability.Infrastructure;

/// <summary>
/// A worker running as a real child process (tests/Procrastinate.ReliabilityWorker), so that
/// SIGKILL, SIGSTOP, SIGTERM and crashes are real.
/// </summary>
public sealed partial class RelWorker : IAsyncDisposable
{
    private const int MaxOutput = 256 * 1024;
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RelWorker(Process process, string[] settings)
    {
        _process = process;
        Settings = settings;
        StartedAt = DateTime.UtcNow;
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid { get; private set; }

    public string[] Settings { get; }

    public DateTime StartedAt { get; }

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>What the process printed (the last 256 KB).</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            _output.AppendLine(line);
            if (_output.Length > MaxOutput)
                _output.Remove(0, _output.Length - MaxOutput);
        }
        if (line.StartsWith("READY", StringComparison.Ordinal))
            _ready.TrySetResult();
    }

    public static string DllPath
    {
        get
        {
            var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Path.Combine(ReliabilityCluster.RepositoryRoot, "tests", "Procrastinate.ReliabilityWorker", "bin", config, "net10.0",
                "Procrastinate.ReliabilityWorker.dll");
        }
    }

    /// <summary>Starts a worker and waits until its program runs (not until it has registered).</summary>
    public static async Task<RelWorker> StartAsync(string connectionString, params string[] settings)
    {
        var dll = DllPath;
        if (!File.Exists(dll))
            throw new FileNotFoundException("Build tests/Procrastinate.ReliabilityWorker first.", dll);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(connectionString);
        foreach (var s in settings)
            psi.ArgumentList.Add(s);
        // Keep each worker light: the suite runs several on a small machine.
        psi.Environment["DOTNET_TieredPGO"] = "0";
        psi.Environment["DOTNET_gcServer"] = "0";
        var worker = new RelWorker(Process.Start(psi)!, settings);
        worker.Pid = worker._process.Id;
        try
        {
            await worker._ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Worker {worker.Pid} did not start: {worker.Output}");
        }
        return worker;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: {Marshal.GetLastPInvokeError()}");
    }

    public async Task KillAsync()
    {
        Signal(SIGKILL);
        await WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>SIGTERM, then waits for the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        Signal(SIGTERM);
        return await WaitForExitAsync(timeout);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Worker {Pid} did not exit within {timeout}: {Tail(4000)}");
        }
        return _process.ExitCode;
    }

    public string Tail(int chars)
    {
        var output = Output;
        return output.Length <= chars ? output : output[^chars..];
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                Signal(SIGCONT);
            }
            catch (InvalidOperationException)
            {
            }
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
