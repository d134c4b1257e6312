using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Procrastinate.Cli.Internal;

/// <summary>Listings as tables for people and as JSON (Procrastinate's snake_case field names) for scripts.</summary>
internal static class Output
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Json(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
            write(writer);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static string JobsJson(IEnumerable<Job> jobs) => Json(w =>
    {
        w.WriteStartArray();
        foreach (var job in jobs)
        {
            w.WriteStartObject();
            w.WriteNumber("id", job.Id);
            w.WriteString("queue_name", job.Queue);
            w.WriteString("task_name", job.TaskName);
            w.WriteNumber("priority", job.Priority);
            WriteNullable(w, "lock", job.Lock);
            WriteNullable(w, "queueing_lock", job.QueueingLock);
            w.WritePropertyName("args");
            using (var args = JsonDocument.Parse(job.ArgsJson))
                args.WriteTo(w);
            w.WriteString("status", job.Status.ToDbString());
            if (job.ScheduledAt is { } at) w.WriteString("scheduled_at", at.ToUniversalTime()); else w.WriteNull("scheduled_at");
            w.WriteNumber("attempts", job.Attempts);
            w.WriteBoolean("abort_requested", job.AbortRequested);
            if (job.WorkerId is { } worker) w.WriteNumber("worker_id", worker); else w.WriteNull("worker_id");
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    public static string CountsJson(IEnumerable<JobCounts> counts) => Json(w =>
    {
        w.WriteStartArray();
        foreach (var c in counts)
        {
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteNumber("jobs_count", c.JobsCount);
            w.WriteNumber("todo", c.Todo);
            w.WriteNumber("doing", c.Doing);
            w.WriteNumber("succeeded", c.Succeeded);
            w.WriteNumber("failed", c.Failed);
            w.WriteNumber("cancelled", c.Cancelled);
            w.WriteNumber("aborted", c.Aborted);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    public static string WorkersJson(IEnumerable<WorkerRow> workers) => Json(w =>
    {
        w.WriteStartArray();
        foreach (var worker in workers)
        {
            w.WriteStartObject();
            w.WriteNumber("id", worker.Id);
            w.WriteString("last_heartbeat", worker.LastHeartbeat.ToUniversalTime());
            WriteNullable(w, "name", worker.Name);
            WriteNullable(w, "host", worker.Host);
            if (worker.ProcessId is { } pid) w.WriteNumber("pid", pid); else w.WriteNull("pid");
            if (worker.Queues is { } queues)
            {
                w.WriteStartArray("queues");
                foreach (var q in queues)
                    w.WriteStringValue(q);
                w.WriteEndArray();
            }
            else
                w.WriteNull("queues");
            if (worker.Concurrency is { } concurrency) w.WriteNumber("concurrency", concurrency); else w.WriteNull("concurrency");
            if (worker.StartedAt is { } started) w.WriteString("started_at", started.ToUniversalTime()); else w.WriteNull("started_at");
            w.WriteNumber("running_jobs", worker.RunningJobs);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    public static Table JobsTable(IEnumerable<Job> jobs)
    {
        var table = NewTable("Id", "Queue", "Task", "Status", "Priority", "Attempts", "Scheduled at", "Lock", "Queueing lock", "Worker", "Args");
        foreach (var job in jobs)
            table.AddRow(Cells(
                job.Id.ToString(CultureInfo.InvariantCulture), job.Queue, job.TaskName,
                job.Status.ToDbString() + (job.AbortRequested ? " (abort requested)" : ""),
                job.Priority.ToString(CultureInfo.InvariantCulture), job.Attempts.ToString(CultureInfo.InvariantCulture),
                Instant(job.ScheduledAt), job.Lock ?? "", job.QueueingLock ?? "",
                job.WorkerId?.ToString(CultureInfo.InvariantCulture) ?? "", Shorten(job.ArgsJson, 60)));
        return table;
    }

    public static Table CountsTable(string what, IEnumerable<JobCounts> counts)
    {
        var table = NewTable(what, "Jobs", "Todo", "Doing", "Succeeded", "Failed", "Cancelled", "Aborted");
        foreach (var c in counts)
            table.AddRow(Cells(c.Name, N(c.JobsCount), N(c.Todo), N(c.Doing), N(c.Succeeded), N(c.Failed), N(c.Cancelled), N(c.Aborted)));
        return table;
    }

    public static Table WorkersTable(IEnumerable<WorkerRow> workers)
    {
        var table = NewTable("Id", "Name", "Host", "Pid", "Queues", "Concurrency", "Running", "Started at", "Last heartbeat");
        foreach (var w in workers)
            table.AddRow(Cells(
                N(w.Id), w.Name ?? "", w.Host ?? "", w.ProcessId?.ToString(CultureInfo.InvariantCulture) ?? "",
                w.Queues is null ? "" : w.Queues.Count == 0 ? "(all)" : string.Join(", ", w.Queues),
                w.Concurrency?.ToString(CultureInfo.InvariantCulture) ?? "", N(w.RunningJobs), Instant(w.StartedAt), Instant(w.LastHeartbeat)));
        return table;
    }

    public static string Instant(DateTimeOffset? value) =>
        value?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "";

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static Table NewTable(params string[] headers)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var header in headers)
            table.AddColumn(new TableColumn(new Text(header)));
        return table;
    }

    private static IRenderable[] Cells(params string[] values) => [.. values.Select(v => (IRenderable)new Text(v))];

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }
}
