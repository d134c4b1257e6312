namespace Procrastinate.Dashboard;

/// <summary>Settings of a dashboard mounted with <c>MapProcrastinateDashboard</c>.</summary>
/// <remarks>
/// <para>
/// Who may look: the endpoints require <see cref="AuthorizationPolicy"/> when it is set (or any
/// authorization the host adds to the returned builder, such as <c>.RequireAuthorization("Ops")</c>).
/// With neither, the dashboard answers only requests from the machine itself (a loopback address,
/// and no <c>X-Forwarded-For</c> or <c>Forwarded</c> header) and refuses the others with 403.
/// </para>
/// <para>
/// Who may act: nobody unless <see cref="ActionsPolicy"/> is set. Then each action (retry, cancel,
/// abort, delete, rescue) is authorized against that policy, with a <see cref="DashboardActionResource"/>
/// as the resource, goes through a confirmation page, and is refused without a valid antiforgery token.
/// </para>
/// </remarks>
public sealed class DashboardOptions
{
    /// <summary>
    /// The app whose jobs are shown. When null, the <see cref="App"/> registered in the container
    /// (by <c>services.AddProcrastinate()</c>) is used.
    /// </summary>
    public App? App { get; set; }

    /// <summary>
    /// The authorization policy a user must satisfy to see the dashboard. When null (the default),
    /// and the host adds no authorization of its own to the endpoints, only local requests are answered.
    /// Production hosts should set it.
    /// </summary>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>
    /// The authorization policy that allows actions (retry, cancel, abort, delete, rescue). When
    /// null (the default) the dashboard is read-only: no action is offered and every action request
    /// is refused with 403.
    /// </summary>
    public string? ActionsPolicy { get; set; }

    /// <summary>The title shown in the header and the browser tab.</summary>
    public string Title { get; set; } = "Procrastinate";

    /// <summary>
    /// How often an open page refreshes its counts and job list; <see cref="TimeSpan.Zero"/> turns
    /// live refresh off. Default 5 s; at least 1 s.
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A running job is shown as stalled when its worker's heartbeat is older than this (default 30 s, as the workers' default).</summary>
    public TimeSpan StalledThreshold { get; set; } = JobManager.DefaultStalledThreshold;

    /// <summary>Jobs per page in the job list unless the page asks for another size (default 50; 1 to 1,000).</summary>
    public int PageSize { get; set; } = 50;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range or a policy name is blank.</exception>
    public void Validate()
    {
        if (RefreshInterval != TimeSpan.Zero && RefreshInterval < TimeSpan.FromSeconds(1))
            throw new ArgumentException("RefreshInterval must be zero (off) or at least 1 second.", nameof(RefreshInterval));
        if (StalledThreshold <= TimeSpan.Zero)
            throw new ArgumentException("StalledThreshold must be positive.", nameof(StalledThreshold));
        if (PageSize is < 1 or > 1000)
            throw new ArgumentException("PageSize must be between 1 and 1,000.", nameof(PageSize));
        if (AuthorizationPolicy is not null && string.IsNullOrWhiteSpace(AuthorizationPolicy))
            throw new ArgumentException("AuthorizationPolicy is blank; set a policy name or null.", nameof(AuthorizationPolicy));
        if (ActionsPolicy is not null && string.IsNullOrWhiteSpace(ActionsPolicy))
            throw new ArgumentException("ActionsPolicy is blank; set a policy name or null.", nameof(ActionsPolicy));
        if (string.IsNullOrWhiteSpace(Title))
            throw new ArgumentException("Title is empty.", nameof(Title));
    }
}
