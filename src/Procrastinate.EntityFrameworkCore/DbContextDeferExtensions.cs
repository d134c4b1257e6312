using System.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Procrastinate.EntityFrameworkCore;

/// <summary>
/// Defers jobs through an EF Core <see cref="DbContext"/> (Npgsql provider), on its connection.
/// </summary>
/// <remarks>
/// <para>
/// <b>With a current transaction</b> (<c>dbContext.Database.BeginTransactionAsync()</c>), the job is
/// inserted in that transaction: it exists if and only if the transaction commits, together with
/// the business data written by <c>SaveChangesAsync</c>. This is the recommended form:
/// </para>
/// <code>
/// await using var tx = await db.Database.BeginTransactionAsync(ct);
/// db.Orders.Add(order);
/// await db.SaveChangesAsync(ct);
/// await sendConfirmation.DeferAsync(new SendConfirmationArgs(order.Id), db, cancellationToken: ct);
/// await tx.CommitAsync(ct);
/// </code>
/// <para>
/// <b>Without a current transaction</b>, the job is inserted at once on the context's connection
/// (opened for the call and closed again if it was closed) and committed on its own: it does not
/// wait for, and is not undone by, a later <c>SaveChanges</c>.
/// </para>
/// <para>
/// The context must use the database that holds the Procrastinate schema (any connection string
/// to it). The app's connector only validates and serializes; its pool is not used. With a
/// retrying execution strategy (<c>EnableRetryOnFailure</c>), run the whole transaction inside
/// <c>db.Database.CreateExecutionStrategy().ExecuteAsync(...)</c>, as EF Core requires for any
/// user transaction.
/// </para>
/// </remarks>
public static class DbContextDeferExtensions
{
    /// <summary>
    /// Defers one job on <paramref name="dbContext"/>'s connection, inside its current transaction
    /// when there is one (see the class remarks), and returns its id.
    /// </summary>
    /// <exception cref="ArgumentException">The arguments or options are invalid; nothing was written.</exception>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    /// <exception cref="InvalidOperationException">The context does not use the Npgsql provider.</exception>
    public static async Task<long> DeferAsync<TArgs>(this JobTask<TArgs> task, TArgs args, DbContext dbContext,
        DeferOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(dbContext);
        var database = dbContext.Database;
        if (database.CurrentTransaction is { } transaction)
            return await task.DeferAsync(args, GetTransaction(transaction), options, cancellationToken).ConfigureAwait(false);

        var connection = GetConnection(database);
        await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await task.DeferAsync(args, connection, options, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The synchronous form of <see cref="DeferAsync{TArgs}(JobTask{TArgs}, TArgs, DbContext, DeferOptions?, CancellationToken)"/> (Npgsql's sync I/O).</summary>
    /// <inheritdoc cref="DeferAsync{TArgs}(JobTask{TArgs}, TArgs, DbContext, DeferOptions?, CancellationToken)"/>
    public static long Defer<TArgs>(this JobTask<TArgs> task, TArgs args, DbContext dbContext, DeferOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(dbContext);
        var database = dbContext.Database;
        if (database.CurrentTransaction is { } transaction)
            return task.Defer(args, GetTransaction(transaction), options);

        var connection = GetConnection(database);
        database.OpenConnection();
        try
        {
            return task.Defer(args, connection, options);
        }
        finally
        {
            database.CloseConnection();
        }
    }

    /// <summary>
    /// Defers many jobs in one round trip on <paramref name="dbContext"/>'s connection, all or
    /// none, inside its current transaction when there is one; returns the ids in input order.
    /// </summary>
    /// <exception cref="ArgumentException">The arguments or options are invalid; nothing was written.</exception>
    /// <exception cref="AlreadyEnqueuedException">A queueing lock conflicts; nothing was inserted.</exception>
    /// <exception cref="InvalidOperationException">The context does not use the Npgsql provider.</exception>
    public static Task<IReadOnlyList<long>> DeferManyAsync<TArgs>(this JobTask<TArgs> task, IEnumerable<TArgs> args, DbContext dbContext,
        DeferOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(args);
        return InTransactionAsync(dbContext, tx => task.DeferManyAsync(args, tx, options, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Defers a job by task name with JSON arguments (for tasks registered elsewhere) on
    /// <paramref name="dbContext"/>'s connection, inside its current transaction when there is one.
    /// </summary>
    /// <exception cref="ArgumentException">The JSON is malformed or not an object, or a name is invalid; nothing was written.</exception>
    /// <exception cref="AlreadyEnqueuedException">A job with the same queueing lock is already waiting.</exception>
    /// <exception cref="InvalidOperationException">The context does not use the Npgsql provider.</exception>
    public static Task<long> DeferAsync(this App app, string taskName, string argsJson, DbContext dbContext,
        DeferOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        return InTransactionAsync(dbContext, tx => app.DeferAsync(taskName, argsJson, tx, options, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="defer"/> in the context's current transaction, or else in a transaction
    /// of its own on the context's connection, committed at once.
    /// </summary>
    private static async Task<T> InTransactionAsync<T>(DbContext dbContext, Func<NpgsqlTransaction, Task<T>> defer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dbContext);
        var database = dbContext.Database;
        if (database.CurrentTransaction is { } current)
            return await defer(GetTransaction(current)).ConfigureAwait(false);

        var connection = GetConnection(database);
        await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var own = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            var result = await defer(own).ConfigureAwait(false);
            await own.CommitAsync(cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            await database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    private static NpgsqlTransaction GetTransaction(IDbContextTransaction transaction) =>
        transaction.GetDbTransaction() as NpgsqlTransaction ?? throw new InvalidOperationException(
            $"The DbContext's transaction is a {transaction.GetDbTransaction().GetType().Name}, not an NpgsqlTransaction: Procrastinate needs the Npgsql EF Core provider (UseNpgsql).");

    private static NpgsqlConnection GetConnection(DatabaseFacade database) =>
        database.GetDbConnection() as NpgsqlConnection ?? throw new InvalidOperationException(
            $"The DbContext's connection is a {database.GetDbConnection().GetType().Name}, not an NpgsqlConnection: Procrastinate needs the Npgsql EF Core provider (UseNpgsql).");
}
