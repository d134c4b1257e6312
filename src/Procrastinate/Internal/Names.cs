using System.Text;

namespace Procrastinate.Internal;

/// <summary>Validation of the names that reach the database (COMPAT.md 4.8).</summary>
internal static class Names
{
    public const int MaxQueueBytes = 40;
    public const int MaxTaskNameChars = 128;
    public const int MaxLockBytes = 1024;
    public const string DefaultQueue = "default";

    public static string ValidateQueue(string queue, string paramName = "queue")
    {
        ArgumentNullException.ThrowIfNull(queue, paramName);
        if (queue.Length == 0)
            throw new ArgumentException("A queue name cannot be empty.", paramName);
        var bytes = Encoding.UTF8.GetByteCount(queue);
        if (bytes > MaxQueueBytes)
            throw new ArgumentException(
                $"Queue name '{Truncate(queue)}' is {bytes} bytes long; the limit is {MaxQueueBytes} bytes " +
                "(PostgreSQL channel names are limited to 63 bytes, 23 of which are 'procrastinate_queue_v1#').", paramName);
        RejectControlChars(queue, "Queue name", paramName);
        return queue;
    }

    public static string ValidateTaskName(string name, string paramName = "name")
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        if (name.Length == 0)
            throw new ArgumentException("A task name cannot be empty.", paramName);
        if (name.Length > MaxTaskNameChars)
            throw new ArgumentException(
                $"Task name '{Truncate(name)}' is {name.Length} characters long; the limit is {MaxTaskNameChars}.", paramName);
        RejectControlChars(name, "Task name", paramName);
        return name;
    }

    public static string? ValidateLock(string? value, string what, string paramName)
    {
        if (value is null)
            return null;
        if (value.Length == 0)
            throw new ArgumentException($"A {what} cannot be empty; use null for none.", paramName);
        var bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxLockBytes)
            throw new ArgumentException($"The {what} '{Truncate(value)}' is {bytes} bytes long; the limit is {MaxLockBytes} bytes.", paramName);
        RejectControlChars(value, what, paramName);
        return value;
    }

    /// <summary>Refuses NUL and unpaired surrogates in any text that reaches PostgreSQL.</summary>
    public static string ValidateText(string value, string what, string paramName)
    {
        RejectControlChars(value, what, paramName);
        return value;
    }

    private static void RejectControlChars(string value, string what, string paramName)
    {
        foreach (var c in value)
        {
            if (c == '\0')
                throw new ArgumentException($"{what} '{Truncate(value)}' contains a NUL character.", paramName);
            if (char.IsSurrogate(c) && !IsWellFormed(value))
                throw new ArgumentException($"{what} contains an unpaired surrogate.", paramName);
        }
    }

    private static bool IsWellFormed(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]))
            {
                if (i + 1 >= value.Length || !char.IsLowSurrogate(value[i + 1]))
                    return false;
                i++;
            }
            else if (char.IsLowSurrogate(value[i]))
                return false;
        }
        return true;
    }

    private static string Truncate(string value) => value.Length <= 50 ? value : value[..50] + "…";
}
