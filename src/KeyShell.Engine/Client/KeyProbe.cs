using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

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

    /// <summary>A refused port answers at once; a silent host is given up on after <paramref name="timeout"/>,
    /// whichever step it is at (the name lookup, the connect, the reply).</summary>
    public static async Task<ProbeResult> ProbeAsync(string computerName, int port, TimeSpan timeout, bool sendRequest, CancellationToken cancellationToken)
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
            if (!sendRequest)
            {
                return new ProbeResult(true, stopwatch.Elapsed, null, null);
            }

            var request = Encoding.ASCII.GetBytes(ProbeRequest + "\n");
            await socket.SendAsync(new ArraySegment<byte>(request), SocketFlags.None).ConfigureAwait(false);
            return new ProbeResult(true, stopwatch.Elapsed, await ReadReplyAsync(socket).ConfigureAwait(false), null);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is OperationCanceledException || e is ProtocolViolationException)
        {
            var why = deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.###} s"
                : e switch
                {
                    SocketException s => s.SocketErrorCode.ToString(),
                    ProtocolViolationException p => p.Message,
                    _ => "cancelled",
                };
            return new ProbeResult(connected, connected ? stopwatch.Elapsed : null, null, why);
        }
    }

    /// <summary>The first reply line (or what came before the server closed).</summary>
    private static async Task<string?> ReadReplyAsync(Socket socket)
    {
        using var replies = new ReplyReader(lineFramed: true);
        var buffer = new byte[1024];
        int count;
        while ((count = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None).ConfigureAwait(false)) > 0)
        {
            if (replies.Read(buffer.AsSpan(0, count)).Next(out var reply))
            {
                return Encoding.UTF8.GetString(reply.ToArray());
            }
        }

        return null;
    }
}
