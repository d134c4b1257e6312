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

    /// <summary>
    /// Accepts a <c>postgres://</c> or <c>postgresql://</c> URL, or an Npgsql keyword string as is.
    /// URLs follow libpq: <c>postgresql://[user[:password]@][host][:port][,host[:port]…][/dbname][?param=value&amp;…]</c>,
    /// with percent-encoding anywhere, an IPv6 host in brackets, and a Unix socket directory either
    /// percent-encoded as the host (<c>%2Fvar%2Frun%2Fpostgresql</c>) or as <c>?host=/var/run/postgresql</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The URL is malformed; the message says which part.</exception>
    public static string Normalize(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        value = value.Trim();
        var schemeEnd = value.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0 || !(value[..schemeEnd].Equals("postgres", StringComparison.OrdinalIgnoreCase)
                               || value[..schemeEnd].Equals("postgresql", StringComparison.OrdinalIgnoreCase)))
            return value;

        var rest = value[(schemeEnd + 3)..];
        var query = "";
        if (rest.IndexOf('?') is var q and >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }
        var authority = rest;
        string? database = null;
        if (rest.IndexOf('/') is var slash and >= 0)
        {
            authority = rest[..slash];
            database = rest[(slash + 1)..];
        }

        var builder = new NpgsqlConnectionStringBuilder();
        if (authority.LastIndexOf('@') is var at and >= 0)
        {
            var userInfo = authority[..at];
            authority = authority[(at + 1)..];
            var colon = userInfo.IndexOf(':');
            var user = Uri.UnescapeDataString(colon < 0 ? userInfo : userInfo[..colon]);
            if (user.Length > 0) builder.Username = user;
            if (colon >= 0) builder.Password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
        }
        if (authority.Length > 0)
            SetHosts(builder, authority);
        if (!string.IsNullOrEmpty(database))
            builder.Database = Uri.UnescapeDataString(database);

        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var val = kv.Length == 2 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "";
            switch (key.ToLowerInvariant())
            {
                case "host": builder.Host = val; break;
                case "port": builder.Port = ParsePort(val); break;
                case "user": builder.Username = val; break;
                case "password": builder.Password = val; break;
                case "dbname": builder.Database = val; break;
                case "sslmode": builder.SslMode = ParseSslMode(val); break;
                case "application_name": builder.ApplicationName = val; break;
                case "connect_timeout": builder.Timeout = ParseInt(val, "connect_timeout"); break;
                default:
                    try
                    {
                        builder[key] = val;
                    }
                    catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
                    {
                        throw new ArgumentException($"The database URL has an unknown or invalid parameter '{key}': {e.Message}", e);
                    }
                    break;
            }
        }
        builder.Host ??= "localhost";
        return builder.ConnectionString;
    }

    /// <summary>One host, or several separated by commas, each with an optional port (libpq's hostspec).</summary>
    private static void SetHosts(NpgsqlConnectionStringBuilder builder, string hostSpec)
    {
        var hosts = new List<(string Host, int? Port)>();
        foreach (var item in hostSpec.Split(','))
        {
            string host;
            string? port = null;
            if (item.StartsWith('['))
            {
                var close = item.IndexOf(']');
                if (close < 0)
                    throw new ArgumentException($"The database URL has an IPv6 host without its closing bracket: '{item}'.");
                host = item[1..close];
                var after = item[(close + 1)..];
                if (after.Length > 0)
                {
                    if (after[0] != ':')
                        throw new ArgumentException($"The database URL has something after the IPv6 host '{item}' that is not a port.");
                    port = after[1..];
                }
            }
            else
            {
                var colon = item.LastIndexOf(':');
                host = colon < 0 ? item : item[..colon];
                port = colon < 0 ? null : item[(colon + 1)..];
                host = Uri.UnescapeDataString(host);
            }
            hosts.Add((host, string.IsNullOrEmpty(port) ? null : ParsePort(port)));
        }
        if (hosts.Count == 1)
        {
            if (hosts[0].Host.Length > 0) builder.Host = hosts[0].Host;
            if (hosts[0].Port is { } p) builder.Port = p;
            return;
        }
        // Npgsql takes several hosts as "host:port,host:port" (tried in order).
        builder.Host = string.Join(',', hosts.Select(h =>
            (h.Host.Contains(':') ? $"[{h.Host}]" : h.Host) + (h.Port is { } p ? $":{p}" : "")));
    }

    private static int ParsePort(string value)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
            return port;
        throw new ArgumentException($"The database URL's port '{value}' is not a port number.");
    }

    private static int ParseInt(string value, string what) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n : throw new ArgumentException($"The database URL's {what} '{value}' is not a number.");

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
