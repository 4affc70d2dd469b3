using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Server.Upstream;

/// <summary>
/// One connection to the upstream server: a request out, its reply back, in the client's framing and with
/// the client's reply reader (line framing: a reply ends with LF; the seed's: a reply is what one read
/// returns). One exchange at a time; its deadline, or a cancel, closes the socket under the exchange.
/// Opened from an event loop's thread, the connection is served on that loop: the upstream's reply completes
/// there, where the client's connection waits for it, with no hop to another thread and back.
/// </summary>
internal sealed class UpstreamLink : IDisposable
{
    private const int Idle = 0, Exchanging = 1, TimedOut = 2;
    private static readonly long TimerSlack = Stopwatch.Frequency / 50; // a timer may come a little before its time
    private readonly Stream _stream;
    private readonly ReplyReader _replies;
    private readonly bool _lineFramed;
    private readonly byte[] _buffer = new byte[4096];
    private byte[] _request = new byte[64];
    private Timer? _deadline; // one per link, moved for each exchange: no timer made per request
    private long _dueAt; // the running exchange's deadline, in Stopwatch ticks
    private int _state;

    private UpstreamLink(Stream stream, Framing framing)
    {
        _stream = stream;
        _lineFramed = framing == Framing.Line;
        _replies = new ReplyReader(_lineFramed);
    }

    /// <summary>True once the link has carried a request (a later one may find it dropped while idle).</summary>
    public bool Used { get; private set; }

    /// <summary>Connects to <paramref name="remote"/>; a refusal or another connect failure is an
    /// <see cref="UpstreamFailedException"/> with its reply, a cancel an <see cref="OperationCanceledException"/>.</summary>
    public static async Task<UpstreamLink> OpenAsync(IPEndPoint remote, Framing framing, IStreamConnector? loop, CancellationToken cancellationToken)
    {
        if (loop is not null)
        {
            try
            {
                return new UpstreamLink(await loop.ConnectAsync(remote, cancellationToken).ConfigureAwait(false), framing);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw ConnectFailure(e);
            }
        }

        var socket = new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (cancellationToken.Register(static s => ((Socket)s!).Dispose(), socket))
            {
                await socket.ConnectAsync(remote).ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
            return new UpstreamLink(new NetworkStream(socket, ownsSocket: true), framing);
        }
        catch (Exception e)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            throw ConnectFailure(e);
        }
    }

    private static UpstreamFailedException ConnectFailure(Exception e) =>
        e switch
        {
            SocketException { SocketErrorCode: SocketError.ConnectionRefused } => new UpstreamFailedException(Replies.UpstreamRefused, false, e),
            SocketException s => new UpstreamFailedException(Replies.UpstreamUnreachable(s.SocketErrorCode.ToString()), false, e),
            _ => new UpstreamFailedException(Replies.UpstreamUnreachable(e.Message), false, e),
        };

    /// <summary>
    /// Sends <paramref name="request"/> (<c>&lt;client&gt; &lt;key&gt;</c>, framed here) and returns the reply as
    /// one line, without its line end, as the upstream's bytes. A reply not in by <paramref name="timeout"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: none) closes the connection under the exchange and is
    /// <see cref="Replies.UpstreamTimedOut"/>; a cancel closes it too, and is an <see cref="OperationCanceledException"/>.
    /// </summary>
    public async ValueTask<byte[]> ExchangeAsync(byte[] request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _state) == TimedOut)
        {
            // A deadline that came as the last reply did closed the socket: nothing sent, so a new connection may ask.
            throw new UpstreamFailedException(Replies.UpstreamClosed, true);
        }

        Used = true;
        var received = false;
        var length = Frame(request);
        var bounded = timeout != Timeout.InfiniteTimeSpan;
        // Before the state: OnDeadline reads it after. An unbounded exchange is never due, whatever an earlier one left armed.
        Volatile.Write(ref _dueAt, bounded ? Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency) : long.MaxValue);
        Volatile.Write(ref _state, Exchanging);
        if (bounded)
        {
            MoveDeadline(timeout);
        }

        var cancel = cancellationToken.CanBeCanceled ? cancellationToken.Register(static s => ((IDisposable)s!).Dispose(), _stream) : default;
        try
        {
            // The transports' Memory overloads (no Task per call); a deadline or a cancel reaches them by closing the socket.
            await TransportPlatform.WriteAsync(_stream, _request, length).ConfigureAwait(false);
            while (true)
            {
                var count = await TransportPlatform.ReadAsync(_stream, _buffer).ConfigureAwait(false);
                if (count == 0)
                {
                    ThrowIfCutShort(cancellationToken, null); // a socket closed under the read may read as an end, too
                    throw _replies.PendingCount > 0
                        ? new UpstreamFailedException(Replies.UpstreamClosedMidReply(Encoding.UTF8.GetString(_replies.TakeUnfinished())), false)
                        : new UpstreamFailedException(Replies.UpstreamClosed, true);
                }

                received = true;
                if (_replies.Read(_buffer.AsSpan(0, count)).Next(out var reply))
                {
                    // A seed-framed reply is a whole read: one that ends with LF (a server of its kind that adds one) loses it.
                    var text = Replies.OneLine(ReplyCheck.WithoutLineEnd(reply));
                    _replies.Reset(); // one reply per request: lines the upstream sent beyond it are not answers to anything
                    return text;
                }
            }
        }
        catch (Exception e) when (e is not UpstreamFailedException)
        {
            _replies.Reset(); // only the exchange touches the reader: after one, it holds nothing
            ThrowIfCutShort(cancellationToken, e);
            throw e switch
            {
                Protocol.ProtocolViolationException => new UpstreamFailedException(Replies.UpstreamReplyTooLong, false, e),
                IOException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionReset } } => new UpstreamFailedException(Replies.UpstreamReset, !received, e),
                SocketException { SocketErrorCode: SocketError.ConnectionReset } => new UpstreamFailedException(Replies.UpstreamReset, !received, e),
                _ => new UpstreamFailedException(Replies.UpstreamClosed, !received, e),
            };
        }
        finally
        {
            cancel.Dispose();
            // A deadline that came leaves TimedOut: the socket is closed. The timer is left armed (one move per
            // exchange, not two): if it comes while the link is idle, or during a later exchange not yet due, it leaves it.
            Interlocked.CompareExchange(ref _state, Idle, Exchanging);
        }
    }

    /// <summary>An exchange whose socket its cancel or its deadline closed fails as that, whatever the socket said.</summary>
    private void ThrowIfCutShort(CancellationToken cancellationToken, Exception? inner)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Volatile.Read(ref _state) == TimedOut)
        {
            _replies.Reset();
            throw new UpstreamFailedException(Replies.UpstreamTimedOut, false, inner);
        }
    }

    /// <summary>The request as it goes out, in the link's own buffer: its bytes, then LF in line framing.</summary>
    private int Frame(byte[] request)
    {
        var length = request.Length + (_lineFramed ? 1 : 0);
        if (_request.Length < length)
        {
            _request = new byte[Math.Max(length, _request.Length * 2)];
        }

        request.CopyTo(_request, 0);
        if (_lineFramed)
        {
            _request[request.Length] = (byte)'\n';
        }

        return length;
    }

    /// <summary>Arms the link's one timer for the exchange; a link closed meanwhile has none.</summary>
    private void MoveDeadline(TimeSpan due)
    {
        try
        {
            (_deadline ??= new Timer(static s => ((UpstreamLink)s!).OnDeadline(), this, Timeout.Infinite, Timeout.Infinite)).Change(due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed with the link: the exchange fails on its closed socket anyway.
        }
    }

    /// <summary>
    /// The exchange's time is up (a timer thread): if it still runs, its socket closes under it. A callback
    /// armed for an exchange that has ended finds the link idle, or the next exchange not yet due, and leaves it.
    /// </summary>
    private void OnDeadline()
    {
        if (Volatile.Read(ref _state) != Exchanging || Stopwatch.GetTimestamp() < Volatile.Read(ref _dueAt) - TimerSlack)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _state, TimedOut, Exchanging) == Exchanging)
        {
            _stream.Dispose();
        }
    }

    /// <summary>Closes the connection; any thread. An exchange under way then fails (and leaves the reply
    /// reader empty itself: its pooled buffer is never touched from two threads).</summary>
    public void Dispose()
    {
        _stream.Dispose();
        _deadline?.Dispose();
    }
}
