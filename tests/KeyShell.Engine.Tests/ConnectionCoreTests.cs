using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Client;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The defects the one connection core fixed, each pinned on both transports.</summary>
public class ConnectionCoreTests : TransportTests
{
    [Fact]
    public void AClientThatStopsReadingIsClosedAfterTheIdleTimeoutAndFreesItsSlot()
    {
        using var server = StartServer(o =>
        {
            o.MaxConnections = 2;
            o.IdleTimeout = TimeSpan.FromSeconds(1);
        });
        var stalled = Enumerable.Range(0, 2).Select(_ => StalledClient(server.Port)).ToArray();
        try
        {
            // Both slots are taken by clients whose replies pile up unread; the server stops reading from
            // them once their replies no longer drain, and closes them after the idle timeout.
            Eventually(() => server.IdleClosed == 2 && server.ActiveConnections == 0, "both stalled clients closed");
            using var next = Connect(server.Port);
            Send(next, "3 7\n");
            Assert.Equal(Reply(7), ReadLines(next, 1).Single());
            Assert.Equal(0, server.Rejected);
        }
        finally
        {
            foreach (var (socket, _) in stalled)
            {
                socket.Dispose();
            }
        }

        Assert.All(stalled, s => Assert.True(s.Sending.Wait(Bound), "the stalled client's sends never ended"));
        server.Stop();
        var log = LogLines(server.LogPath!);
        Assert.Equal(2, log.Count(l => l == "SYSTEM: Client closed (replies not read)"));
    }

    [Fact]
    public void AStartThatFailsAtItsLastStepLeavesNothingBehind()
    {
        KeyServer? started = null;
        var port = FreePort();
        var failure = Assert.Throws<InvalidOperationException>(() => StartServer(o =>
        {
            o.Port = port;
            o.StartedForTests = server =>
            {
                started = server;
                throw new InvalidOperationException("the last step failed");
            };
        }));
        Assert.Equal("the last step failed", failure.Message);
        Assert.NotNull(started);
        Assert.Equal(KeyServerState.Stopped, started!.State);
#if !ENGINE_NETSTANDARD
        if (started.Acceptor is EventLoopAcceptor acceptor)
        {
            Assert.All(acceptor.Loops, loop => Assert.False(loop.IsRunning, "an event loop outlived the failed start"));
        }
#endif

        using var again = StartServer(o => o.Port = port); // the port is free again
        using var client = Connect(again.Port);
        Send(client, "1 1\n");
        Assert.Equal(Reply(1), ReadLines(client, 1).Single());
    }

    [Fact]
    public async Task CountersReadWhileServingNeverGoBackAndEndExact()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var stop = new CancellationTokenSource();
        var readings = new ConcurrentQueue<(long Requests, long Connections)>();
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                readings.Enqueue((server.Requests, server.Connections));
            }
        });
        foreach (var mode in new[] { ConnectionMode.Persistent, ConnectionMode.PerMessage })
        {
            var options = new LoadOptions { Port = server.Port, Concurrency = 4, Count = 2_000, Connection = mode };
            var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
            Assert.Equal(0, result.Errors);
        }

        Eventually(() => server.ActiveConnections == 0, "every connection closed");
        stop.Cancel();
        await reader.WaitAsync(Bound);
        var previous = (Requests: 0L, Connections: 0L);
        foreach (var reading in readings)
        {
            Assert.True(reading.Requests >= previous.Requests && reading.Connections >= previous.Connections, $"a counter went back: {previous} then {reading}");
            previous = reading;
        }

        Assert.Equal(4_000, server.Requests);
        Assert.Equal(4 + 2_000, server.Connections);
    }

    /// <summary>A client that writes 1 MB of requests with a small receive buffer and reads nothing.</summary>
    private static (Socket Socket, Task Sending) StalledClient(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        socket.Connect(IPAddress.Loopback, port);
        var requests = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("1 1\n", 256 * 1024)));
        var sending = Task.Run(() =>
        {
            try
            {
                socket.Send(requests); // blocks once the server stops reading; ends when the server closes
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Closed by the server (or by the test, once the server let go).
            }
        });
        return (socket, sending);
    }
}

public class ConnectionCoreTestsOnTheAsyncPath : ConnectionCoreTests
{
    protected override bool UseEventLoops => false;
}
