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
/// worst moment for the client: the work is done and the client cannot know.
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
    private string? _armed;
    private int _cuts;

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

    /// <summary>Loses the answer to the next statement whose text contains <paramref name="sqlMarker"/> (once).</summary>
    public void LoseNextAnswerTo(string sqlMarker) => Volatile.Write(ref _armed, sqlMarker);

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

    /// <summary>The marker, taken (so only one statement loses its answer) when <paramref name="sql"/> contains it.</summary>
    private bool TakeMarker(string sql)
    {
        var marker = Volatile.Read(ref _armed);
        return marker is not null && sql.Contains(marker, StringComparison.Ordinal)
            && Interlocked.CompareExchange(ref _armed, null, marker) == marker;
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
        private volatile bool _losing; // from the marked statement on, nothing the server sends is passed on

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
                if (!_losing && Marks(type, body))
                    _losing = true; // before the statement goes on: its first answer may come back at once
                await WriteMessageAsync(_server, type, body, stop);
            }
        }

        private async Task ServerToClientAsync(CancellationToken stop)
        {
            while (true)
            {
                var (type, body) = await ReadMessageAsync(_server, stop);
                if (!_losing)
                {
                    await WriteMessageAsync(_client, type, body, stop);
                    continue;
                }
                if (type == (byte)'Z')
                {
                    // The statement ran to its end and its transaction committed: lose the answer.
                    Interlocked.Increment(ref proxy._cuts);
                    proxy.AnswerLost.TrySetResult();
                    return;
                }
            }
        }

        /// <summary>Whether this frontend message sends the armed statement.</summary>
        private bool Marks(byte type, byte[] body)
        {
            switch ((char)type)
            {
                case 'Q':
                    return proxy.TakeMarker(CString(body, 0, out _));
                case 'P':
                {
                    var name = CString(body, 0, out var next);
                    var sql = CString(body, next, out _);
                    if (name.Length > 0)
                        _prepared[name] = sql;
                    return proxy.TakeMarker(sql);
                }
                case 'B':
                {
                    CString(body, 0, out var next); // the portal
                    var statement = CString(body, next, out _);
                    return statement.Length > 0 && _prepared.TryGetValue(statement, out var sql) && proxy.TakeMarker(sql);
                }
                default:
                    return false;
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
