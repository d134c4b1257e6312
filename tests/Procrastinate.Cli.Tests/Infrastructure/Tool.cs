using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Cli.Tests.Infrastructure;

/// <summary>What a finished run of the tool printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>How to run the tool: arguments, environment, working directory, standard input.</summary>
public sealed class CliRun
{
    public CliRun(params string[] args) => Args = args;

    public string[] Args { get; }

    /// <summary>Variables to set (a null value removes the variable).</summary>
    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal);

    public string? WorkingDirectory { get; init; }

    public string? Stdin { get; init; }

    /// <summary>The program to run: the tool by default, or the test host (a program calling RunCliAsync).</summary>
    public string Dll { get; init; } = Tool.Dll;
}

/// <summary>Runs the built tool as a separate process, as a user would.</summary>
public static class Tool
{
    private static readonly string Configuration =
        AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string Dll { get; } = Built("src", "Procrastinate.Cli", "Procrastinate.Cli.dll");

    /// <summary>The seed example's app (tests/Procrastinate.Cli.TestApp).</summary>
    public static string TestAppDll { get; } = Built("tests", "Procrastinate.Cli.TestApp", "Procrastinate.Cli.TestApp.dll");

    /// <summary>A dependency of the test app, with no App.</summary>
    public static string TestLibDll { get; } = Path.Combine(Path.GetDirectoryName(TestAppDll)!, "Procrastinate.Cli.TestLib.dll");

    /// <summary>A program hosting the commands with app.RunCliAsync(args); it declares several Apps.</summary>
    public static string TestHostDll { get; } = Built("tests", "Procrastinate.Cli.TestHost", "Procrastinate.Cli.TestHost.dll");

    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(90);

    private static string Built(string folder, string project, string dll)
    {
        var path = Path.Combine(TestCluster.RepositoryRoot, folder, project, "bin", Configuration, "net10.0", dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {folder}/{project} first.", path);
    }

    /// <summary>Runs to completion and returns what it printed.</summary>
    public static async Task<CliResult> RunAsync(string connectionString, CliRun run, TimeSpan? timeout = null)
    {
        await using var process = CliProcess.Start(connectionString, run);
        var exitCode = await process.WaitForExitAsync(timeout ?? DefaultTimeout);
        return new CliResult(exitCode, process.Stdout, process.Stderr);
    }

    /// <summary>Runs <c>procrastinate args...</c> against the database, with no app.</summary>
    public static Task<CliResult> RunAsync(string connectionString, params string[] args) => RunAsync(connectionString, new CliRun(args));

    /// <summary>Runs with PROCRASTINATE_APP set to the test app.</summary>
    public static Task<CliResult> RunWithAppAsync(string connectionString, params string[] args)
    {
        var run = new CliRun(args);
        run.Environment["PROCRASTINATE_APP"] = TestAppDll;
        return RunAsync(connectionString, run);
    }
}

/// <summary>A running tool process; its output is collected as it comes.</summary>
public sealed partial class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _stdoutDone;
    private readonly Task _stderrDone;

    private CliProcess(Process process)
    {
        _process = process;
        _stdoutDone = PumpAsync(process.StandardOutput, _stdout);
        _stderrDone = PumpAsync(process.StandardError, _stderr);
    }

    public string Stdout
    {
        get
        {
            lock (_stdout)
                return _stdout.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
                return _stderr.ToString();
        }
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static CliProcess Start(string connectionString, CliRun run)
    {
        // Through env(1), which resets SIGINT to its default and then runs dotnet in its place (same
        // pid): a test runner started in the background of a non-interactive shell ignores SIGINT,
        // every child inherits that, and .NET then never sees the SIGINT a test sends. A worker
        // started from a terminal has the default.
        var psi = new ProcessStartInfo("env")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = run.WorkingDirectory ?? Directory.GetCurrentDirectory(),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add("--default-signal=INT");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(run.Dll);
        foreach (var arg in run.Args)
            psi.ArgumentList.Add(arg);
        // Nothing from the test runner's environment may steer the tool.
        foreach (var name in psi.Environment.Keys.ToList())
            if (name.StartsWith("PROCRASTINATE_", StringComparison.Ordinal) || name.StartsWith("PG", StringComparison.Ordinal) || name == "SUM_OUTPUT")
                psi.Environment.Remove(name);
        psi.Environment["PROCRASTINATE_DATABASE_URL"] = connectionString;
        foreach (var (name, value) in run.Environment)
        {
            if (value is null)
                psi.Environment.Remove(name);
            else
                psi.Environment[name] = value;
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var cli = new CliProcess(process);
        if (run.Stdin is { } stdin)
            process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        return cli;
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder into)
    {
        var buffer = new char[4096];
        int read;
        while ((read = await reader.ReadAsync(buffer)) > 0)
            lock (into)
                into.Append(buffer, 0, read);
    }

    /// <summary>Waits for the process to end (killing it after <paramref name="timeout"/>) and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The tool did not exit within {timeout}.\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}");
        }
        await Task.WhenAll(_stdoutDone, _stderrDone);
        return _process.ExitCode;
    }

    /// <summary>Polls until <paramref name="condition"/> holds on what the process printed, or fails after <paramref name="timeout"/>.</summary>
    public Task WaitForOutputAsync(Func<CliProcess, bool> condition, TimeSpan timeout, string what) =>
        Eventually.TrueAsync(() => Task.FromResult(condition(this) || HasExited && condition(this)), timeout,
            () => $"{what}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}");

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public const int SIGINT = 2;
    public const int SIGTERM = 15;

    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: {Marshal.GetLastPInvokeError()}");
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

/// <summary>Polls a condition instead of sleeping and hoping.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!await condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
                Assert.Fail($"Timed out after {timeout}: {describe()}");
            await Task.Delay(50);
        }
    }
}
