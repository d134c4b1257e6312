namespace Procrastinate.Internal;

/// <summary>
/// Completes the sync form of an operation. The sync forms call the shared code path with
/// <c>async: false</c>, where every I/O call is Npgsql's synchronous API, so the returned task
/// has already completed; this helper only unwraps it and refuses anything still pending.
/// </summary>
internal static class SyncRunner
{
    public static T Run<T>(ValueTask<T> task)
    {
        if (!task.IsCompleted)
            throw new InvalidOperationException("A synchronous operation did not complete synchronously; this is a bug in Procrastinate.");
        return task.Result;
    }

    public static void Run(ValueTask task)
    {
        if (!task.IsCompleted)
            throw new InvalidOperationException("A synchronous operation did not complete synchronously; this is a bug in Procrastinate.");
        task.GetAwaiter().GetResult();
    }
}
