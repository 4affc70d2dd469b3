using System;
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
/// returns). One exchange at a time; a cancel (the handler timeout) closes the socket under the exchange.
/// Opened from an event loop's thread, the connection is served on that loop: the upstream's reply completes
/// there, where the client's connection waits for it, with no hop to another thread and back.
/// </summary>
internal sealed class UpstreamLink : IDisposable
{
    private readonly Stream _stream;
    private readonly ReplyReader _replies;
    private readonly byte[] _buffer = new byte[4096];

    private UpstreamLink(Stream stream, Framing framing)
    {
        _stream = stream;
        _replies = new ReplyReader(framing == Framing.Line);
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

    /// <summary>Sends <paramref name="request"/> (already framed) and returns the reply's text, without its line end.</summary>
    public async Task<string> ExchangeAsync(byte[] request, CancellationToken cancellationToken)
    {
        Used = true;
        var received = false;
        try
        {
            using (cancellationToken.Register(static s => ((IDisposable)s!).Dispose(), _stream))
            {
                // The transports' Memory overloads (no Task per call); a cancel reaches them by closing the socket.
                await TransportPlatform.WriteAsync(_stream, request, request.Length).ConfigureAwait(false);
                while (true)
                {
                    var count = await TransportPlatform.ReadAsync(_stream, _buffer).ConfigureAwait(false);
                    if (count == 0)
                    {
                        throw _replies.PendingCount > 0
                            ? new UpstreamFailedException(Replies.UpstreamClosedMidReply(Encoding.UTF8.GetString(_replies.TakeUnfinished())), false)
                            : new UpstreamFailedException(Replies.UpstreamClosed, true);
                    }

                    received = true;
                    if (_replies.Read(_buffer.AsSpan(0, count)).Next(out var reply))
                    {
                        // A seed-framed reply is a whole read: one that ends with LF (a server of its kind that adds one) loses it.
                        var text = Encoding.UTF8.GetString(ReplyCheck.WithoutLineEnd(reply).ToArray());
                        _replies.Reset(); // one reply per request: lines the upstream sent beyond it are not answers to anything
                        return text;
                    }
                }
            }
        }
        catch (Exception e) when (e is not UpstreamFailedException)
        {
            _replies.Reset(); // only the exchange touches the reader: after one, it holds nothing
            cancellationToken.ThrowIfCancellationRequested();
            throw e switch
            {
                Protocol.ProtocolViolationException => new UpstreamFailedException(Replies.UpstreamReplyTooLong, false, e),
                IOException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionReset } } => new UpstreamFailedException(Replies.UpstreamReset, !received, e),
                SocketException { SocketErrorCode: SocketError.ConnectionReset } => new UpstreamFailedException(Replies.UpstreamReset, !received, e),
                _ => new UpstreamFailedException(Replies.UpstreamClosed, !received, e),
            };
        }
    }

    /// <summary>Closes the connection; any thread. An exchange under way then fails (and leaves the reply
    /// reader empty itself: its pooled buffer is never touched from two threads).</summary>
    public void Dispose() => _stream.Dispose();
}
