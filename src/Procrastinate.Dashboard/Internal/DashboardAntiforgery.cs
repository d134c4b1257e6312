using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Procrastinate.Dashboard.Internal;

/// <summary>
/// The dashboard's own <see cref="IAntiforgery"/>, so that mounting it takes one call whether or not
/// the host registered antiforgery: built in a private container over the host's data protection
/// (when it has one) and logging, with a cookie of its own.
/// </summary>
internal static class DashboardAntiforgery
{
    public const string CookieName = ".Procrastinate.Dashboard.Antiforgery";
    public const string FormFieldName = "__RequestVerificationToken";

    public static IAntiforgery Create(IServiceProvider host)
    {
        var services = new ServiceCollection();
        services.AddSingleton(host.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        // The host's key ring, when it has one (shared keys across instances behind a load balancer).
        if (host.GetService<IDataProtectionProvider>() is { } dataProtection)
            services.AddSingleton(dataProtection);
        services.AddAntiforgery(options =>
        {
            options.Cookie.Name = CookieName;
            options.Cookie.HttpOnly = true;
            options.Cookie.SameSite = SameSiteMode.Strict;
            options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            options.FormFieldName = FormFieldName;
            options.HeaderName = null;
        });
        var provider = services.BuildServiceProvider();
        host.GetService<IHostApplicationLifetime>()?.ApplicationStopped.Register(provider.Dispose);
        return provider.GetRequiredService<IAntiforgery>();
    }
}
