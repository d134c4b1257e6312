using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Procrastinate.Dashboard.Internal;

namespace Procrastinate.Dashboard.Tests;

/// <summary>Who may see the dashboard, the headers every page carries, and what mounting checks.</summary>
public sealed class SecurityTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Without_a_policy_only_local_requests_are_answered()
    {
        await using var host = await DashboardHost.StartAsync(db.ConnectionString);
        using var http = new HttpClient();

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(host.Dashboard)).StatusCode);
        using var proxied = new HttpRequestMessage(HttpMethod.Get, host.Dashboard + "/jobs") { Headers = { { "X-Forwarded-For", "203.0.113.9" } } };
        var response = await http.SendAsync(proxied);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("Local requests only", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("10.1.2.3", false)]
    [InlineData("192.168.1.20", false)]
    [InlineData("2001:db8::1", false)]
    public void Local_means_a_loopback_peer(string address, bool local)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(address);
        Assert.Equal(local, Dashboard.Internal.Dashboard.IsLocal(context));
        Assert.Equal(local, Dashboard.Internal.Dashboard.IsAllowedWithoutPolicy(context));
    }

    [Fact]
    public void A_request_without_a_peer_address_is_not_local() =>
        Assert.False(Dashboard.Internal.Dashboard.IsLocal(new DefaultHttpContext()));

    [Fact]
    public async Task A_policy_added_by_the_host_replaces_the_local_only_rule()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddProcrastinate(db.ConnectionString);
        builder.Services.AddAuthorization(o => o.AddPolicy("Anyone", p => p.RequireAssertion(_ => true)));
        await using var web = builder.Build();
        web.MapProcrastinateDashboard("/jobs-dashboard").RequireAuthorization("Anyone");
        await web.StartAsync();
        using var http = new HttpClient();
        using var proxied = new HttpRequestMessage(HttpMethod.Get, web.Urls.First() + "/jobs-dashboard/queues") { Headers = { { "X-Forwarded-For", "203.0.113.9" } } };

        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(proxied)).StatusCode);
        await web.StopAsync();
    }

    [Fact]
    public async Task Pages_forbid_framing_inline_scripts_and_outside_resources()
    {
        await using var host = await DashboardHost.StartAsync(db.ConnectionString);
        using var http = new HttpClient();

        var response = await http.GetAsync(host.Dashboard + "/workers");
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", csp);
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        var html = await response.Content.ReadAsStringAsync();
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html);
    }

    [Fact]
    public async Task Assets_are_embedded_cached_by_version_and_revalidated()
    {
        await using var host = await DashboardHost.StartAsync(db.ConnectionString);
        using var http = new HttpClient();

        var css = await http.GetAsync(host.Dashboard + "/assets/dashboard.css?v=" + Assets.Version);
        Assert.Equal("text/css", css.Content.Headers.ContentType!.MediaType);
        Assert.Contains("immutable", css.Headers.CacheControl!.ToString());
        var js = await http.GetAsync(host.Dashboard + "/assets/dashboard.js");
        Assert.Equal("text/javascript", js.Content.Headers.ContentType!.MediaType);
        using var again = new HttpRequestMessage(HttpMethod.Get, host.Dashboard + "/assets/dashboard.js");
        again.Headers.IfNoneMatch.Add(js.Headers.ETag!);
        Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(again)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(host.Dashboard + "/assets/nothing.js")).StatusCode);
    }

    [Fact]
    public void Mounting_needs_an_app()
    {
        var web = WebApplication.CreateBuilder().Build();
        var error = Assert.Throws<InvalidOperationException>(() => web.MapProcrastinateDashboard());
        Assert.Contains("AddProcrastinate", error.Message);
    }

    [Fact]
    public async Task Mounting_with_a_policy_needs_authorization_services()
    {
        var builder = WebApplication.CreateBuilder();
        await using var app = db.CreateApp();
        var web = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => web.MapProcrastinateDashboard("/p", o =>
        {
            o.App = app;
            o.ActionsPolicy = "Operators";
        }));
        Assert.Contains("AddAuthorization", error.Message);
    }

    [Fact]
    public void Mounting_refuses_route_parameters_and_bad_settings()
    {
        var web = WebApplication.CreateBuilder().Build();
        using var app = db.CreateApp();
        Assert.Throws<ArgumentException>(() => web.MapProcrastinateDashboard("/{tenant}/jobs", o => o.App = app));
        Assert.Throws<ArgumentException>(() => web.MapProcrastinateDashboard("/p", o => { o.App = app; o.RefreshInterval = TimeSpan.FromMilliseconds(10); }));
        Assert.Throws<ArgumentException>(() => web.MapProcrastinateDashboard("/p", o => { o.App = app; o.ActionsPolicy = " "; }));
        Assert.Throws<ArgumentException>(() => web.MapProcrastinateDashboard("/p", o => { o.App = app; o.PageSize = 0; }));
    }
}
