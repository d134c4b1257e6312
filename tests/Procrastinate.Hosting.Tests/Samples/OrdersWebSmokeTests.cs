using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Procrastinate.Hosting.Tests.Support;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Hosting.Tests.Samples;

/// <summary>
/// Starts samples/OrdersWeb in memory on a fresh database without any schema: the app installs
/// it, stores an order with EF Core, defers its confirmation in the same transaction, and its
/// hosted worker confirms the order.
/// </summary>
public sealed class OrdersWebSmokeTests(EmptyDatabaseFixture db) : IClassFixture<EmptyDatabaseFixture>
{
    private sealed record OrderView(long Id, string Customer, decimal Total, bool Confirmed, DateTimeOffset? ConfirmedAt);

    [Fact]
    public async Task An_order_is_stored_confirmed_by_the_hosted_worker_and_the_app_reports_healthy()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web => web
            .UseEnvironment("Development")
            .UseSetting("ConnectionStrings:Procrastinate", db.ConnectionString));
        using var client = factory.CreateClient();

        var created = await client.PostAsJsonAsync("/orders", new { customer = "Ada", total = 42.5m });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var order = (await created.Content.ReadFromJsonAsync<OrderView>(JsonSerializerOptions.Web))!;
        Assert.Equal("Ada", order.Customer);
        Assert.Equal($"/orders/{order.Id}", created.Headers.Location?.OriginalString);

        // The job was committed with the order, on the orders queue.
        Assert.Equal(1L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_confirmation' AND queue_name = 'orders' AND (args->>'order_id')::bigint = $1",
            order.Id));

        var confirmed = await Eventually.WaitAsync(
            async () => (await client.GetFromJsonAsync<OrderView>($"/orders/{order.Id}", JsonSerializerOptions.Web))!,
            o => o.Confirmed, "the order to be confirmed");
        Assert.NotNull(confirmed.ConfirmedAt);

        var health = await Eventually.WaitAsync(
            async () =>
            {
                using var response = await client.GetAsync("/health");
                return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
            },
            r => r.StatusCode == HttpStatusCode.OK, "/health to be Healthy");
        Assert.Equal("Healthy", health.Body);
    }

    [Fact]
    public async Task An_invalid_order_is_refused_and_defers_nothing()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web => web
            .UseSetting("ConnectionStrings:Procrastinate", db.ConnectionString));
        using var client = factory.CreateClient();

        var response = await client.PostAsJsonAsync("/orders", new { customer = "", total = 1 });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/orders/999999")).StatusCode);
    }
}
