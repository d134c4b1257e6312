using Microsoft.Extensions.DependencyInjection;

namespace Procrastinate.Dashboard.Tests;

/// <summary>
/// Actions in Chromium: allowed ones go through a confirmation page and change the job; forbidden
/// ones are refused with 403 and change nothing; a POST without the antiforgery token is refused.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ActionTests(BrowserFixture browser, DatabaseFixture db) : BrowserTest(browser, db), IClassFixture<DatabaseFixture>
{
    private static void Operators(DashboardOptions o)
    {
        o.AuthorizationPolicy = DashboardHost.ViewersPolicy;
        o.ActionsPolicy = DashboardHost.OperatorsPolicy;
    }

    [Fact]
    public async Task An_operator_retries_a_failed_job_after_confirming()
    {
        var host = await StartHostAsync(Operators);
        var app = host.Services.GetRequiredService<App>();
        var id = await FailedJobAsync(app);
        var session = await SessionAsync(host, "operator");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/jobs/{id}");
        await page.ClickAsync("[data-action=retry]");
        Assert.Equal($"Retry job #{id}?", await page.InnerTextAsync("h1"));
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(id));   // nothing happens before the confirmation
        await Screenshots.SaveAsync(page, "confirm-retry");
        await page.ClickAsync("#confirm-action");

        Assert.EndsWith($"/procrastinate/jobs/{id}?done=retry", page.Url);
        Assert.Contains("Retried", await page.InnerTextAsync(".notice.ok"));
        Assert.Equal("todo", await page.InnerTextAsync(".job-title .badge"));
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
        Assert.Empty(session.Errors);
    }

    [Fact]
    public async Task A_viewer_is_refused_every_action_and_nothing_changes()
    {
        var host = await StartHostAsync(Operators);
        var app = host.Services.GetRequiredService<App>();
        var id = await FailedJobAsync(app);
        var session = await SessionAsync(host, "viewer");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/jobs/{id}");
        Assert.Equal(0, await page.Locator("[data-action]").CountAsync());
        var response = await page.GotoAsync($"{host.Dashboard}/jobs/{id}/retry");
        Assert.Equal(403, response!.Status);
        Assert.Equal("Not allowed", await page.InnerTextAsync("h1"));

        // The form was shown to an operator; the one who submits it is a viewer: the POST itself is refused.
        await SignInAsync(session, host, "operator");
        await page.GotoAsync($"{host.Dashboard}/jobs/{id}/retry");
        await SignInAsync(session, host, "viewer");
        var post = await page.RunAndWaitForResponseAsync(() => page.ClickAsync("#confirm-action"), r => r.Request.Method == "POST");
        Assert.Equal(403, post.Status);
        Assert.Equal("Not allowed", await page.InnerTextAsync("h1"));
        await Screenshots.SaveAsync(page, "forbidden");
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(id));
        Assert.Equal(1, await Db.ScalarAsync<int>("SELECT attempts FROM procrastinate_jobs WHERE id = $1", id));
    }

    [Fact]
    public async Task Without_an_actions_policy_the_dashboard_is_read_only()
    {
        var host = await StartHostAsync(o => o.AuthorizationPolicy = DashboardHost.ViewersPolicy);
        var app = host.Services.GetRequiredService<App>();
        var id = await FailedJobAsync(app);
        var session = await SessionAsync(host, "operator");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/jobs/{id}");
        Assert.Contains("Read-only dashboard.", await page.InnerTextAsync(".job-head"));
        Assert.Equal(0, await page.Locator("[data-action]").CountAsync());
        var response = await page.GotoAsync($"{host.Dashboard}/jobs/{id}/delete");
        Assert.Equal(403, response!.Status);
        Assert.Equal("Read-only dashboard", await page.InnerTextAsync("h1"));
        var status = await page.EvaluateAsync<int>($"() => fetch('{host.Dashboard}/jobs/{id}/delete', {{ method: 'POST' }}).then(r => r.status)");
        Assert.Equal(403, status);
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(id));
    }

    [Fact]
    public async Task A_post_without_a_valid_antiforgery_token_is_refused()
    {
        var host = await StartHostAsync(Operators);
        var app = host.Services.GetRequiredService<App>();
        var id = await FailedJobAsync(app);
        var session = await SessionAsync(host, "operator");
        var page = session.Page;
        await page.GotoAsync($"{host.Dashboard}/jobs/{id}/retry");   // the antiforgery cookie is set

        var withoutToken = await page.EvaluateAsync<int>(
            $"() => fetch('{host.Dashboard}/jobs/{id}/retry', {{ method: 'POST', body: new URLSearchParams({{ outcome: 'x' }}) }}).then(r => r.status)");
        var forgedToken = await page.EvaluateAsync<int>(
            $"() => fetch('{host.Dashboard}/jobs/{id}/retry', {{ method: 'POST', body: new URLSearchParams({{ __RequestVerificationToken: 'forged' }}) }}).then(r => r.status)");

        Assert.Equal(400, withoutToken);
        Assert.Equal(400, forgedToken);
        Assert.Equal(JobStatus.Failed, await app.Jobs.GetStatusAsync(id));
        // The genuine form still works.
        await page.ClickAsync("#confirm-action");
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
    }

    [Fact]
    public async Task A_resource_based_policy_allows_some_actions_only()
    {
        var host = await StartHostAsync(o => o.ActionsPolicy = DashboardHost.NoDeletesPolicy);
        var app = host.Services.GetRequiredService<App>();
        var id = await FailedJobAsync(app);
        var session = await SessionAsync(host, "operator");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/jobs/{id}");
        Assert.Equal(["retry"], await page.Locator("[data-action]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.action)"));
        Assert.Equal(403, (await page.GotoAsync($"{host.Dashboard}/jobs/{id}/delete"))!.Status);
        Assert.NotNull(await app.Jobs.GetAsync(id));
    }

    [Fact]
    public async Task An_operator_cancels_a_waiting_job_then_deletes_it()
    {
        var host = await StartHostAsync(Operators);
        var app = host.Services.GetRequiredService<App>();
        var id = await app.DeferAsync("emails.send_welcome", """{"to": "ada@example.com"}""");
        var session = await SessionAsync(host, "operator");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/jobs/{id}");
        await page.ClickAsync("[data-action=cancel]");
        await page.ClickAsync("#confirm-action");
        Assert.Equal("cancelled", await page.InnerTextAsync(".job-title .badge"));
        Assert.Equal(JobStatus.Cancelled, await app.Jobs.GetStatusAsync(id));

        await page.ClickAsync("[data-action=delete]");
        await page.ClickAsync("#confirm-action");
        Assert.EndsWith($"/procrastinate/jobs?deleted={id}", page.Url);
        Assert.Contains($"Job #{id} deleted.", await page.InnerTextAsync(".notice.ok"));
        Assert.Null(await app.Jobs.GetAsync(id));
        Assert.Equal(404, (await page.GotoAsync($"{host.Dashboard}/jobs/{id}"))!.Status);
    }

    [Fact]
    public async Task An_operator_rescues_stalled_jobs()
    {
        var host = await StartHostAsync(Operators);
        var app = host.Services.GetRequiredService<App>();
        var id = await app.DeferAsync("emails.send_welcome", """{"to": "ada@example.com"}""");
        var dead = await Db.ScalarAsync<long>("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id");
        await Db.ExecAsync("UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE id = $2", dead, id);
        await Db.ExecAsync("UPDATE procrastinate_events SET at = now() - interval '1 hour' WHERE job_id = $1", id);
        var session = await SessionAsync(host, "operator");
        var page = session.Page;

        await page.GotoAsync($"{host.Dashboard}/stalled");
        Assert.Equal(1, await page.Locator($"tr[data-job-id='{id}']").CountAsync());
        await page.ClickAsync("[data-action=rescue]");
        await page.ClickAsync("#confirm-action");

        Assert.Contains("1 stalled job(s) rescued.", await page.InnerTextAsync(".notice.ok"));
        Assert.Equal(JobStatus.Todo, await app.Jobs.GetStatusAsync(id));
    }
}
