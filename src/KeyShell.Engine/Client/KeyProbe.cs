using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

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

/// <summary>Checks a server: a TCP connect, and optionally one request (<c>probe 0</c>) with its reply.</summary>
public static class KeyProbe
{
    public const string ProbeRequest = "probe 0";

    /// <summary>A refused port answers at once; a silent host is given up on after <paramref name="timeout"/>.</summary>
    public static async Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        Socket? socket = null;
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
            if (!sendRequest)
            {
                return new ProbeResult(true, stopwatch.Elapsed, null, null);
            }

            var request = Encoding.ASCII.GetBytes(ProbeRequest + "\n");
            await socket.SendAsync(new ArraySegment<byte>(request), SocketFlags.None).ConfigureAwait(false);
            var reply = new StringBuilder();
            var buffer = new byte[1024];
            while (reply.Length < 64 * 1024)
            {
                var count = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None).ConfigureAwait(false);
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
            var end = text.IndexOf('\n');
            return new ProbeResult(true, stopwatch.Elapsed, (end >= 0 ? text.Substring(0, end) : text).TrimEnd('\r'), null);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            var why = deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.###} s"
                : e is SocketException s ? s.SocketErrorCode.ToString() : "cancelled";
            return new ProbeResult(connected, connected ? stopwatch.Elapsed : null, null, why);
        }
        finally
        {
            socket?.Dispose();
        }
    }
}
