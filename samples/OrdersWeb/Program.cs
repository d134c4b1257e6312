using Microsoft.EntityFrameworkCore;
using OrdersWeb;
using Procrastinate;
using Procrastinate.EntityFrameworkCore;
using Procrastinate.Hosting;

var builder = WebApplication.CreateBuilder(args);

// Procrastinate connects with ConnectionStrings:Procrastinate, else PROCRASTINATE_DATABASE_URL
// (a postgresql:// URL or a connection string). The worker's settings are in appsettings.json
// (Procrastinate:Worker); it runs inside this web app as a hosted service.
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddProcrastinate(procrastinate => procrastinate
    .AddTask<SendConfirmationArgs, SendConfirmation>(OrderTasks.SendConfirmation, queue: "orders", retry: RetryStrategy.Times(3)));
builder.Services.AddProcrastinateWorker();

// EF Core uses the same database, through Procrastinate's data source (one connection pool).
builder.Services.AddDbContext<OrdersDb>((services, options) =>
    options.UseNpgsql(((NpgsqlConnector)services.GetRequiredService<App>().Connector).DataSource));

builder.Services.AddHealthChecks().AddProcrastinateHealthChecks();

var app = builder.Build();

// Both idempotent: Procrastinate's schema, then the orders table.
await app.Services.GetRequiredService<App>().Schema.ApplyAsync();
await using (var scope = app.Services.CreateAsyncScope())
    await scope.ServiceProvider.GetRequiredService<OrdersDb>().CreateTableAsync();

app.MapPost("/orders", async (NewOrder input, OrdersDb db, App procrastinate, TimeProvider time, CancellationToken cancellationToken) =>
{
    if (string.IsNullOrWhiteSpace(input.Customer) || input.Total <= 0)
        return Results.ValidationProblem(new Dictionary<string, string[]>
        {
            ["order"] = ["An order needs a customer and a positive total."],
        });

    var order = new Order { Customer = input.Customer, Total = input.Total, CreatedAt = time.GetUtcNow() };

    // The order and its confirmation job commit together, or neither exists.
    await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
    db.Orders.Add(order);
    await db.SaveChangesAsync(cancellationToken);
    await procrastinate.GetTask<SendConfirmationArgs>(OrderTasks.SendConfirmation)
        .DeferAsync(new SendConfirmationArgs(order.Id), db, cancellationToken: cancellationToken);
    await transaction.CommitAsync(cancellationToken);

    return Results.Created($"/orders/{order.Id}", order);
});

app.MapGet("/orders/{id:long}", async (long id, OrdersDb db, CancellationToken cancellationToken) =>
    await db.Orders.AsNoTracking().SingleOrDefaultAsync(o => o.Id == id, cancellationToken) is { } order
        ? Results.Ok(order)
        : Results.NotFound());

// "Healthy" when the database has the schema and the worker heartbeats.
app.MapHealthChecks("/health");

await app.RunAsync();

/// <summary>Visible to the tests (WebApplicationFactory&lt;Program&gt;).</summary>
public partial class Program;
