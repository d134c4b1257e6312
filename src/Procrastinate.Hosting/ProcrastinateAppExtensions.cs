namespace Procrastinate.Hosting;

/// <summary>Helpers for apps whose tasks were registered through <see cref="ProcrastinateBuilder"/>.</summary>
public static class ProcrastinateAppExtensions
{
    /// <summary>
    /// The registered task named <paramref name="name"/> (or with that alias), typed by its arguments;
    /// use it for the defer forms that take a transaction, a connection or a <c>DbContext</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No such task is registered, or it takes other arguments.</exception>
    public static JobTask<TArgs> GetTask<TArgs>(this Blueprint blueprint, string name)
    {
        ArgumentNullException.ThrowIfNull(blueprint);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var task = blueprint.FindTask(name)
            ?? throw new InvalidOperationException($"No task named '{name}' is registered.");
        return task as JobTask<TArgs> ?? throw new InvalidOperationException(
            $"Task '{name}' takes {task.ArgsType.FullName} arguments, not {typeof(TArgs).FullName}.");
    }
}
