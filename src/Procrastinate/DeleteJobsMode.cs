namespace Procrastinate;

/// <summary>What a worker does with a job's row once the job has ended (Procrastinate's <c>delete_jobs</c>).</summary>
public enum DeleteJobsMode
{
    /// <summary>Keep every finished job (the default).</summary>
    Never,
    /// <summary>Delete jobs that succeeded; keep the others.</summary>
    Successful,
    /// <summary>Delete every finished job.</summary>
    Always,
}
