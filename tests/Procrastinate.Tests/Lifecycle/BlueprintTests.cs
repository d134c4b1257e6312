using System.Collections.Concurrent;
using Procrastinate.Tests.Infrastructure;

namespace Procrastinate.Tests.Lifecycle;

public sealed class BlueprintTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => db.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly WorkerOptions OneShot = new() { Wait = false, HandleSignals = false, ListenNotify = false };

    private sealed record MailArgs(string To);

    private Task<string> Status(long id) => db.ScalarAsync<string>("SELECT status::text FROM procrastinate_jobs WHERE id = $1", id);

    private Task<string> StoredTaskName(long id) => db.ScalarAsync<string>("SELECT task_name FROM procrastinate_jobs WHERE id = $1", id);

    // ---- Namespaces -----------------------------------------------------------------------------

    [Fact]
    public async Task A_blueprint_task_gets_the_namespace_and_runs_under_that_stored_name()
    {
        await using var app = db.CreateApp();
        var received = new ConcurrentQueue<(string To, string TaskName)>();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", (a, context) => received.Enqueue((a.To, context.Job.TaskName)));
        Assert.Equal("send", send.Name);

        app.AddBlueprint(bp, "mail");

        Assert.Equal("mail:send", send.Name);
        Assert.Same(send, app.FindTask("mail:send"));
        Assert.Null(app.FindTask("send"));
        Assert.Same(app, send.App);
        var id = await send.DeferAsync(new MailArgs("a@example.com"));
        var syncId = send.Defer(new MailArgs("b@example.com"));
        Assert.Equal("mail:send", await StoredTaskName(id));
        Assert.Equal("mail:send", await StoredTaskName(syncId));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal([("a@example.com", "mail:send"), ("b@example.com", "mail:send")], received);
        Assert.Equal("succeeded", await Status(id));
        Assert.Equal("succeeded", await Status(syncId));
    }

    [Fact]
    public async Task A_blueprint_task_keeps_its_defaults_once_added()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { }, queue: "mails", priority: 3, @lock: "smtp");
        app.AddBlueprint(bp, "mail");

        var id = await send.DeferAsync(new MailArgs("x"));

        var row = Assert.Single(await db.QueryAsync("SELECT queue_name, priority, lock, task_name FROM procrastinate_jobs WHERE id = $1", id));
        Assert.Equal("mails", row["queue_name"]);
        Assert.Equal(3, row["priority"]);
        Assert.Equal("smtp", row["lock"]);
        Assert.Equal("mail:send", row["task_name"]);
    }

    [Fact]
    public async Task A_blueprint_task_cannot_be_deferred_before_its_blueprint_is_added_to_an_app()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { });

        var sync = Assert.Throws<InvalidOperationException>(() => send.Defer(new MailArgs("x")));
        var asyncError = await Assert.ThrowsAsync<InvalidOperationException>(() => send.DeferAsync(new MailArgs("x")));
        var many = await Assert.ThrowsAsync<InvalidOperationException>(() => send.DeferManyAsync([new MailArgs("x")]));
        var appAccess = Assert.Throws<InvalidOperationException>(() => send.App);

        foreach (var e in new[] { sync, asyncError, many, appAccess })
            Assert.Contains("blueprint", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM procrastinate_jobs"));

        app.AddBlueprint(bp, "mail");
        var id = await send.DeferAsync(new MailArgs("x"));
        Assert.Equal("mail:send", await StoredTaskName(id));
    }

    [Fact]
    public async Task Nested_blueprints_stack_their_namespaces_on_names_and_aliases()
    {
        await using var app = db.CreateApp();
        var received = new ConcurrentQueue<(string To, string TaskName)>();
        var inner = new Blueprint();
        var task = inner.Task<MailArgs>("name", (a, context) => received.Enqueue((a.To, context.Job.TaskName)), aliases: ["old"]);
        var outer = new Blueprint();
        outer.AddBlueprint(inner, "b");

        Assert.Equal("b:name", task.Name);
        Assert.Equal(["b:old"], task.Aliases);

        app.AddBlueprint(outer, "a");

        Assert.Equal("a:b:name", task.Name);
        Assert.Equal(["a:b:old"], task.Aliases);
        Assert.Same(task, app.FindTask("a:b:name"));
        Assert.Same(task, app.FindTask("a:b:old"));
        Assert.Null(app.FindTask("b:name"));
        Assert.Null(app.FindTask("old"));
        Assert.Same(app, task.App);

        var byName = await task.DeferAsync(new MailArgs("new"));
        var byAlias = await app.DeferAsync("a:b:old", """{"to": "legacy"}""");
        Assert.Equal("a:b:name", await StoredTaskName(byName));
        Assert.Equal("a:b:old", await StoredTaskName(byAlias));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal([("new", "a:b:name"), ("legacy", "a:b:old")], received);
        Assert.Equal("succeeded", await Status(byName));
        Assert.Equal("succeeded", await Status(byAlias));
    }

    [Fact]
    public async Task A_job_deferred_under_an_alias_of_an_app_task_runs_that_task_and_sees_the_stored_alias()
    {
        await using var app = db.CreateApp();
        var received = new ConcurrentQueue<(string To, string TaskName)>();
        var task = app.Task<MailArgs>("mail.send_v2", (a, context) => received.Enqueue((a.To, context.Job.TaskName)),
            queue: "mails", aliases: ["mail.send", "legacy.send"]);

        Assert.Same(task, app.FindTask("mail.send"));
        Assert.Same(task, app.FindTask("legacy.send"));
        var byAlias = await app.DeferAsync("mail.send", """{"to": "old"}""");
        var byName = await app.DeferAsync("mail.send_v2", """{"to": "new"}""");
        // The task's defaults apply when deferring by an alias.
        Assert.Equal("mails", await db.ScalarAsync<string>("SELECT queue_name FROM procrastinate_jobs WHERE id = $1", byAlias));

        await app.RunWorkerAsync(OneShot);

        Assert.Equal([("old", "mail.send"), ("new", "mail.send_v2")], received);
        Assert.Equal("succeeded", await Status(byAlias));
        Assert.Equal("succeeded", await Status(byName));
        Assert.Equal("mail.send", await StoredTaskName(byAlias));
    }

    [Fact]
    public async Task Tasks_lists_app_tasks_blueprint_tasks_and_the_builtin_task()
    {
        await using var app = db.CreateApp();
        var plain = app.Task<MailArgs>("plain", _ => { });
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { });
        var inner = new Blueprint();
        var deep = inner.Task<MailArgs>("deep", _ => { });
        bp.AddBlueprint(inner, "inner");
        app.AddBlueprint(bp, "mail");
        var late = app.Task<MailArgs>("late", _ => { });

        Assert.Equal("plain", plain.Name);
        Assert.Equal("late", late.Name);
        Assert.Equal(
            new[] { BuiltinTasks.RemoveOldJobsName, "late", "mail:inner:deep", "mail:send", "plain" },
            app.Tasks.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Contains(app.BuiltinTasks.RemoveOldJobs, app.Tasks);
        Assert.Equal("builtin:procrastinate.builtin_tasks.remove_old_jobs", app.BuiltinTasks.RemoveOldJobs.Name);
        Assert.Same(deep, app.FindTask("mail:inner:deep"));
        Assert.Same(send, app.FindTask("mail:send"));
        Assert.Same(app.BuiltinTasks.RemoveOldJobs, app.FindTask(BuiltinTasks.RemoveOldJobsAlias));
    }

    [Fact]
    public async Task A_namespaced_name_of_exactly_128_characters_is_accepted()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var name = new string('n', 128 - "ns:".Length);
        var task = bp.Task<MailArgs>(name, _ => { });

        app.AddBlueprint(bp, "ns");

        Assert.Equal(128, task.Name.Length);
        var id = await task.DeferAsync(new MailArgs("x"));
        Assert.Equal("ns:" + name, await StoredTaskName(id));
    }

    // ---- Errors --------------------------------------------------------------------------------

    [Fact]
    public async Task A_blueprint_can_be_added_only_once()
    {
        await using var app = db.CreateApp();
        await using var otherApp = db.CreateApp();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { });
        app.AddBlueprint(bp, "mail");

        Assert.Throws<InvalidOperationException>(() => app.AddBlueprint(bp, "mail"));
        Assert.Throws<InvalidOperationException>(() => app.AddBlueprint(bp, "post"));
        Assert.Throws<InvalidOperationException>(() => otherApp.AddBlueprint(bp, "mail"));

        Assert.Equal("mail:send", send.Name);
        Assert.Null(app.FindTask("post:mail:send"));
        Assert.Null(app.FindTask("post:send"));
        Assert.Null(otherApp.FindTask("mail:send"));
        Assert.Same(app, send.App);
    }

    [Fact]
    public async Task A_blueprint_whose_namespaced_name_collides_registers_nothing()
    {
        await using var app = db.CreateApp();
        var existing = app.Task<MailArgs>("mail:send", _ => { });
        var bp = new Blueprint();
        var other = bp.Task<MailArgs>("other", _ => { }, aliases: ["other.old"]);
        var send = bp.Task<MailArgs>("send", _ => { });

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(bp, "mail"));

        Assert.Null(app.FindTask("mail:other"));
        Assert.Null(app.FindTask("mail:other.old"));
        Assert.Same(existing, app.FindTask("mail:send"));
        Assert.DoesNotContain(app.Tasks, t => ReferenceEquals(t, other) || ReferenceEquals(t, send));
        Assert.Equal("other", other.Name);
        Assert.Equal(["other.old"], other.Aliases);
        Assert.Equal("send", send.Name);
        Assert.Throws<InvalidOperationException>(() => other.App);

        // Nothing was registered, so the blueprint can still go under another namespace.
        app.AddBlueprint(bp, "post");
        Assert.Same(other, app.FindTask("post:other"));
        Assert.Same(other, app.FindTask("post:other.old"));
        Assert.Same(send, app.FindTask("post:send"));
    }

    [Fact]
    public async Task A_blueprint_whose_namespaced_alias_collides_with_an_app_task_registers_nothing()
    {
        await using var app = db.CreateApp();
        var existing = app.Task<MailArgs>("mail:legacy", _ => { });
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { }, aliases: ["legacy"]);

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(bp, "mail"));

        Assert.Null(app.FindTask("mail:send"));
        Assert.Same(existing, app.FindTask("mail:legacy"));
        Assert.Equal("send", send.Name);
    }

    [Fact]
    public async Task An_app_task_cannot_take_a_name_already_used_by_an_added_blueprint()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { }, aliases: ["old"]);
        app.AddBlueprint(bp, "mail");

        Assert.Throws<ArgumentException>(() => app.Task<MailArgs>("mail:send", _ => { }));
        Assert.Throws<ArgumentException>(() => app.Task<MailArgs>("mail:old", _ => { }));
        Assert.Same(send, app.FindTask("mail:send"));
        Assert.Same(send, app.FindTask("mail:old"));
    }

    [Theory]
    [InlineData("a:b")]
    [InlineData(":")]
    [InlineData("mail:")]
    [InlineData("")]
    public async Task An_invalid_namespace_is_rejected_and_registers_nothing(string @namespace)
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var send = bp.Task<MailArgs>("send", _ => { });
        var before = app.Tasks.Count;

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(bp, @namespace));

        Assert.Equal(before, app.Tasks.Count);
        Assert.Equal("send", send.Name);
        Assert.Null(app.FindTask(@namespace + ":send"));
    }

    [Fact]
    public async Task A_null_namespace_or_blueprint_is_rejected()
    {
        await using var app = db.CreateApp();
        Assert.Throws<ArgumentNullException>(() => app.AddBlueprint(new Blueprint(), null!));
        Assert.Throws<ArgumentNullException>(() => app.AddBlueprint(null!, "mail"));
    }

    [Fact]
    public async Task A_blueprint_takes_no_new_tasks_once_added()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        bp.Task<MailArgs>("send", _ => { });
        app.AddBlueprint(bp, "mail");

        Assert.Throws<InvalidOperationException>(() => bp.Task<MailArgs>("late", _ => { }));
        Assert.Throws<InvalidOperationException>(() => bp.Task<MailArgs>("late.async", async _ => await Task.Yield()));

        Assert.Null(app.FindTask("mail:late"));
        Assert.Null(app.FindTask("late"));
        Assert.DoesNotContain(app.Tasks, t => t.Name.Contains("late", StringComparison.Ordinal));
        Assert.DoesNotContain(bp.Tasks, t => t.Name.Contains("late", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_inner_blueprint_takes_no_new_tasks_once_added_to_an_outer_one()
    {
        await using var app = db.CreateApp();
        var inner = new Blueprint();
        inner.Task<MailArgs>("name", _ => { });
        var outer = new Blueprint();
        outer.AddBlueprint(inner, "b");

        Assert.Throws<InvalidOperationException>(() => inner.Task<MailArgs>("late", _ => { }));
        app.AddBlueprint(outer, "a");
        Assert.Null(app.FindTask("a:b:late"));
    }

    [Fact]
    public async Task A_namespaced_name_over_128_characters_is_rejected_and_registers_nothing()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        var shortTask = bp.Task<MailArgs>("short", _ => { });
        var longName = new string('n', 126);
        var longTask = bp.Task<MailArgs>(longName, _ => { });

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(bp, "ns"));

        Assert.Null(app.FindTask("ns:short"));
        Assert.Null(app.FindTask("ns:" + longName));
        Assert.Equal("short", shortTask.Name);
        Assert.Equal(longName, longTask.Name);
    }

    [Fact]
    public async Task A_namespaced_alias_over_128_characters_is_rejected()
    {
        await using var app = db.CreateApp();
        var bp = new Blueprint();
        bp.Task<MailArgs>("send", _ => { }, aliases: [new string('a', 128)]);

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(bp, "m"));
        Assert.Null(app.FindTask("m:send"));
    }

    [Fact]
    public async Task Nesting_that_pushes_a_name_over_128_characters_is_rejected_when_added_to_the_app()
    {
        await using var app = db.CreateApp();
        var inner = new Blueprint();
        var task = inner.Task<MailArgs>(new string('n', 120), _ => { });
        var outer = new Blueprint();
        outer.AddBlueprint(inner, "b");

        Assert.Throws<ArgumentException>(() => app.AddBlueprint(outer, "abcdefg"));

        Assert.Equal("b:" + new string('n', 120), task.Name);
        Assert.Null(app.FindTask("abcdefg:" + task.Name));
    }

    [Fact]
    public async Task An_app_cannot_be_added_as_a_blueprint()
    {
        await using var app = db.CreateApp();
        await using var other = db.CreateApp();
        other.Task<MailArgs>("send", _ => { });
        var bp = new Blueprint();

        Assert.ThrowsAny<ArgumentException>(() => app.AddBlueprint(other, "other"));
        Assert.ThrowsAny<ArgumentException>(() => bp.AddBlueprint(other, "other"));
        Assert.ThrowsAny<ArgumentException>(() => app.AddBlueprint(app, "self"));
        Assert.ThrowsAny<ArgumentException>(() => bp.AddBlueprint(bp, "self"));

        Assert.Null(app.FindTask("other:send"));
        Assert.Null(app.FindTask("self:send"));
        Assert.Equal("send", other.FindTask("send")!.Name);
    }

    [Fact]
    public async Task Nested_blueprints_cannot_be_added_after_the_outer_one_was_added()
    {
        await using var app = db.CreateApp();
        var outer = new Blueprint();
        outer.Task<MailArgs>("top", _ => { });
        app.AddBlueprint(outer, "a");
        var inner = new Blueprint();
        var task = inner.Task<MailArgs>("name", _ => { });

        Assert.Throws<InvalidOperationException>(() => outer.AddBlueprint(inner, "b"));

        Assert.Equal("name", task.Name);
        Assert.Null(app.FindTask("a:b:name"));
        Assert.Null(app.FindTask("b:name"));
        // The inner blueprint was not consumed: it can still be added elsewhere.
        app.AddBlueprint(inner, "c");
        Assert.Same(task, app.FindTask("c:name"));
    }
}
