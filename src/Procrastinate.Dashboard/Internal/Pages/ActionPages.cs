using System.Globalization;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;

namespace Procrastinate.Dashboard.Internal.Pages;

/// <summary>
/// Actions: a confirmation page (GET) holding a form with an antiforgery token, then the action
/// itself (POST). Both ask the actions policy; the POST also checks the token. Read-only
/// dashboards refuse both with 403.
/// </summary>
internal static class ActionPages
{
    public static IEnumerable<DashboardAction> ApplicableActions(JobStatus status) => status switch
    {
        JobStatus.Todo => [DashboardAction.Cancel, DashboardAction.Delete],
        JobStatus.Doing => [DashboardAction.Abort, DashboardAction.Retry],
        JobStatus.Failed => [DashboardAction.Retry, DashboardAction.Delete],
        _ => [DashboardAction.Delete],
    };

    public static string Name(DashboardAction action) => action.ToString().ToLowerInvariant();

    public static string Verb(DashboardAction action) => action switch
    {
        DashboardAction.Retry => "Retry",
        DashboardAction.Cancel => "Cancel",
        DashboardAction.Abort => "Abort",
        DashboardAction.Delete => "Delete",
        _ => "Rescue",
    };

    private static string Explain(DashboardAction action, Job job) => action switch
    {
        DashboardAction.Retry when job.Status == JobStatus.Doing =>
            "The job is marked running. Retry it only if its worker is gone: it goes back to todo, to run now with one more attempt, even if the old run is still going.",
        DashboardAction.Retry => "The job goes back to todo, to run now with one more attempt, on the same queue, priority and lock.",
        DashboardAction.Cancel => "The job will not run: it becomes cancelled.",
        DashboardAction.Abort => "The worker running the job is asked to stop it; the job becomes aborted when its body honours the cancellation token.",
        DashboardAction.Delete => "The job and its history are deleted for good.",
        _ => "",
    };

    public static async Task ConfirmJobActionAsync(DashboardRequest request, DashboardAction action, CancellationToken cancellationToken)
    {
        if (await CheckJobActionAsync(request, action, cancellationToken).ConfigureAwait(false) is not { } job)
            return;
        var tokens = request.Dashboard.Antiforgery.GetAndStoreTokens(request.Context);
        var verb = Verb(action);
        var danger = action is DashboardAction.Delete or DashboardAction.Abort ? " danger" : "";
        var content = Html.Of($"""
            <section class="panel confirm">
              <p class="job-title"><a href="{request.JobUrl(job.Id)}">#{job.Id}</a> <span class="task-name">{job.TaskName}</span> on <code>{job.Queue}</code> {Format.StatusBadge(job.Status)}</p>
              <p>{Explain(action, job)}</p>
              <form method="post" action="{request.Url($"/jobs/{job.Id}/{Name(action)}")}">
                {TokenField(tokens)}
                <button type="submit" class="button primary{danger}" id="confirm-action">{verb} job #{job.Id}</button>
                <a class="button" href="{request.JobUrl(job.Id)}">Back</a>
              </form>
            </section>
            """);
        await request.WritePageAsync("jobs", $"{verb} job #{job.Id}?", content).ConfigureAwait(false);
    }

    public static async Task PerformJobActionAsync(DashboardRequest request, DashboardAction action, CancellationToken cancellationToken)
    {
        if (await CheckJobActionAsync(request, action, cancellationToken).ConfigureAwait(false) is not { } job)
            return;
        if (!await ValidateTokenAsync(request).ConfigureAwait(false))
            return;
        var jobs = request.App.Jobs;
        string? refusal = null;
        switch (action)
        {
            case DashboardAction.Retry:
                try
                {
                    await jobs.RetryAsync(job.Id, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (InvalidOperationException e)
                {
                    refusal = e.Message;
                }
                break;
            case DashboardAction.Cancel:
                if (!await jobs.CancelAsync(job.Id, cancellationToken: cancellationToken).ConfigureAwait(false))
                    refusal = "The job is no longer waiting: it cannot be cancelled.";
                break;
            case DashboardAction.Abort:
                if (!await jobs.AbortAsync(job.Id, cancellationToken).ConfigureAwait(false))
                    refusal = "The job is no longer running or waiting: it cannot be aborted.";
                break;
            case DashboardAction.Delete:
                if (!await jobs.DeleteAsync(job.Id, cancellationToken).ConfigureAwait(false))
                    refusal = "The job is running or already gone: it was not deleted.";
                break;
        }
        var user = UserName(request.Context);
        if (refusal is not null)
        {
            Log.ActionFailed(request.Dashboard.Logger, Name(action), job.Id, user, refusal);
            await request.WriteErrorAsync(StatusCodes.Status409Conflict, $"{Verb(action)} failed", refusal, request.JobUrl(job.Id)).ConfigureAwait(false);
            return;
        }
        Log.ActionPerformed(request.Dashboard.Logger, Name(action), job.Id, user);
        request.Redirect(action == DashboardAction.Delete
            ? request.Url("/jobs", ("deleted", job.Id.ToString(CultureInfo.InvariantCulture)))
            : request.Url($"/jobs/{job.Id}", ("done", Name(action))));
    }

    /// <summary>Actions are on, the job exists, the action applies to its status, and the policy allows it; otherwise an error page is written.</summary>
    private static async Task<Job?> CheckJobActionAsync(DashboardRequest request, DashboardAction action, CancellationToken cancellationToken)
    {
        if (!await CheckActionsEnabledAsync(request).ConfigureAwait(false))
            return null;
        if (request.RouteId() is not { } id
            || await request.App.Jobs.GetAsync(id, cancellationToken).ConfigureAwait(false) is not { } job)
        {
            await request.WriteErrorAsync(StatusCodes.Status404NotFound, "No such job", "This job does not exist (it may have been deleted).", request.Url("/jobs")).ConfigureAwait(false);
            return null;
        }
        if (!await AuthorizeAsync(request, new DashboardActionResource(action, job)).ConfigureAwait(false))
            return null;
        if (!ApplicableActions(job.Status).Contains(action))
        {
            await request.WriteErrorAsync(StatusCodes.Status409Conflict, $"{Verb(action)} does not apply",
                $"Job #{job.Id} is {job.Status.ToDbString()}: it cannot be {Past(action)}.", request.JobUrl(job.Id)).ConfigureAwait(false);
            return null;
        }
        return job;
    }

    private static string Past(DashboardAction action) => action switch
    {
        DashboardAction.Retry => "retried",
        DashboardAction.Cancel => "cancelled",
        DashboardAction.Abort => "aborted",
        DashboardAction.Delete => "deleted",
        _ => "rescued",
    };

    public static async Task ConfirmRescueAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        if (!await CheckActionsEnabledAsync(request).ConfigureAwait(false)
            || !await AuthorizeAsync(request, new DashboardActionResource(DashboardAction.Rescue, null)).ConfigureAwait(false))
            return;
        var threshold = request.Dashboard.Options.StalledThreshold;
        var stalled = await request.App.Jobs.ListStalledJobsAsync(threshold, cancellationToken: cancellationToken).ConfigureAwait(false);
        var tokens = request.Dashboard.Antiforgery.GetAndStoreTokens(request.Context);
        var content = Html.Of($"""
            <section class="panel confirm">
              <p>{Format.Number(stalled.Count)} running job(s) have a worker whose heartbeat is older than {Format.Duration(threshold)}, or no worker.
                 Rescue them only if those workers are really gone.</p>
              <form method="post" action="{request.Url("/stalled/rescue")}">
                {TokenField(tokens)}
                <fieldset>
                  <label><input type="radio" name="outcome" value="retry" checked> Put them back to todo, to run again</label>
                  <label><input type="radio" name="outcome" value="fail"> Mark them failed</label>
                </fieldset>
                <button type="submit" class="button primary" id="confirm-action">Rescue stalled jobs</button>
                <a class="button" href="{request.Url("/stalled")}">Back</a>
              </form>
            </section>
            """);
        await request.WritePageAsync("stalled", "Rescue stalled jobs?", content).ConfigureAwait(false);
    }

    public static async Task PerformRescueAsync(DashboardRequest request, CancellationToken cancellationToken)
    {
        if (!await CheckActionsEnabledAsync(request).ConfigureAwait(false)
            || !await AuthorizeAsync(request, new DashboardActionResource(DashboardAction.Rescue, null)).ConfigureAwait(false)
            || !await ValidateTokenAsync(request).ConfigureAwait(false))
            return;
        var form = await request.Context.Request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        var fail = form["outcome"] == "fail";
        var rescued = await request.App.Jobs.RescueStalledJobsAsync(request.Dashboard.Options.StalledThreshold, fail, cancellationToken).ConfigureAwait(false);
        Log.RescuePerformed(request.Dashboard.Logger, rescued.Count, fail ? "failed" : "todo", UserName(request.Context));
        request.Redirect(request.Url("/stalled", ("rescued", rescued.Count.ToString(CultureInfo.InvariantCulture))));
    }

    private static async Task<bool> CheckActionsEnabledAsync(DashboardRequest request)
    {
        if (request.Dashboard.ActionsEnabled)
            return true;
        Log.ActionRefused(request.Dashboard.Logger, request.Context.Request.Path, UserName(request.Context), "the dashboard is read-only");
        await request.WriteErrorAsync(StatusCodes.Status403Forbidden, "Read-only dashboard",
            "Actions are off: this dashboard has no actions policy (DashboardOptions.ActionsPolicy).").ConfigureAwait(false);
        return false;
    }

    private static async Task<bool> AuthorizeAsync(DashboardRequest request, DashboardActionResource resource)
    {
        if (await request.Dashboard.CanAsync(request.Context, resource).ConfigureAwait(false))
            return true;
        Log.ActionRefused(request.Dashboard.Logger, request.Context.Request.Path, UserName(request.Context), "the actions policy does not allow it");
        var back = resource.Job is { } job ? request.JobUrl(job.Id) : request.Url("/stalled");
        await request.WriteErrorAsync(StatusCodes.Status403Forbidden, "Not allowed",
            $"You are not allowed to {Name(resource.Action)} {(resource.Job is { } j ? $"job #{j.Id}" : "stalled jobs")}.", back).ConfigureAwait(false);
        return false;
    }

    private static async Task<bool> ValidateTokenAsync(DashboardRequest request)
    {
        try
        {
            await request.Dashboard.Antiforgery.ValidateRequestAsync(request.Context).ConfigureAwait(false);
            return true;
        }
        catch (AntiforgeryValidationException e)
        {
            Log.AntiforgeryRejected(request.Dashboard.Logger, request.Context.Request.Path, UserName(request.Context), e.Message);
            await request.WriteErrorAsync(StatusCodes.Status400BadRequest, "Form expired or forged",
                "This form did not come from this dashboard or has expired: nothing was done. Go back, reload the page and try again.").ConfigureAwait(false);
            return false;
        }
    }

    private static Html TokenField(AntiforgeryTokenSet tokens) =>
        Html.Of($"""<input type="hidden" name="{tokens.FormFieldName}" value="{tokens.RequestToken}">""");

    private static string UserName(HttpContext context) =>
        context.User.Identity is { IsAuthenticated: true, Name: { } name } ? name : "anonymous";
}
