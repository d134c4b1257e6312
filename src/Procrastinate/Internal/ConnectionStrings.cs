using System.Globalization;
using Npgsql;

namespace Procrastinate.Internal;

/// <summary>Builds Npgsql connection strings from URLs and from the environment.</summary>
internal static class ConnectionStrings
{
    public const string DatabaseUrlVariable = "PROCRASTINATE_DATABASE_URL";

    /// <summary>
    /// <c>PROCRASTINATE_DATABASE_URL</c> when set (a <c>postgresql://</c> URL or a keyword string),
    /// else the standard <c>PG*</c> variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGAPPNAME).
    /// </summary>
    public static string FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var url = getEnv(DatabaseUrlVariable);
        if (!string.IsNullOrWhiteSpace(url))
            return Normalize(url);

        var builder = new NpgsqlConnectionStringBuilder();
        if (getEnv("PGHOST") is { Length: > 0 } host) builder.Host = host;
        if (getEnv("PGPORT") is { Length: > 0 } port)
            builder.Port = int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p)
                ? p : throw new ArgumentException($"PGPORT '{port}' is not a port number.");
        if (getEnv("PGUSER") is { Length: > 0 } user) builder.Username = user;
        if (getEnv("PGPASSWORD") is { Length: > 0 } password) builder.Password = password;
        if (getEnv("PGDATABASE") is { Length: > 0 } database) builder.Database = database;
        if (getEnv("PGSSLMODE") is { Length: > 0 } sslMode) builder.SslMode = ParseSslMode(sslMode);
        if (getEnv("PGAPPNAME") is { Length: > 0 } app) builder.ApplicationName = app;
        builder.Host ??= "localhost";
        return builder.ConnectionString;
    }

    /// <summary>Accepts a <c>postgres://</c> or <c>postgresql://</c> URL, or an Npgsql keyword string as is.</summary>
    public static string Normalize(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        value = value.Trim();
        if (!value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            && !value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
            return value;

        // Uri cannot parse an empty host ("postgresql:///db?host=/tmp"), so give it a placeholder.
        var schemeEnd = value.IndexOf("://", StringComparison.Ordinal) + 3;
        var emptyHost = schemeEnd < value.Length && value[schemeEnd] == '/';
        var uri = new Uri(emptyHost ? value.Insert(schemeEnd, "placeholder-host") : value);
        var builder = new NpgsqlConnectionStringBuilder();
        if (!emptyHost) builder.Host = Uri.UnescapeDataString(uri.Host);
        if (uri.Port > 0) builder.Port = uri.Port;
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0) builder.Database = Uri.UnescapeDataString(path);

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var val = kv.Length == 2 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "";
            switch (key.ToLowerInvariant())
            {
                case "host": builder.Host = val; break;
                case "port": builder.Port = int.Parse(val, CultureInfo.InvariantCulture); break;
                case "user": builder.Username = val; break;
                case "password": builder.Password = val; break;
                case "dbname": builder.Database = val; break;
                case "sslmode": builder.SslMode = ParseSslMode(val); break;
                case "application_name": builder.ApplicationName = val; break;
                case "connect_timeout": builder.Timeout = int.Parse(val, CultureInfo.InvariantCulture); break;
                default: builder[key] = val; break;
            }
        }
        builder.Host ??= "localhost";
        return builder.ConnectionString;
    }

    private static SslMode ParseSslMode(string value) => value.ToLowerInvariant() switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => throw new ArgumentException($"Unknown sslmode '{value}'."),
    };
}
