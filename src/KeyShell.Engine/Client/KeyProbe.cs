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
    {
        Reachable = reachable;
        Latency = latency;
        Reply = reply;
        Error = error;
    }

    public bool Reachable { get; }

    public TimeSpan? Latency { get; }

    public string? Reply { get; }

    public string? Error { get; }
}

/// <summary>
/// Checks a server: a TCP connect (and, with TLS, a handshake), and optionally one request (<c>probe 0</c>)
/// with its reply.
/// </summary>
public static class KeyProbe
{
    public const string ProbeRequest = "probe 0";

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
    public static async Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, TlsClientSettings? tls, string? targetHost, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var connected = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
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
            var reply = await ReadReplyAsync(stream, deadline.Token).ConfigureAwait(false);

            // Under TLS 1.3 a close without a reply is also how a server refusing the client's certificate looks:
            // the handshake ends on the client's side before the server has judged it.
            return new ProbeResult(true, stopwatch.Elapsed, reply, reply is null ? "the server closed the connection without a reply" : null);
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
            return new ProbeResult(connected, connected ? stopwatch.Elapsed : null, null, why);
        }
    }

    /// <summary>The first reply line; what came before the server closed, when it never ended the line; or
    /// null when nothing came.</summary>
    private static async Task<string?> ReadReplyAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var replies = new ReplyReader(lineFramed: true);
        var buffer = new byte[1024];
        int count;
        while ((count = await stream.ReadAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (replies.Read(buffer.AsSpan(0, count)).Next(out var reply))
            {
                return Encoding.UTF8.GetString(reply.ToArray());
            }
        }

        return replies.PendingCount > 0 ? Encoding.UTF8.GetString(replies.TakeUnfinished()) : null;
    }
}
