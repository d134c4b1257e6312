using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Procrastinate.Tests.Infrastructure;

/// <summary>A worker running as a real child process (tests/Procrastinate.TestWorker), so signals and kills are real.</summary>
public sealed partial class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private WorkerProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

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
            _output.AppendLine(line);
        if (line.StartsWith("READY", StringComparison.Ordinal))
            _ready.TrySetResult();
    }

    public static async Task<WorkerProcess> StartAsync(string connectionString, params string[] settings)
    {
        var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(TestCluster.RepositoryRoot, "tests", "Procrastinate.TestWorker", "bin", config, "net10.0", "Procrastinate.TestWorker.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException("Build tests/Procrastinate.TestWorker first.", dll);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(connectionString);
        foreach (var s in settings)
            psi.ArgumentList.Add(s);
        var worker = new WorkerProcess(Process.Start(psi)!);
        await worker._ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return worker;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: {Marshal.GetLastPInvokeError()}");
    }

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
