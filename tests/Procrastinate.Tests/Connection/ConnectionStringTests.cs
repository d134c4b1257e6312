using Npgsql;
using Procrastinate.Internal;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Connection;

public sealed class ConnectionStringTests
{
    [Fact]
    public void A_url_becomes_an_npgsql_connection_string()
    {
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.Normalize(
            "postgresql://us%40er:p%3Ass@db.example:6543/my_db?sslmode=require&application_name=app"));
        Assert.Equal(("db.example", 6543, "us@er", "p:ss", "my_db", SslMode.Require, "app"),
            (b.Host, b.Port, b.Username, b.Password, b.Database, b.SslMode, b.ApplicationName));
    }

    [Fact]
    public void A_url_may_name_a_unix_socket_directory()
    {
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.Normalize("postgres:///jobs?host=/var/run/postgresql"));
        Assert.Equal(("/var/run/postgresql", "jobs"), (b.Host, b.Database));
    }

    [Theory]
    [InlineData("postgresql://postgres@/jobs?host=/var/tmp/pg&port=54963", "/var/tmp/pg", 54963, "postgres", "jobs")]
    [InlineData("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql:5433/jobs", "/var/run/postgresql", 5433, "postgres", "jobs")]
    [InlineData("postgres://me@[::1]:6000/jobs", "::1", 6000, "me", "jobs")]
    [InlineData("postgresql://me@[2001:db8::7]/jobs", "2001:db8::7", 5432, "me", "jobs")]
    [InlineData("postgresql://me@db1:5432,db2:5433/jobs", "db1:5432,db2:5433", 5432, "me", "jobs")]
    [InlineData("postgresql://me:p%40ss:w@db/j%2Fobs", "db", 5432, "me", "j/obs")]
    public void Urls_take_libpqs_forms(string url, string host, int port, string user, string database)
    {
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.Normalize(url));
        Assert.Equal((host, port, user, database), (b.Host, b.Port, b.Username, b.Database));
    }

    [Fact]
    public void A_password_may_hold_a_colon_and_an_encoded_at_sign()
    {
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.Normalize("postgresql://me:p%40ss:w@db/jobs"));
        Assert.Equal("p@ss:w", b.Password);
    }

    [Theory]
    [InlineData("postgresql://db:abc/jobs", "port 'abc'")]
    [InlineData("postgresql://db:70000/jobs", "port '70000'")]
    [InlineData("postgresql://db/jobs?port=x", "port 'x'")]
    [InlineData("postgresql://[::1/jobs", "closing bracket")]
    [InlineData("postgresql://db/jobs?connect_timeout=soon", "connect_timeout 'soon'")]
    [InlineData("postgresql://db/jobs?no_such_thing=1", "'no_such_thing'")]
    [InlineData("postgresql://db/jobs?sslmode=maybe", "sslmode 'maybe'")]
    public void A_malformed_url_is_reported_by_its_part(string url, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => ConnectionStrings.Normalize(url));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_keyword_connection_string_is_kept_as_is()
    {
        Assert.Equal("Host=h;Database=d", ConnectionStrings.Normalize("Host=h;Database=d"));
    }

    [Fact]
    public void The_database_url_variable_wins_over_PG_variables()
    {
        var env = new Dictionary<string, string>
        {
            ["PROCRASTINATE_DATABASE_URL"] = "postgresql://u@h1/d1",
            ["PGHOST"] = "h2",
        };
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.FromEnvironment(k => env.GetValueOrDefault(k)));
        Assert.Equal(("h1", "d1", "u"), (b.Host, b.Database, b.Username));
    }

    [Fact]
    public void The_standard_PG_variables_are_read()
    {
        var env = new Dictionary<string, string>
        {
            ["PGHOST"] = "pg.local", ["PGPORT"] = "5433", ["PGUSER"] = "me", ["PGPASSWORD"] = "secret",
            ["PGDATABASE"] = "jobs", ["PGSSLMODE"] = "disable", ["PGAPPNAME"] = "worker",
        };
        var b = new NpgsqlConnectionStringBuilder(ConnectionStrings.FromEnvironment(k => env.GetValueOrDefault(k)));
        Assert.Equal(("pg.local", 5433, "me", "secret", "jobs", SslMode.Disable, "worker"),
            (b.Host, b.Port, b.Username, b.Password, b.Database, b.SslMode, b.ApplicationName));
    }

    [Fact]
    public void A_bad_port_is_reported_clearly()
    {
        var e = Assert.Throws<ArgumentException>(() => ConnectionStrings.FromEnvironment(k => k == "PGPORT" ? "abc" : null));
        Assert.Contains("PGPORT", e.Message);
    }

    [Fact]
    public async Task The_connector_reads_the_environment_when_given_nothing()
    {
        var cs = await TestCluster.AdminConnectionStringAsync();
        var url = Environment.GetEnvironmentVariable("PROCRASTINATE_DATABASE_URL");
        Environment.SetEnvironmentVariable("PROCRASTINATE_DATABASE_URL", cs);
        try
        {
            await using var app = new App(new NpgsqlConnector());
            await using (await app.OpenAsync())
            {
            }
            using (app.Open())
            {
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("PROCRASTINATE_DATABASE_URL", url);
        }
    }

    [Fact]
    public async Task Open_reports_an_unreachable_database()
    {
        await using var app = new App(new NpgsqlConnector("Host=127.0.0.1;Port=1;Timeout=2"));
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => app.OpenAsync());
    }

    [Fact]
    public async Task A_data_source_from_the_caller_is_used_and_not_disposed()
    {
        var cs = await TestCluster.AdminConnectionStringAsync();
        await using var ds = NpgsqlDataSource.Create(cs);
        var app = new App(new NpgsqlConnector(ds));
        await app.DisposeAsync();
        await using var cmd = ds.CreateCommand("SELECT 1");
        Assert.Equal(1, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public void The_connector_sets_its_defaults_unless_the_connection_string_sets_them()
    {
        using var connector = new NpgsqlConnector("Host=h;Database=d");
        var b = new NpgsqlConnectionStringBuilder(connector.DataSource.ConnectionString);
        Assert.Equal((32, true, "procrastinate-dotnet", "-c jit=off"), (b.MaxAutoPrepare, b.NoResetOnClose, b.ApplicationName, b.Options));

        using var explicitOnes = new NpgsqlConnector("Host=h;Database=d;No Reset On Close=false;MaxAutoPrepare=5;Application Name=mine;Options=-c work_mem=8MB");
        var e = new NpgsqlConnectionStringBuilder(explicitOnes.DataSource.ConnectionString);
        Assert.Equal((5, false, "mine", "-c work_mem=8MB"), (e.MaxAutoPrepare, e.NoResetOnClose, e.ApplicationName, e.Options));
    }
}
