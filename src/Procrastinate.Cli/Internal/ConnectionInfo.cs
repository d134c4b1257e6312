using Npgsql;

namespace Procrastinate.Cli.Internal;

/// <summary>Describes where a connector connects, for messages, never with the password.</summary>
internal static class ConnectionInfo
{
    /// <summary><c>host:port, database 'db', user 'user'</c>, or null when it cannot be told.</summary>
    public static string? Describe(Connector connector)
    {
        if (connector is not NpgsqlConnector npgsql)
            return null;
        try
        {
            return Describe(new NpgsqlConnectionStringBuilder(npgsql.DataSource.ConnectionString));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or ObjectDisposedException or InvalidOperationException)
        {
            return null;
        }
    }

    public static string Describe(NpgsqlConnectionStringBuilder builder)
    {
        var host = builder.Host ?? "localhost";
        var where = host.StartsWith('/') ? $"socket {host}" : $"{host}:{builder.Port}";
        var database = builder.Database ?? builder.Username;
        var text = database is null ? $"{where}, default database" : $"{where}, database '{database}'";
        return builder.Username is { Length: > 0 } user ? $"{text}, user '{user}'" : text;
    }

    /// <summary>The target of a connection string or URL, as the core reads it (host, port, database, user).</summary>
    public static NpgsqlConnectionStringBuilder Parse(string connectionString)
    {
        using var probe = new NpgsqlConnector(connectionString);
        return new NpgsqlConnectionStringBuilder(probe.DataSource.ConnectionString);
    }

    /// <summary>True when both point to the same database as the same user.</summary>
    public static bool SameTarget(NpgsqlConnectionStringBuilder a, NpgsqlConnectionStringBuilder b) =>
        string.Equals(a.Host ?? "localhost", b.Host ?? "localhost", StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port
        && string.Equals(a.Database ?? a.Username, b.Database ?? b.Username, StringComparison.Ordinal)
        && string.Equals(a.Username, b.Username, StringComparison.Ordinal);

    /// <summary>
    /// The passwords that may appear in the configuration (flag, PROCRASTINATE_DATABASE_URL, PGPASSWORD),
    /// so that no message ever echoes them.
    /// </summary>
    public static IReadOnlyList<string> Secrets(string? connectionString, Func<string, string?> getEnvironmentVariable)
    {
        var secrets = new List<string>();
        foreach (var value in new[] { connectionString, getEnvironmentVariable("PROCRASTINATE_DATABASE_URL") })
            if (value is { Length: > 0 } && PasswordOf(value) is { Length: > 0 } password)
                secrets.Add(password);
        if (getEnvironmentVariable("PGPASSWORD") is { Length: > 0 } pg)
            secrets.Add(pg);
        return secrets;
    }

    private static string? PasswordOf(string value)
    {
        try
        {
            if (value.Contains("://", StringComparison.Ordinal))
            {
                var uri = new Uri(value);
                foreach (var pair in uri.Query.TrimStart('?').Split('&'))
                    if (pair.StartsWith("password=", StringComparison.OrdinalIgnoreCase))
                        return Uri.UnescapeDataString(pair["password=".Length..]);
                var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
                return colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
            return new NpgsqlConnectionStringBuilder(value).Password;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return null;
        }
    }
}
