using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using KeyShell.Engine.Transport;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Sessions;

/// <summary>Why the server closed a connection itself (logged before its disconnect line).</summary>
internal enum CloseReason
{
    None,
    /// <summary>No request for the idle timeout.</summary>
    Idle,
    /// <summary>Replies not read for the idle timeout.</summary>
    Stalled,
}

/// <summary>
/// One accepted connection's protocol. Each read is framed into requests, all of them are answered into
/// one output buffer that the driver sends with one write, so pipelined requests cost one round trip
/// and replies keep request order. The read's log lines are handed to the log before the replies are
/// sent: a reply the client has seen is always in the log.
/// </summary>
internal sealed partial class ServerSession : ISession, IConnectionOwner
{
    private const int LoggedRequestLimit = 256; // a too-long request is logged by its head only

    private static readonly byte[] MalformedReply = Encoding.ASCII.GetBytes(Replies.Malformed);
    private static readonly byte[] BadClientReply = Encoding.ASCII.GetBytes(Replies.BadClient);
    private static readonly byte[] TooLongReply = Encoding.ASCII.GetBytes(Replies.TooLong + "\n");

    private readonly ServerContext _context;
    private readonly RequestFramer _framer;
    private IConnection? _connection;
    private readonly object _logGate = new(); // a handler's late batch against the close: see EndBatch
    private bool _connectLogged; // the connect line has reached the log
    private bool _closed;
    private long _requests;
    private long _errors;
    private int _lastActivity;
    private int _closeReason;
    private bool _refused;

    public ServerSession(ServerContext context, long id, IPEndPoint? peer)
    {
        _context = context;
        Id = id;
        Peer = peer;
        _framer = new RequestFramer(context.MaxLineLength);
        _lastActivity = Environment.TickCount;
        OpenedAt = System.Diagnostics.Stopwatch.GetTimestamp();
    }

    public long Id { get; }

    public IPEndPoint? Peer { get; }

    public string? RemoteEndPoint => Peer?.ToString();

    /// <summary>Stopwatch timestamp of the accept (for the connection duration meter).</summary>
    public long OpenedAt { get; }

    /// <summary>Requests answered on this connection, errors included.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Environment.TickCount when the last complete request arrived (or the connection opened).</summary>
    public int LastActivity => Volatile.Read(ref _lastActivity);

    public IConnection? Connection => Volatile.Read(ref _connection);

    /// <summary>Why the server closed the connection itself, if it did.</summary>
    public CloseReason CloseReason => (CloseReason)Volatile.Read(ref _closeReason);

    /// <summary>True while a handler computes replies: the handler's own timeout bounds it, not the idle one.</summary>
    public bool IsHandling => Volatile.Read(ref _handling) == 1;

    /// <summary>
    /// The idle timeout's look at this connection (the table's sweep, any thread): one whose replies have not
    /// drained for <paramref name="idleTimeoutMs"/> is aborted (a client may stop reading; it may not keep its
    /// slot, as memcached closes slow readers); one that has completed no request for that long is closed if
    /// it is still waiting for one at that moment (a request under way, or a handler, keeps it open).
    /// </summary>
    public void Sweep(int now, int idleTimeoutMs)
    {
        if (Connection is not { } connection)
        {
            return;
        }

        var blockedSince = connection.BlockedSince;
        if (blockedSince != 0)
        {
            if (unchecked(now - blockedSince) > idleTimeoutMs && CloseFor(CloseReason.Stalled))
            {
                connection.Abort();
            }
        }
        else if (!IsHandling && unchecked(now - LastActivity) > idleTimeoutMs && connection.TryClaimIdle())
        {
            CloseFor(CloseReason.Idle);
            connection.CloseClaimed();
        }
    }

    /// <summary>Ends the connection at once (a stop past its grace); any thread.</summary>
    public void Abort() => Connection?.Abort();

    /// <summary>Records why the server closes the connection (logged when it has closed), counted once and
    /// before the socket closes: a client that sees the end sees the count. False when a reason was set already.</summary>
    private bool CloseFor(CloseReason reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, (int)reason, (int)CloseReason.None) != (int)CloseReason.None)
        {
            return false;
        }

        _context.Events.ClosedByServer(this, reason);
        return true;
    }

    public Step Opened(IConnection connection, Scratch scratch)
    {
        // A full fence, then the stop's flag: a stop that began as this connection was admitted either finds it
        // in the table with its connection, or is seen here.
        Interlocked.Exchange(ref _connection, connection);
        if (_context.IsStopping)
        {
            connection.CloseWhenIdle();
        }

        return Step.Receive;
    }

    public Step Received(ReadOnlySpan<byte> data, Scratch scratch)
    {
        if (_stalled)
        {
            return Step.Receive; // a Stall fault: what the client sends is discarded, unanswered
        }

        if (!_connectLogged && _context.PlainText && Interlocked.Read(ref _requests) == 0 && _framer.PendingCount == 0 && TlsDetection.StartsWithTlsHandshake(data))
        {
            // A TLS client dialled a plain-text port: refused at its first bytes, its ClientHello never a request.
            _refused = true;
            _context.Events.Refused(ClientRefusal.Handshake, RemoteEndPoint, "a TLS client on a plain-text port");
            return Step.Close;
        }

        return _context.Handler is null ? Answer(_framer.Read(data), scratch, ended: false) : TakeForHandler(_framer.Read(data), ended: false);
    }

    public Step Ended(Scratch scratch)
    {
        if (_stalled || _framer.PendingCount == 0)
        {
            return Step.Close; // closed between requests
        }

        // Half-closed after a request without terminator: answer it, then close.
        return _context.Handler is null ? Answer(_framer.EndOfStream(), scratch, ended: true) : TakeForHandler(_framer.EndOfStream(), ended: true);
    }

    public Step Failed(Exception error)
    {
        if (!IsConnectionError(error))
        {
            _context.Events.Report(this, error);
        }

        return Step.Close;
    }

    /// <summary>A server connection is its session: when it is over, so is the session.</summary>
    public void ConnectionEnded(Step last) => Closed();

    /// <summary>Logs the disconnect (and why the server closed it), then leaves the server's table. Once.</summary>
    public void Closed()
    {
        try
        {
            lock (_logGate)
            {
                _closed = true;
            }

            if (_context.Log is { } logger && !_refused)
            {
                using var lines = new ByteBuffer(128);
                var timestamp = ConversationLine.Timestamp(_context.Timestamps);
                if (!_connectLogged)
                {
                    ConversationLine.WriteSystem(lines, timestamp, ConversationLine.Connected);
                }

                switch (CloseReason)
                {
                    case CloseReason.Idle:
                        ConversationLine.WriteSystem(lines, timestamp, ConversationLine.ClosedIdle);
                        break;
                    case CloseReason.Stalled:
                        ConversationLine.WriteSystem(lines, timestamp, ConversationLine.ClosedStalled);
                        break;
                }

                ConversationLine.WriteSystem(lines, timestamp, ConversationLine.Disconnected);
                HandToLog(logger, lines);
            }
        }
        catch (Exception e)
        {
            _context.Events.Report(this, e);
        }
        finally
        {
            _framer.Dispose();
            (_context.Handler as IConnectionAwareHandler)?.ConnectionClosed(Id);
            _context.Retire(this);
        }
    }

    /// <summary>Errors that only mean the connection ended (reset, closed by a stop or a timeout).</summary>
    internal static bool IsConnectionError(Exception error) =>
        error is SocketException || error is IOException || error is ObjectDisposedException || error is OperationCanceledException;

    /// <summary>Answers every complete request of <paramref name="frames"/> from the key map.</summary>
    private Step Answer(RequestFramer.Frames frames, Scratch scratch, bool ended)
    {
        var timestamp = BeginBatch(scratch.Log);
        var map = _context.KeyMap; // read once: a map swapped meanwhile applies from the next read
        var faults = _context.RequestFaults; // null when no fault acts on requests: all that faults cost here
        int requests = 0, errors = 0;
        var tooLong = false;
        FrameKind kind;
        while ((kind = frames.Next(out var request)) != FrameKind.None)
        {
            requests++;
            if (kind == FrameKind.TooLong)
            {
                errors++;
                AnswerTooLong(request, scratch, timestamp);
                tooLong = true;
                break;
            }

            var status = RequestParser.Parse(request, out var clientLength);
            var legacy = kind == FrameKind.Legacy;
            if (faults is not null && status == ParseStatus.Ok && faults.Select(request.Slice(0, clientLength), request.Slice(clientLength + 1)) is { } fault)
            {
                if (AnswerFaulted(fault, request, clientLength, legacy, map, scratch, timestamp, ref errors) is { } stop)
                {
                    if (stop == Step.Sleep && !_resetAfterSend)
                    {
                        KeepRest(ref frames, request, legacy, ended);
                    }

                    EndBatch(scratch.Log, requests, errors);
                    return stop == Step.Receive && ended ? Step.Close : stop;
                }

                continue;
            }

            errors += AnswerFromMap(request, status, clientLength, legacy, map, scratch, timestamp, logRequest: true) ? 0 : 1;
        }

        EndBatch(scratch.Log, requests, errors);
        return NextStep(ended, tooLong);
    }

    /// <summary>One request answered from the map, with its log lines (the request's unless logged already,
    /// before a hold); false when the reply is an error.</summary>
    private bool AnswerFromMap(ReadOnlySpan<byte> request, ParseStatus status, int clientLength, bool legacy, KeyMap map, Scratch scratch, string timestamp, bool logRequest)
    {
        var found = false;
        var reply = status switch
        {
            ParseStatus.Ok => map.ReplyFor(request.Slice(clientLength + 1), out found),
            ParseStatus.BadClient => BadClientReply,
            _ => MalformedReply,
        };
        WriteAnswer(request, status, clientLength, reply, legacy, scratch, timestamp, logRequest);
        if (_context.Events.HasRequestListeners)
        {
            _context.Events.Served(this, request, clientLength, status, reply);
        }

        return found;
    }

    private Step NextStep(bool ended, bool tooLong) =>
        ended ? Step.Close
        : tooLong ? Step.DrainThenClose
        : _context.IsStopping ? Step.DrainThenClose // a stop waits for busy connections: this one is done, and
                                                    // requests it has not read must not reset the replies in flight
        : Step.Receive;

    private string BeginBatch(ByteBuffer log)
    {
        if (_context.Log is null)
        {
            return string.Empty;
        }

        var timestamp = ConversationLine.Timestamp(_context.Timestamps);
        if (!_connectLogged)
        {
            ConversationLine.WriteSystem(log, timestamp, ConversationLine.Connected);
        }

        return timestamp;
    }

    /// <summary>
    /// Counts a batch's requests and hands its lines to the log, before the driver sends its replies.
    /// <paramref name="late"/>: a handler's batch, which may end after its connection was aborted (a stop
    /// past its grace): then its replies are never sent, and its lines are dropped, not logged after the
    /// disconnect.
    /// </summary>
    private void EndBatch(ByteBuffer log, int requests, int errors, bool late = false)
    {
        if (late)
        {
            lock (_logGate)
            {
                if (!_closed)
                {
                    EndBatch(log, requests, errors);
                }
            }

            return;
        }

        if (requests > 0)
        {
            Volatile.Write(ref _lastActivity, Environment.TickCount);
            Interlocked.Add(ref _requests, requests); // one writer, but a reader on 32-bit must not see half of it
            if (errors > 0)
            {
                Interlocked.Add(ref _errors, errors);
            }

            _context.Events.Answered(this, requests, errors);
        }

        if (_context.Log is { } logger && log.Length > 0)
        {
            HandToLog(logger, log);
            _connectLogged = true;
            log.Clear();
        }
    }

    private static void HandToLog(ILogger logger, ByteBuffer lines) =>
        logger.Log(LogLevel.Information, ConversationEvents.Conversation, new ConversationBatch(lines.Segment), null, ConversationBatch.Format);

    private void AnswerTooLong(ReadOnlySpan<byte> request, Scratch scratch, string timestamp)
    {
        scratch.Output.Write(TooLongReply);
        if (_context.Log is not null)
        {
            // Only the head is logged; the note keeps the line from reading as a valid request.
            var head = request.Slice(0, Math.Min(request.Length, LoggedRequestLimit));
            ConversationLine.WriteRequest(scratch.Log, timestamp, head, $"...(truncated, {request.Length} bytes)");
            ConversationLine.WriteReply(scratch.Log, timestamp, default, TooLongReply.AsSpan(0, TooLongReply.Length - 1));
        }
    }

    /// <summary>Writes one reply, in the request's framing, and its two log lines.</summary>
    private void WriteAnswer(ReadOnlySpan<byte> request, ParseStatus status, int clientLength, byte[] reply, bool legacy, Scratch scratch, string timestamp, bool logRequest = true)
    {
        scratch.Output.Write(reply);
        if (!legacy)
        {
            scratch.Output.WriteByte((byte)'\n');
        }

        if (_context.Log is not null)
        {
            if (logRequest)
            {
                ConversationLine.WriteRequest(scratch.Log, timestamp, request);
            }

            ConversationLine.WriteReply(scratch.Log, timestamp, status == ParseStatus.Ok ? request.Slice(0, clientLength) : default, reply);
        }
    }
}
