using System;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
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

    /// <summary>A refused port answers at once; a silent host is given up on after <paramref name="timeout"/>.</summary>
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
        Socket? socket = null;
        Stream? stream = null;
        var connected = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var abort = deadline.Token.Register(() => socket?.Dispose());
        try
        {
            var endPoint = await KeyClient.ResolveAsync(computerName, port).ConfigureAwait(false);
            socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endPoint).ConfigureAwait(false);
            connected = true;
            stream = new NetworkStream(socket, ownsSocket: false);
            if (tls is not null)
            {
                stream = await TlsHandshake.AuthenticateAsClientAsync(stream, tls, targetHost ?? computerName, deadline.Token).ConfigureAwait(false);
            }

            if (!sendRequest)
            {
                return new ProbeResult(true, stopwatch.Elapsed, null, null);
            }

            var request = Encoding.ASCII.GetBytes(ProbeRequest + "\n");
            await stream.WriteAsync(request, 0, request.Length, deadline.Token).ConfigureAwait(false);
            var reply = new StringBuilder();
            var buffer = new byte[1024];
            while (reply.Length < 64 * 1024)
            {
                var count = await stream.ReadAsync(buffer, 0, buffer.Length, deadline.Token).ConfigureAwait(false);
                if (count == 0)
                {
                    break;
                }

                reply.Append(Encoding.UTF8.GetString(buffer, 0, count));
                if (reply.ToString().IndexOf('\n') >= 0)
                {
                    break;
                }
            }

            var text = reply.ToString();
            if (text.Length == 0)
            {
                // Under TLS 1.3 this is also how a server refusing the client's certificate looks: the handshake
                // ends on the client's side before the server has judged it.
                return new ProbeResult(true, stopwatch.Elapsed, null, "the server closed the connection without a reply");
            }

            var end = text.IndexOf('\n');
            return new ProbeResult(true, stopwatch.Elapsed, (end >= 0 ? text.Substring(0, end) : text).TrimEnd('\r'), null);
        }
        catch (TlsHandshakeException e) when (e is not TlsCertificateUntrustedException)
        {
            return new ProbeResult(false, null, null, e.Message);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is IOException || e is OperationCanceledException)
        {
            var why = deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.###} s"
                : e is SocketException s ? s.SocketErrorCode.ToString()
                : e is IOException { InnerException: SocketException inner } ? inner.SocketErrorCode.ToString()
                : e is IOException io ? io.Message
                : "cancelled";
            return new ProbeResult(connected, connected ? stopwatch.Elapsed : null, null, why);
        }
        finally
        {
            stream?.Dispose();
            socket?.Dispose();
        }
    }
}
