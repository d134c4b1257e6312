using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Procrastinate.Dashboard.Internal;

/// <summary>
/// The standalone dashboard's sign-in: a shared secret presented as <c>Authorization: Bearer</c>, or
/// once as <c>?token=</c>, which is then kept in an HTTP-only, same-site cookie.
/// </summary>
internal static class TokenAuthentication
{
    public const string Scheme = "ProcrastinateDashboardToken";
    public const string Policy = "ProcrastinateDashboardToken";
    public const string CookieName = ".Procrastinate.Dashboard.Token";

    /// <summary>The token, compared in constant time (through hashes, so the length does not leak either).</summary>
    public sealed class Secret(string token)
    {
        private readonly byte[] _hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));

        public bool Matches(string? presented) =>
            presented is not null && CryptographicOperations.FixedTimeEquals(_hash, SHA256.HashData(Encoding.UTF8.GetBytes(presented.Trim())));
    }

    public sealed class Handler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, Secret secret)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            string? presented = null;
            var authorization = Request.Headers.Authorization.ToString();
            if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                presented = authorization["Bearer ".Length..];
            else if (Request.Cookies.TryGetValue(CookieName, out var cookie))
                presented = cookie;
            if (presented is null)
                return Task.FromResult(AuthenticateResult.NoResult());
            if (!secret.Matches(presented))
                return Task.FromResult(AuthenticateResult.Fail("The dashboard token does not match."));
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "token holder")], TokenAuthentication.Scheme);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), TokenAuthentication.Scheme)));
        }

        protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
            WriteRefusalAsync(Context, StatusCodes.Status401Unauthorized);

        protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
            WriteRefusalAsync(Context, StatusCodes.Status403Forbidden);
    }

    /// <summary><c>?token=</c>: a right token sets the cookie and redirects to the same page without it; a wrong one is refused.</summary>
    public sealed class QueryTokenMiddleware(RequestDelegate next, Secret secret)
    {
        public Task InvokeAsync(HttpContext context)
        {
            if (!context.Request.Query.TryGetValue("token", out var values))
                return next(context);
            if (!secret.Matches(values.ToString()))
                return WriteRefusalAsync(context, StatusCodes.Status401Unauthorized);
            context.Response.Cookies.Append(CookieName, values.ToString().Trim(), new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = context.Request.IsHttps,
                Path = "/",
                IsEssential = true,
            });
            // The token leaves the address bar, the history and any Referer.
            var rest = context.Request.Query.Where(q => q.Key != "token")
                .SelectMany(q => q.Value.Select(v => Uri.EscapeDataString(q.Key) + "=" + Uri.EscapeDataString(v ?? "")));
            var query = string.Join('&', rest);
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            context.Response.Headers.Location = context.Request.PathBase + context.Request.Path + (query.Length > 0 ? "?" + query : "");
            context.Response.Headers.CacheControl = "no-store";
            return Task.CompletedTask;
        }
    }

    private static Task WriteRefusalAsync(HttpContext context, int statusCode)
    {
        var response = context.Response;
        response.StatusCode = statusCode;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        response.Headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
        if (statusCode == StatusCodes.Status401Unauthorized)
            response.Headers.WWWAuthenticate = "Bearer realm=\"Procrastinate dashboard\"";
        var message = statusCode == StatusCodes.Status401Unauthorized
            ? "This dashboard needs its token. Open the address printed by <code>procrastinate dashboard</code> (it ends with <code>?token=…</code>), or send <code>Authorization: Bearer &lt;token&gt;</code>."
            : "This token does not allow that.";
        return response.WriteAsync($"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Procrastinate dashboard: token required</title></head>
            <body><h1>{statusCode} · Token required</h1><p>{message}</p></body></html>
            """, context.RequestAborted);
    }
}
