using System;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Client;

/// <summary>What a probe found.</summary>
public sealed class ProbeResult
{
    public ProbeResult(bool reachable, TimeSpan? latency, string? reply, string? error)
        : this(reachable, reachable, latency, reply, error)
    {
    }

    /// <summary>A probe's findings: connected (the TCP connection, and the TLS handshake with TLS, succeeded) and
    /// reachable (a server of the protocol answered: a reply of the protocol, error replies included).</summary>
    public ProbeResult(bool connected, bool reachable, TimeSpan? latency, string? reply, string? error)
    {
        Connected = connected;
        Reachable = reachable;
        Latency = latency;
        Reply = reply;
        Error = error;
    }

    /// <summary>The TCP connection (and, with TLS, the handshake) succeeded.</summary>
    public bool Connected { get; }

    /// <summary>A server of the protocol answered: the probe's reply is the protocol's (an error reply counts).</summary>
    public bool Reachable { get; }

    public TimeSpan? Latency { get; }

    public string? Reply { get; }

    /// <summary>Why the server is not reachable; null when it is.</summary>
    public string? Error { get; }
}

/// <summary>
/// Checks a server: a TCP connect (and, with TLS, a handshake), and optionally one request (<c>probe 0</c>)
/// with its reply.
/// </summary>
public static class KeyProbe
{
    public const string ProbeRequest = "probe 0";

    private const string ProbeKey = "0";

    /// <summary>A refused port answers at once; a silent host is given up on after <paramref name="timeout"/>,
    /// whichever step it is at (the name lookup, the connect, the reply).</summary>
    public static Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, CancellationToken cancellationToken) =>
        ProbeAsync(computerName, port, timeout, sendRequest, null, null, cancellationToken);

    /// <summary>
    /// As the other overload; with <paramref name="tls"/>, the server is reachable only when the TLS handshake
    /// succeeds (its failure is the result's Error), and <paramref name="targetHost"/> (or
    /// <paramref name="computerName"/>) is the name its certificate must carry. A server certificate the client
    /// does not trust is not a result but a <see cref="TlsCertificateUntrustedException"/>: a configuration error.
    /// </summary>
    public static Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, TlsClientSettings? tls, string? targetHost, CancellationToken cancellationToken) =>
        ProbeAsync(computerName, port, timeout, sendRequest, tls, targetHost, checkReplyForm: true, cancellationToken);

    /// <summary>
    /// As the other overloads; the reply is judged by <see cref="ReplyCheck"/>: one that is not the protocol's
    /// (an HTTP server's, a reply cut off) makes the server unreachable, with the reply kept and the reason in
    /// Error. With <paramref name="checkReplyForm"/> false, any one-line reply counts (Test-KeyServer -SkipReplyCheck).
    /// </summary>
    public static async Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, TlsClientSettings? tls, string? targetHost, bool checkReplyForm, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var connected = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var replies = new ReplyReader(lineFramed: true);
        deadline.CancelAfter(timeout);
        try
        {
            var endPoint = await KeyClient.ResolveAsync(computerName, port, deadline.Token).ConfigureAwait(false);
            using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var abort = deadline.Token.Register(socket.Dispose); // the socket exists: a timeout closes it under the call
            deadline.Token.ThrowIfCancellationRequested();
            await socket.ConnectAsync(endPoint).ConfigureAwait(false);
            connected = true;
            using Stream stream = tls is null
                ? new NetworkStream(socket, ownsSocket: false)
                : await TlsHandshake.AuthenticateAsClientAsync(new NetworkStream(socket, ownsSocket: false), tls, targetHost ?? computerName, deadline.Token).ConfigureAwait(false);
            if (!sendRequest)
            {
                return new ProbeResult(true, stopwatch.Elapsed, null, null);
            }

            var request = Encoding.ASCII.GetBytes(ProbeRequest + "\n");
            await stream.WriteAsync(request, 0, request.Length, deadline.Token).ConfigureAwait(false);
            var (reply, ended) = await ReadReplyAsync(stream, replies, deadline.Token).ConfigureAwait(false);
            var latency = stopwatch.Elapsed;
            if (reply is null)
            {
                // Under TLS 1.3 a close without a reply is also how a server refusing the client's certificate looks:
                // the handshake ends on the client's side before the server has judged it.
                return new ProbeResult(true, false, latency, null, "the server closed the connection without a reply");
            }

            if (!ended)
            {
                return new ProbeResult(true, false, latency, reply, $"the server closed the connection before the reply's line end; {ReplyCheck.Expected(ProbeKey)}");
            }

            return ReplyCheck.Classify(reply, ProbeKey, checkReplyForm) == ReplyKind.UnexpectedReply
                ? new ProbeResult(true, false, latency, reply, $"the reply is not the protocol's; {ReplyCheck.Expected(ProbeKey)}")
                : new ProbeResult(true, true, latency, reply, null);
        }
        catch (TlsHandshakeException e) when (e is not TlsCertificateUntrustedException)
        {
            return new ProbeResult(false, null, null, e.Message);
        }
        catch (Exception e) when (e is SocketException || e is IOException || e is ObjectDisposedException || e is OperationCanceledException || e is ProtocolViolationException)
        {
            var why = deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.###} s"
                : e switch
                {
                    SocketException s => s.SocketErrorCode.ToString(),
                    IOException { InnerException: SocketException s } => s.SocketErrorCode.ToString(),
                    IOException io => io.Message, // a TLS alert: the server refused the client's certificate
                    ProtocolViolationException p => p.Message,
                    _ => "cancelled",
                };
            if (replies.PendingCount > 0)
            {
                why += $"; the reply began '{Encoding.UTF8.GetString(replies.TakeUnfinished())}' but did not end (a server in the seed's framing, with no line end?)";
            }

            return new ProbeResult(connected, false, connected ? stopwatch.Elapsed : null, null, why);
        }
    }

    /// <summary>The first reply line, and whether it ended (false: the server closed in the middle of it); a null
    /// reply when nothing came. A reply still unfinished when the call is cancelled stays in <paramref name="replies"/>.</summary>
    private static async Task<(string? Reply, bool Ended)> ReadReplyAsync(Stream stream, ReplyReader replies, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        int count;
        while ((count = await stream.ReadAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (replies.Read(buffer.AsSpan(0, count)).Next(out var reply))
            {
                return (Encoding.UTF8.GetString(reply.ToArray()), true);
            }
        }

        return replies.PendingCount > 0 ? (Encoding.UTF8.GetString(replies.TakeUnfinished()), false) : (null, true);
    }
}
