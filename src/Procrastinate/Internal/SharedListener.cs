using System.Data;
using System.Text;
using Npgsql;

namespace Procrastinate.Internal;

/// <summary>
/// One LISTEN connection per connection string and process, shared by every
/// <see cref="NpgsqlConnector.ListenAsync"/> call (one per worker): it listens on the union of
/// its subscribers' channels and hands each notification to the subscribers of its channel.
/// </summary>
/// <remarks>
/// <para>
/// A single loop task owns the connection, since Npgsql connections are not thread-safe and a
/// <c>WaitAsync</c> is in progress on it most of the time. A subscriber joining or leaving only
/// changes the subscriber list, sets a flag and cancels the loop's current wait; the loop then
/// issues the LISTEN/UNLISTEN statements itself and waits again. Npgsql leaves the connection
/// usable when a <c>WaitAsync</c> is cancelled, without losing a notification that arrives
/// meanwhile (its own tests check the former; SharedListenerTests churns subscribers while
/// notifications flow); should a cancellation ever break it, the loop reconnects as after any
/// other loss and the subscribers re-poll.
/// </para>
/// <para>
/// Every callback of a subscriber runs on the loop, one at a time, and none runs once its
/// <see cref="ListenAsync"/> call has returned. The connection closes (back to its pool without
/// any LISTEN left on it) when the last subscriber leaves, or at the next wake-up after every
/// subscriber's connector was disposed.
/// </para>
/// </remarks>
internal sealed class SharedListener
{
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);
    private const int CloseTimeoutSeconds = 5;
    private const int MaxIdentifierBytes = 63; // PostgreSQL's NAMEDATALEN - 1

    // Guards the registry and every listener's subscriber state, so that a listener which lost
    // its last subscriber (and is closing) is never joined again. Held only for list updates.
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, SharedListener> Listeners = new(StringComparer.Ordinal);

    private readonly string _key;
    private readonly TimeSpan _keepAlive;

    // Cancelled when the last subscriber leaves; never disposed (it holds no timer nor linked
    // registration), so that a late caller may still cancel it.
    private readonly CancellationTokenSource _stop = new();

    // Under Gate.
    private readonly List<Subscription> _subscribers = [];
    private bool _changed;
    private bool _stopped;
    private CancellationTokenSource? _waitCancellation;

    // A copy of _subscribers, replaced under Gate, read without a lock by the notification handler.
    private Subscription[] _snapshot = [];

    // Owned by the loop.
    private HashSet<string> _listened = new(StringComparer.Ordinal);
    private bool _synced;
    private Task _loop = Task.CompletedTask;

    private SharedListener(string key, TimeSpan keepAlive)
    {
        _key = key;
        _keepAlive = keepAlive;
    }

    /// <summary>
    /// Listens on <paramref name="channels"/> through the shared connection of the data source's
    /// connection string until <paramref name="cancellationToken"/> is cancelled, then leaves
    /// (the connection closes with its last subscriber).
    /// </summary>
    /// <param name="dataSource">The subscriber's data source; throws <see cref="ObjectDisposedException"/> once its connector is disposed.</param>
    /// <param name="isAlive">False once the subscriber's connector is disposed: the listener then drops it.</param>
    /// <param name="keepAlive">Idle time before a keep-alive round trip (the value of the listener's first subscriber).</param>
    /// <param name="channels">The channels to listen on.</param>
    /// <param name="onNotification">Called with the channel and payload of each notification of those channels.</param>
    /// <param name="onListening">Called with true once the channels are listened and with false when the connection is lost.</param>
    /// <param name="cancellationToken">Ends the subscription.</param>
    internal static async Task ListenAsync(Func<NpgsqlDataSource> dataSource, Func<bool> isAlive, TimeSpan keepAlive,
        IReadOnlyList<string> channels, Action<string, string> onNotification, Action<bool> onListening,
        CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return;
        var key = dataSource().ConnectionString;
        var subscription = new Subscription(channels, onNotification, onListening, dataSource, isAlive);
        var listener = Join(key, keepAlive, subscription);
        try
        {
            var cancelled = Task.Delay(Timeout.Infinite, cancellationToken);
            var loop = listener._loop;
            // The loop only ends first when it failed unexpectedly (surfaced here, as the per-worker
            // loop did) or when every connector using it was disposed (then wait for cancellation).
            if (await Task.WhenAny(cancelled, loop).ConfigureAwait(false) == loop)
            {
                await loop.ConfigureAwait(false);
                await cancelled.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            await listener.LeaveAsync(subscription).ConfigureAwait(false);
        }
    }

    /// <summary>Whether a listener is running for this connection string (for tests).</summary>
    internal static bool IsRunning(string connectionString)
    {
        lock (Gate)
            return Listeners.ContainsKey(connectionString);
    }

    /// <summary>A channel as PostgreSQL names it: identifiers are cut to 63 bytes (at a character boundary).</summary>
    private static string Truncate(string channel)
    {
        if (Encoding.UTF8.GetByteCount(channel) <= MaxIdentifierBytes)
            return channel;
        int bytes = 0, chars = 0;
        foreach (var rune in channel.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > MaxIdentifierBytes)
                break;
            bytes += rune.Utf8SequenceLength;
            chars += rune.Utf16SequenceLength;
        }
        return channel[..chars];
    }

    private static SharedListener Join(string key, TimeSpan keepAlive, Subscription subscription)
    {
        CancellationTokenSource? wake;
        SharedListener? listener;
        lock (Gate)
        {
            if (!Listeners.TryGetValue(key, out listener))
            {
                listener = new SharedListener(key, keepAlive);
                Listeners[key] = listener;
                listener._loop = Task.Run(listener.RunAsync);
            }
            listener._subscribers.Add(subscription);
            listener.ChangedNoLock();
            wake = listener._waitCancellation;
        }
        Wake(wake);
        return listener;
    }

    private async Task LeaveAsync(Subscription subscription)
    {
        // From here on, no callback of this subscriber runs (one in progress is waited for).
        subscription.End();
        CancellationTokenSource? wake;
        bool stopped;
        lock (Gate)
        {
            if (_subscribers.Remove(subscription))
            {
                ChangedNoLock();
                if (_subscribers.Count == 0)
                    StopNoLock();
            }
            stopped = _stopped;
            wake = _waitCancellation;
        }
        if (!stopped)
        {
            Wake(wake); // the loop UNLISTENs the channels nobody needs any more
            return;
        }
        // The last one out stops the loop (the flag first, so the woken wait ends the loop) and
        // waits for the connection to be closed, as the per-worker loop did.
        await _stop.CancelAsync().ConfigureAwait(false);
        Wake(wake);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Records a subscriber change, for the loop to apply before it waits again.</summary>
    private void ChangedNoLock()
    {
        _snapshot = [.. _subscribers];
        _changed = true;
    }

    private void StopNoLock()
    {
        _stopped = true;
        if (Listeners.TryGetValue(_key, out var current) && current == this)
            Listeners.Remove(_key);
    }

    /// <summary>Drops the subscribers whose connector was disposed (they never cancel if nobody stops their worker).</summary>
    private void EvictDeadNoLock()
    {
        if (_subscribers.RemoveAll(s => !s.IsAlive()) > 0)
        {
            ChangedNoLock();
            if (_subscribers.Count == 0)
                StopNoLock();
        }
    }

    /// <summary>
    /// Ends the loop's current wait. Called outside <see cref="Gate"/> (cancellation runs Npgsql's
    /// callbacks); a wait that is already over is cancelled harmlessly, since the loop looks at the
    /// change flag before each wait.
    /// </summary>
    private static void Wake(CancellationTokenSource? wait) => wait?.Cancel();

    private async Task RunAsync()
    {
        var backoff = InitialBackoff;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                NpgsqlConnection? connection = null;
                try
                {
                    connection = await OpenAsync().ConfigureAwait(false);
                    if (connection is null)
                        break;
                    connection.Notification += OnNotification;
                    _listened = new HashSet<string>(StringComparer.Ordinal);
                    _synced = false;
                    while (await SyncAsync(connection).ConfigureAwait(false))
                    {
                        backoff = InitialBackoff;
                        if (!await WaitAsync(connection).ConfigureAwait(false))
                            await PingAsync(connection).ConfigureAwait(false);
                    }
                    break;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
                {
                    // The workers keep polling meanwhile; reconnect with capped backoff (COMPAT.md W11).
                    ReportLost();
                }
                finally
                {
                    if (connection is not null)
                        await CloseAsync(connection).ConfigureAwait(false);
                }
                try
                {
                    await Task.Delay(backoff, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
        catch (Exception) when (!_stop.IsCancellationRequested)
        {
            ReportLost(); // an unexpected failure: every subscriber's ListenAsync rethrows it
            throw;
        }
        finally
        {
            // However the loop ended, nobody may join it any more.
            lock (Gate)
                StopNoLock();
        }
    }

    /// <summary>Opens the connection through a live subscriber's data source; null when none is left.</summary>
    private async Task<NpgsqlConnection?> OpenAsync()
    {
        while (true)
        {
            Subscription? chosen;
            lock (Gate)
            {
                EvictDeadNoLock();
                if (_stopped)
                    return null;
                chosen = _subscribers[0];
            }
            NpgsqlDataSource dataSource;
            try
            {
                dataSource = chosen.DataSource();
            }
            catch (ObjectDisposedException)
            {
                // Its connector was disposed just now: drop it and use another subscriber's.
                lock (Gate)
                {
                    if (_subscribers.Remove(chosen))
                        ChangedNoLock();
                    if (_subscribers.Count == 0)
                        StopNoLock();
                }
                continue;
            }
            return await dataSource.OpenConnectionAsync(_stop.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Brings the connection's LISTENs in line with the subscribers and tells those not yet told
    /// that they are listening; false once the listener has stopped.
    /// </summary>
    private async Task<bool> SyncAsync(NpgsqlConnection connection)
    {
        Subscription[] subscribers;
        lock (Gate)
        {
            EvictDeadNoLock();
            if (_stopped)
                return false;
            if (_synced && !_changed)
                return true;
            _changed = false;
            subscribers = _snapshot;
        }
        var wanted = new HashSet<string>(subscribers.SelectMany(s => s.Channels), StringComparer.Ordinal);
        if (!wanted.SetEquals(_listened))
        {
            await using var batch = new NpgsqlBatch(connection);
            foreach (var channel in _listened.Where(c => !wanted.Contains(c)))
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"UNLISTEN {NpgsqlConnector.QuoteIdentifier(channel)}"));
            // Every wanted channel, the listened ones included (a no-op for them), LISTEN last: so
            // pg_stat_activity always shows this connection's last query as a LISTEN.
            foreach (var channel in wanted)
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"LISTEN {NpgsqlConnector.QuoteIdentifier(channel)}"));
            await batch.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
            _listened = wanted;
        }
        _synced = true;
        foreach (var subscriber in subscribers)
        {
            if (!subscriber.Listening)
            {
                subscriber.Listening = true;
                subscriber.ReportListening(true);
            }
        }
        return true;
    }

    /// <summary>Waits for a notification or a subscriber change (true), or the keep-alive interval in silence (false).</summary>
    private async Task<bool> WaitAsync(NpgsqlConnection connection)
    {
        CancellationTokenSource wait;
        lock (Gate)
        {
            // A change recorded after the last sync: apply it before waiting.
            if (_changed || _stopped)
                return true;
            // Not linked to _stop and never disposed, so a late Wake cannot hit a disposed source:
            // the last subscriber out cancels _stop and then this one.
            wait = _waitCancellation = new CancellationTokenSource();
        }
        try
        {
            return await connection.WaitAsync(_keepAlive, wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            return true; // woken for a subscriber change
        }
        finally
        {
            lock (Gate)
                _waitCancellation = null;
        }
    }

    private async Task PingAsync(NpgsqlConnection connection)
    {
        // Re-LISTENing a listened channel is a no-op round trip, like SELECT 1, that keeps the
        // connection recognisable in pg_stat_activity (query LIKE 'LISTEN %').
        var sql = _listened.Count > 0 ? $"LISTEN {NpgsqlConnector.QuoteIdentifier(_listened.First())}" : "SELECT 1";
        await using var ping = new NpgsqlCommand(sql, connection);
        await ping.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        foreach (var subscriber in Volatile.Read(ref _snapshot))
        {
            if (subscriber.Channels.Contains(e.Channel))
                subscriber.Notify(e.Channel, e.Payload);
        }
    }

    /// <summary>Tells every subscriber the connection is lost (on each failed attempt, as before).</summary>
    private void ReportLost()
    {
        foreach (var subscriber in Volatile.Read(ref _snapshot))
        {
            subscriber.Listening = false;
            subscriber.ReportListening(false);
        }
    }

    private async Task CloseAsync(NpgsqlConnection connection)
    {
        connection.Notification -= OnNotification;
        try
        {
            // The connection goes back to its pool: leave no LISTEN on it.
            if (connection.FullState == ConnectionState.Open)
            {
                await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection) { CommandTimeout = CloseTimeoutSeconds };
                await unlisten.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
        {
            // Broken meanwhile: disposing it discards it.
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One <see cref="ListenAsync"/> call.</summary>
    private sealed class Subscription(IReadOnlyList<string> channels, Action<string, string> onNotification,
        Action<bool> onListening, Func<NpgsqlDataSource> dataSource, Func<bool> isAlive)
    {
        private readonly Lock _callbackGate = new();
        private bool _ended;

        /// <summary>The channels, as PostgreSQL names them in notifications.</summary>
        public HashSet<string> Channels { get; } = new(channels.Select(Truncate), StringComparer.Ordinal);

        public Func<NpgsqlDataSource> DataSource => dataSource;

        public Func<bool> IsAlive => isAlive;

        /// <summary>Whether onListening(true) was reported for the current connection (loop only).</summary>
        public bool Listening { get; set; }

        public void Notify(string channel, string payload)
        {
            lock (_callbackGate)
            {
                if (_ended)
                    return;
                try
                {
                    onNotification(channel, payload);
                }
                catch (Exception)
                {
                    // One subscriber's failure must not keep the others from their notifications.
                }
            }
        }

        public void ReportListening(bool listening)
        {
            lock (_callbackGate)
            {
                if (_ended)
                    return;
                try
                {
                    onListening(listening);
                }
                catch (Exception)
                {
                    // As above: callbacks are the subscriber's business.
                }
            }
        }

        /// <summary>No callback runs after this returns.</summary>
        public void End()
        {
            lock (_callbackGate)
                _ended = true;
        }
    }
}
