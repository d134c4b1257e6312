using Microsoft.Extensions.Options;

namespace Procrastinate.Hosting.Internal;

/// <summary>Validates worker options with <see cref="WorkerOptions.Validate"/>, at host start (ValidateOnStart).</summary>
internal sealed class ProcrastinateWorkerOptionsValidator : IValidateOptions<ProcrastinateWorkerOptions>
{
    public ValidateOptionsResult Validate(string? name, ProcrastinateWorkerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var worker = options.ToWorkerOptions(name ?? Options.DefaultName, defaultGracefulTimeout: null);
        try
        {
            worker.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail($"Procrastinate worker '{worker.Name}': {e.Message}");
        }
    }
}
