using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Server;

/// <summary>
/// One accepted connection. Each read is framed into requests, all of them are answered into one output
/// buffer and sent with one write, so pipelined requests cost one round trip and replies keep request
/// order. Log lines for the read are formatted into one batch and handed to the log before the replies
/// are sent: a reply the client has seen is always in the log.
/// </summary>
internal sealed partial class ServerConnection
{
    private const int LoggedRequestLimit = 256; // a too-long request is logged by its head only

    private static readonly byte[] MalformedReply = Encoding.ASCII.GetBytes(Replies.Malformed);
    private static readonly byte[] BadClientReply = Encoding.ASCII.GetBytes(Replies.BadClient);
    private static readonly byte[] TooLongReply = Encoding.ASCII.GetBytes(Replies.TooLong + "\n");

    private readonly KeyServer _server;
    private Socket? _socket; // null while an event loop serves the raw descriptor
    private readonly RequestFramer _framer;
    private readonly ByteBuffer _output = new(512);
    private readonly ByteBuffer? _log;
    private bool _connectLogged;
    private int _busy;
    private int _socketClosed;
    private int _closed;

    /// <summary>A connection served by <see cref="RunAsync"/>.</summary>
    public ServerConnection(KeyServer server, Socket socket, long id)
        : this(server, id)
    {
        _socket = socket;
    }

    private ServerConnection(KeyServer server, long id)
    {
        _server = server;
        Id = id;
        _framer = new RequestFramer(server.MaxLineLength, ArrayPool<byte>.Shared.Rent(RequestFramer.BufferSizeFor(server.MaxLineLength)));
        _log = server.Logger is null ? null : new ByteBuffer(512);
        LastActivity = Environment.TickCount;
    }

    public long Id { get; }

    /// <summary>Requests answered on this connection (errors included); written only by its own loop.</summary>
    public long Requests { get; private set; }

    /// <summary>Error replies on this connection.</summary>
    public long Errors { get; private set; }

    /// <summary>Environment.TickCount when the last complete request arrived (or the connection opened).</summary>
    public int LastActivity { get; private set; }

    /// <summary>True between a read completing and its replies being sent.</summary>
    public bool IsBusy => Volatile.Read(ref _busy) == 1;

    /// <summary>Set once by the idle sweep: a connection it has closed, still on its way out, is not counted again.</summary>
    internal int IdleClosing;

    public string? RemoteEndPoint
    {
        get
        {
            if (Peer is { } peer)
            {
                return peer.ToString();
            }

            try
            {
                return _socket?.RemoteEndPoint?.ToString();
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>Serves the connection until the peer closes it, it breaks the protocol, or the server stops.</summary>
    public async Task RunAsync()
    {
        try
        {
            while (true)
            {
                // Idle from here: a stop that sees "not busy" may close the socket under the receive.
                Interlocked.Exchange(ref _busy, 0);
                if (_server.IsStopping)
                {
                    break;
                }

                _framer.Compact();
                var received = await SocketIo.ReceiveAsync(_socket!, _framer.ReceiveBuffer, _framer.ReceiveOffset, _framer.ReceiveCount).ConfigureAwait(false);
                Interlocked.Exchange(ref _busy, 1);
                if (received == 0)
                {
                    // Half-closed: answer what is pending (a last request without terminator), then close.
                    if (_framer.PendingCount == 0)
                    {
                        break;
                    }

                    _framer.EndOfStream();
                }
                else
                {
                    _framer.Commit(received);
                }

                var close = (_server.Handler is null ? Answer() : await AnswerWithHandlerAsync().ConfigureAwait(false)) || received == 0;
                if (_output.Length > 0)
                {
                    await SocketIo.SendAsync(_socket!, _output.Array, 0, _output.Length).ConfigureAwait(false);
                }

                if (close)
                {
                    if (received > 0)
                    {
                        await DrainAndCloseAsync().ConfigureAwait(false);
                    }

                    break;
                }
            }
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            // The peer reset the connection, or a stop or the idle timeout closed it.
        }
        catch (Exception e)
        {
            _server.ReportError(this, e);
        }
        finally
        {
            Close();
        }
    }

    /// <summary>Ends the connection from another thread; the thread serving it then cleans up.</summary>
    public void Abort()
    {
        if (!AbortOnEventLoop())
        {
            // Closing the socket under a pending receive ends it with an ObjectDisposedException.
            DisposeSocket();
        }
    }

    /// <summary>Answers every complete request received so far. Returns true when the connection must close.</summary>
    private bool Answer()
    {
        var timestamp = BeginBatch();
        var map = _server.KeyMap; // read once: a map swapped meanwhile applies from the next read
        int requests = 0, errors = 0;
        var close = false;
        FrameKind kind;
        while ((kind = _framer.TryReadFrame(out var request)) != FrameKind.None)
        {
            requests++;
            if (kind == FrameKind.TooLong)
            {
                errors++;
                AnswerTooLong(request, timestamp);
                close = true;
                break;
            }

            var status = RequestParser.Parse(request, out var clientLength);
            var found = false;
            var reply = status switch
            {
                ParseStatus.Ok => map.ReplyFor(request.Slice(clientLength + 1), out found),
                ParseStatus.BadClient => BadClientReply,
                _ => MalformedReply,
            };
            WriteAnswer(request, status, clientLength, reply, kind == FrameKind.Legacy, timestamp);
            if (_server.HasRequestListeners)
            {
                _server.RaiseRequestServed(this, request, clientLength, status, reply);
            }

            errors += found ? 0 : 1;
        }

        EndBatch(requests, errors);
        return close;
    }

    /// <summary>
    /// Answers through the server's handler: the read's requests are copied out (the handler is awaited
    /// between them, and the receive buffer is not touched meanwhile, but spans cannot cross an await),
    /// then handed over one at a time, so replies keep request order.
    /// </summary>
    private async Task<bool> AnswerWithHandlerAsync()
    {
        var timestamp = BeginBatch();
        var pending = new List<(byte[] Request, bool Legacy)>();
        byte[]? tooLong = null; // a too-long request after the others: logged by its head, answered last
        FrameKind kind;
        while ((kind = _framer.TryReadFrame(out var request)) != FrameKind.None)
        {
            if (kind == FrameKind.TooLong)
            {
                tooLong = request.ToArray();
                break;
            }

            pending.Add((request.ToArray(), kind == FrameKind.Legacy));
        }

        int requests = 0, errors = 0;
        foreach (var (request, legacy) in pending)
        {
            requests++;
            var status = RequestParser.Parse(request, out var clientLength);
            byte[] reply;
            if (status == ParseStatus.Ok)
            {
                var keyRequest = new KeyRequest(
                    Encoding.ASCII.GetString(request, 0, clientLength),
                    Encoding.ASCII.GetString(request, clientLength + 1, request.Length - clientLength - 1),
                    Id,
                    RemoteEndPoint);
                var (text, failed) = await HandleAsync(keyRequest).ConfigureAwait(false);
                errors += failed ? 1 : 0;
                reply = Encoding.UTF8.GetBytes(text);
                if (_server.HasRequestListeners)
                {
                    _server.RaiseRequestServed(this, keyRequest, text);
                }
            }
            else
            {
                errors++;
                reply = status == ParseStatus.BadClient ? BadClientReply : MalformedReply;
            }

            WriteAnswer(request, status, clientLength, reply, legacy, timestamp);
        }

        if (tooLong is not null)
        {
            requests++;
            errors++;
            AnswerTooLong(tooLong, timestamp);
        }

        EndBatch(requests, errors);
        return tooLong is not null;
    }

    /// <summary>Runs the handler with the server's timeout; the reply is one line, and errors are replies.</summary>
    private async Task<(string Reply, bool Failed)> HandleAsync(KeyRequest request)
    {
        // Two tokens: the handler's is cancelled only on a timeout (it stops the run); the timer's ends the
        // timer. Cancelling the handler's after a success could stop whatever the handler does next.
        using var stopHandler = new CancellationTokenSource();
        using var stopTimer = new CancellationTokenSource();
        Task<string> work;
        try
        {
            work = _server.Handler!.HandleAsync(request, stopHandler.Token);
        }
        catch (Exception e)
        {
            return (Replies.HandlerFailed(e.Message), true);
        }

        var timeout = Task.Delay(_server.HandlerTimeout, stopTimer.Token);
        if (await Task.WhenAny(work, timeout).ConfigureAwait(false) != work)
        {
            stopHandler.Cancel();
            _ = work.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed: a late failure is not news
            return (Replies.HandlerTimedOut, true);
        }

        stopTimer.Cancel();
        try
        {
            var reply = Replies.OneLine(await work.ConfigureAwait(false) ?? string.Empty);
            return (reply, reply.StartsWith(Replies.ErrorPrefix, StringComparison.Ordinal));
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerException: { } first } ? first : e;
            return (Replies.HandlerFailed(inner.Message), true);
        }
    }

    private string BeginBatch()
    {
        _output.Clear();
        _log?.Clear();
        var timestamp = _log is null ? string.Empty : ConversationLine.Timestamp(_server.Timestamps);
        if (_log is not null && !_connectLogged)
        {
            ConversationLine.WriteSystem(_log, timestamp, ConversationLine.Connected);
            _connectLogged = true;
        }

        return timestamp;
    }

    private void EndBatch(int requests, int errors)
    {
        if (requests > 0)
        {
            LastActivity = Environment.TickCount;
            Requests += requests;
            Errors += errors;
        }

        if (_log is { Length: > 0 })
        {
            HandToLog(_log);
        }
    }

    private void HandToLog(ByteBuffer lines) =>
        _server.Logger!.Log(Microsoft.Extensions.Logging.LogLevel.Information, KeyServer.ConversationEvent, new ConversationBatch(lines.Segment), null, ConversationBatch.Format);

    private void AnswerTooLong(ReadOnlySpan<byte> request, string timestamp)
    {
        _output.Write(TooLongReply);
        if (_log is not null)
        {
            // Only the head is logged; the note keeps the line from reading as a valid request.
            var head = request.Slice(0, Math.Min(request.Length, LoggedRequestLimit));
            ConversationLine.WriteRequest(_log, timestamp, head, $"...(truncated, {request.Length} bytes)");
            ConversationLine.WriteReply(_log, timestamp, default, TooLongReply.AsSpan(0, TooLongReply.Length - 1));
        }
    }

    /// <summary>Writes one reply, in the request's framing, and its two log lines.</summary>
    private void WriteAnswer(ReadOnlySpan<byte> request, ParseStatus status, int clientLength, byte[] reply, bool legacy, string timestamp)
    {
        _output.Write(reply);
        if (!legacy)
        {
            _output.WriteByte((byte)'\n');
        }

        if (_log is not null)
        {
            ConversationLine.WriteRequest(_log, timestamp, request);
            ConversationLine.WriteReply(_log, timestamp, status == ParseStatus.Ok ? request.Slice(0, clientLength) : default, reply);
        }
    }

    /// <summary>
    /// After an error that ends the connection: stop sending, then read and discard what the peer is still
    /// sending for a moment, so closing does not reset the connection before the error reply is read.
    /// </summary>
    private async Task DrainAndCloseAsync()
    {
        _socket!.Shutdown(SocketShutdown.Send);
        var sink = new byte[4096]; // not the pooled buffer: a receive may still be pending when we give up
        var deadline = Environment.TickCount + 1000;
        var discarded = 0;
        while (discarded < 4 * 1024 * 1024)
        {
            var remaining = deadline - Environment.TickCount;
            if (remaining <= 0)
            {
                break;
            }

            var pending = SocketIo.ReceiveTask(_socket!, sink);
            if (await Task.WhenAny(pending, Task.Delay(remaining)).ConfigureAwait(false) != pending)
            {
                break;
            }

            var count = await pending.ConfigureAwait(false);
            if (count == 0)
            {
                break;
            }

            discarded += count;
        }
    }

    private void DisposeSocket(bool shutdownFirst = false)
    {
        if (_socket is null)
        {
            CloseDescriptor(shutdownFirst);
            return;
        }

        if (Interlocked.Exchange(ref _socketClosed, 1) == 0)
        {
            if (shutdownFirst)
            {
                try
                {
                    _socket.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                    // Already reset by the peer.
                }
            }

            _socket.Dispose();
        }
    }

    /// <summary>
    /// Closes the socket, logs the disconnect, returns the buffers. Once only: a stop may close a connection
    /// whose own path is closing it too, and a buffer returned twice to the pool would be shared.
    /// </summary>
    private void Close(bool shutdownFirst = true)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            DisposeSocket(shutdownFirst);

            if (_log is not null)
            {
                _log.Clear();
                var timestamp = ConversationLine.Timestamp(_server.Timestamps);
                if (!_connectLogged)
                {
                    ConversationLine.WriteSystem(_log, timestamp, ConversationLine.Connected);
                }

                ConversationLine.WriteSystem(_log, timestamp, ConversationLine.Disconnected);
                HandToLog(_log);
            }
        }
        finally
        {
            _server.Remove(this);
            _output.Dispose();
            _log?.Dispose();
            ArrayPool<byte>.Shared.Return(_framer.ReceiveBuffer);
        }
    }
}
