namespace Procrastinate;

/// <summary>Base type of every exception this library throws on purpose.</summary>
public class ProcrastinateException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProcrastinateException() { }

    /// <summary>Creates the exception with a message.</summary>
    public ProcrastinateException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public ProcrastinateException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A defer hit a queueing lock: a job with the same <see cref="QueueingLock"/> is already waiting.
/// Nothing was inserted.
/// </summary>
public sealed class AlreadyEnqueuedException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public AlreadyEnqueuedException(string queueingLock, long? existingJobId = null, Exception? innerException = null)
        : base($"Job cannot be enqueued: there is already a job in the queue with the queueing lock {queueingLock}",
            innerException ?? new InvalidOperationException("queueing lock conflict"))
    {
        QueueingLock = queueingLock;
        ExistingJobId = existingJobId;
    }

    /// <summary>The conflicting queueing lock.</summary>
    public string QueueingLock { get; }

    /// <summary>The id of the job already waiting under that lock, when it could be found.</summary>
    public long? ExistingJobId { get; }
}

/// <summary>No task with this name (or alias) is registered in the app.</summary>
public sealed class TaskNotFoundException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public TaskNotFoundException(string taskName)
        : base($"Task '{taskName}' was not found: it is not registered in this app (by name or alias).")
    {
        TaskName = taskName;
    }

    /// <summary>The unknown name.</summary>
    public string TaskName { get; }
}

/// <summary>Thrown by a task to say it stopped because an abort was requested.</summary>
public sealed class JobAbortedException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public JobAbortedException() : base("The job was aborted.") { }

    /// <summary>Creates the exception with a message.</summary>
    public JobAbortedException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public JobAbortedException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The database schema is missing, or is at a level this version does not support.</summary>
public sealed class SchemaException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public SchemaException(string message) : base(message) { }

    /// <summary>Creates the exception with the database error that revealed the problem.</summary>
    public SchemaException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>A PostgreSQL error saying a Procrastinate table or function does not exist, as a SchemaException.</summary>
    internal static SchemaException? FromMissingObject(Exception e) =>
        e is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UndefinedTable or Npgsql.PostgresErrorCodes.UndefinedFunction } pg
            ? new SchemaException(
                $"The Procrastinate schema is missing or incomplete in this database ({pg.MessageText}); apply it with app.Schema.ApplyAsync() or `procrastinate schema --apply`, or check the search_path.",
                pg)
            : null;
}

/// <summary>A database operation failed; the inner exception holds the driver's error.</summary>
public sealed class ConnectorException : ProcrastinateException
{
    /// <summary>Creates the exception.</summary>
    public ConnectorException(string message, Exception innerException) : base(message, innerException) { }
}
