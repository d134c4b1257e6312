using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Procrastinate.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test cluster that can lose the answer to one statement. Armed with
/// a piece of SQL, it passes the next statement that contains it on to PostgreSQL, lets PostgreSQL
/// run it to its end (the server's ReadyForQuery: the implicit transaction is committed), and then
/// closes both connections without passing any of the answer on. A real lost connection, at the
/// worst moment for the client: the work is done and the client cannot know. It can also hold an
/// answer back for a while before passing it on: a slow network, a statement still on its way.
/// </summary>
/// <remarks>
/// It reads the frontend protocol's message frames (type byte, length) to find the statement:
/// in a Parse or simple Query whose text contains the marker, or in a Bind of a statement prepared
/// from such a Parse on the same connection, earlier or in the same batch. SSL and GSS encryption requests are answered by the
/// server and passed on as they are (the test cluster refuses both).
/// </remarks>
public sealed class AnswerLosingProxy : IAsyncDisposable
{
    private const int SslRequestCode = 80877103;
    private const int GssEncRequestCode = 80877104;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<TcpClient> _sockets = [];
    private readonly Queue<Arm> _arms = new(); // the statements to lose or hold the answers of, in the order they will be sent
    private int _cuts;
    private int _held;

    public AnswerLosingProxy(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        _upstreamHost = builder.Host ?? "127.0.0.1";
        _upstreamPort = builder.Port;
        _listener.Start();
        builder.Host = "127.0.0.1";
        builder.Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        builder.SslMode = SslMode.Disable;
        ConnectionString = builder.ConnectionString;
        _accepting = AcceptAsync();
    }

    /// <summary>The connection string that goes through the proxy.</summary>
    public string ConnectionString { get; }

    /// <summary>Completed when an answer was lost.</summary>
    public TaskCompletionSource AnswerLost { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many answers were lost so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>How many answers were held back and then passed on so far.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Loses the answer to the next statement whose text contains <paramref name="sqlMarker"/> (once).</summary>
    public void LoseNextAnswerTo(string sqlMarker)
    {
        lock (_arms)
            _arms.Enqueue(new Arm(sqlMarker, Hold: null, After: null));
    }

    /// <summary>
    /// Two statements on their way at once, on two connections: the next one that contains
    /// <paramref name="sqlMarker"/> loses its answer, but only once the one after it (that contains
    /// it too) was sent; that second one runs and its answer is held back for <paramref name="hold"/>
    /// before it is passed on. So the client learns that the first failed while the second, already
    /// committed, is still on its way. If no second statement comes within 10 s, the first loses its
    /// answer all the same and <see cref="SecondSentBeforeCut"/> stays false.
    /// </summary>
    public void LoseNextAnswerWhileTheNextIsHeld(string sqlMarker, TimeSpan hold)
    {
        var second = new Arm(sqlMarker, hold, After: null);
        lock (_arms)
        {
            _arms.Enqueue(new Arm(sqlMarker, Hold: null, After: second));
            _arms.Enqueue(second);
        }
    }

    /// <summary>Whether the statement armed second by <see cref="LoseNextAnswerWhileTheNextIsHeld"/> was sent before the first one's answer was lost.</summary>
    public bool SecondSentBeforeCut { get; private set; }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        lock (_sockets)
        {
            _sockets.Add(client);
            _sockets.Add(upstream);
        }
        try
        {
            await upstream.ConnectAsync(_upstreamHost, _upstreamPort, _stop.Token);
            client.NoDelay = upstream.NoDelay = true;
            var connection = new Relay(this, client, upstream);
            await connection.RunAsync(_stop.Token);
        }
        catch (Exception)
        {
            // Either side went away, or the proxy stops: the other side sees its connection close.
        }
        finally
        {
            client.Close();
            upstream.Close();
        }
    }

    /// <summary>The first arm, taken (so that each applies to one statement) when <paramref name="sql"/> contains its marker.</summary>
    private Arm? TakeArm(string sql)
    {
        lock (_arms)
        {
            if (!_arms.TryPeek(out var arm) || !sql.Contains(arm.Marker, StringComparison.Ordinal))
                return null;
            _arms.Dequeue();
            arm.Sent.TrySetResult();
            return arm;
        }
    }

    /// <summary>
    /// What to do with the answer to one statement: lose it (<see cref="Hold"/> null), once
    /// <see cref="After"/>, if any, was sent; or pass it on after <see cref="Hold"/>.
    /// </summary>
    private sealed record Arm(string Marker, TimeSpan? Hold, Arm? After)
    {
        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_sockets)
        {
            foreach (var socket in _sockets)
                socket.Close();
        }
        try
        {
            await _accepting;
        }
        catch (Exception)
        {
            // stopped
        }
        _stop.Dispose();
    }

    private sealed class Relay(AnswerLosingProxy proxy, TcpClient client, TcpClient upstream)
    {
        private readonly NetworkStream _client = client.GetStream();
        private readonly NetworkStream _server = upstream.GetStream();
        private readonly Dictionary<string, string> _prepared = new(StringComparer.Ordinal); // statement name -> SQL
        private volatile Arm? _arm; // from the marked statement on, what the server sends is lost or held back
        private readonly List<(byte Type, byte[] Body)> _heldBack = [];

        public async Task RunAsync(CancellationToken stop)
        {
            // The start-up: encryption requests (answered with one byte), then the startup message.
            while (true)
            {
                var head = await ReadExactlyAsync(_client, 8, stop);
                var length = BinaryPrimitives.ReadInt32BigEndian(head);
                var code = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(4));
                var rest = await ReadExactlyAsync(_client, length - 8, stop);
                await _server.WriteAsync(head, stop);
                await _server.WriteAsync(rest, stop);
                if (code is not (SslRequestCode or GssEncRequestCode))
                    break;
                var answer = await ReadExactlyAsync(_server, 1, stop);
                await _client.WriteAsync(answer, stop);
            }
            var fromClient = ClientToServerAsync(stop);
            var fromServer = ServerToClientAsync(stop);
            await Task.WhenAny(fromClient, fromServer); // the caller then closes both sides, which ends the other
        }

        private async Task ClientToServerAsync(CancellationToken stop)
        {
            while (true)
            {
                var (type, body) = await ReadMessageAsync(_client, stop);
                if (Marks(type, body, take: _arm is null) is { } arm)
                    _arm = arm; // before the statement goes on: its first answer may come back at once
                await WriteMessageAsync(_server, type, body, stop);
            }
        }

        private async Task ServerToClientAsync(CancellationToken stop)
        {
            while (true)
            {
                var (type, body) = await ReadMessageAsync(_server, stop);
                var arm = _arm;
                if (arm is null)
                {
                    await WriteMessageAsync(_client, type, body, stop);
                    continue;
                }
                if (arm.Hold is { } hold)
                {
                    _heldBack.Add((type, body));
                    if (type != (byte)'Z')
                        continue;
                    // The statement ran to its end: its answer goes on, late. The next statement
                    // the client sends once it has the answer is looked at as any other.
                    await Task.Delay(hold, stop);
                    var answer = _heldBack.ToArray();
                    _heldBack.Clear();
                    _arm = null;
                    foreach (var (heldType, heldBody) in answer)
                        await WriteMessageAsync(_client, heldType, heldBody, stop);
                    Interlocked.Increment(ref proxy._held);
                    continue;
                }
                if (type == (byte)'Z')
                {
                    // The statement ran to its end and its transaction committed: lose the answer,
                    // once the statement it waits for is on its way.
                    if (arm.After is { } after)
                    {
                        try
                        {
                            await after.Sent.Task.WaitAsync(TimeSpan.FromSeconds(10), stop);
                            proxy.SecondSentBeforeCut = true;
                        }
                        catch (TimeoutException)
                        {
                            // Lost all the same; the test sees that its second statement came too late.
                        }
                    }
                    Interlocked.Increment(ref proxy._cuts);
                    proxy.AnswerLost.TrySetResult();
                    return;
                }
            }
        }

        /// <summary>
        /// The arm of the statement this frontend message sends, when it is the armed one and
        /// <paramref name="take"/> (no other statement of this connection is armed). Statements
        /// prepared are remembered either way, for the Binds that use them later.
        /// </summary>
        private Arm? Marks(byte type, byte[] body, bool take)
        {
            switch ((char)type)
            {
                case 'Q':
                    return take ? proxy.TakeArm(CString(body, 0, out _)) : null;
                case 'P':
                {
                    var name = CString(body, 0, out var next);
                    var sql = CString(body, next, out _);
                    if (name.Length > 0)
                        _prepared[name] = sql;
                    return take ? proxy.TakeArm(sql) : null;
                }
                case 'B':
                {
                    CString(body, 0, out var next); // the portal
                    var statement = CString(body, next, out _);
                    return take && statement.Length > 0 && _prepared.TryGetValue(statement, out var sql) ? proxy.TakeArm(sql) : null;
                }
                default:
                    return null;
            }
        }

        private static string CString(byte[] body, int start, out int next)
        {
            var end = Array.IndexOf(body, (byte)0, start);
            if (end < 0)
                end = body.Length;
            next = end + 1;
            return Encoding.UTF8.GetString(body, start, end - start);
        }

        private static async Task<(byte Type, byte[] Body)> ReadMessageAsync(NetworkStream stream, CancellationToken stop)
        {
            var head = await ReadExactlyAsync(stream, 5, stop);
            var length = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(1));
            return (head[0], await ReadExactlyAsync(stream, length - 4, stop));
        }

        private static async Task WriteMessageAsync(NetworkStream stream, byte type, byte[] body, CancellationToken stop)
        {
            var head = new byte[5];
            head[0] = type;
            BinaryPrimitives.WriteInt32BigEndian(head.AsSpan(1), body.Length + 4);
            await stream.WriteAsync(head, stop);
            await stream.WriteAsync(body, stop);
        }

        private static async Task<byte[]> ReadExactlyAsync(NetworkStream stream, int count, CancellationToken stop)
        {
            var buffer = new byte[count];
            await stream.ReadExactlyAsync(buffer, stop);
            return buffer;
        }
    }
}
