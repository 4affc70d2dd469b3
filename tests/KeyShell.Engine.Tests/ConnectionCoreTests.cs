using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Client;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The defects the one connection core fixed, each pinned on both transports.</summary>
#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as ConnectionCoreTestsOnTheAsyncPath.
public abstract class ConnectionCoreTests : TransportTests
#else
public class ConnectionCoreTests : TransportTests
#endif
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

    [Fact]
    public void AMeterListenerThatThrowsMidReadIsReportedAndNoReplyGoesAstray()
    {
        using var server = StartServer();
        using var failing = new FailingMeterListener(server.Port, "keyshell.requests", times: 1);
        var errors = 0;
        server.ErrorOccurred += (_, _) => Interlocked.Increment(ref errors);
        using (var first = Connect(server.Port))
        {
            Send(first, "first 1\n");
            Assert.Equal(Reply(1), ReadLines(first, 1).Single()); // the listener's failure is not the client's
        }

        Assert.Equal(1, Volatile.Read(ref errors));

        for (var i = 0; i < 4; i++)
        {
            using var next = Connect(server.Port);
            Send(next, $"n{i} 2\n");
            Assert.Equal(Reply(2), ReadLines(next, 1).Single());
            Send(next, $"n{i} 3\n");
            Assert.Equal(Reply(3), ReadLines(next, 1).Single()); // nothing else was in the first read
        }

        server.Stop();
        Assert.Single(LogLines(server.LogPath!), l => l.StartsWith("Client: first", StringComparison.Ordinal));
    }

    [Fact]
    public void AThrowingMeterListenerLeavesEachConnectionClosedAndRetiredOnce()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var failing = new FailingMeterListener(server.Port, "keyshell.connection.duration", times: int.MaxValue);
        var disconnected = 0;
        var errors = 0;
        server.ClientDisconnected += (_, _) => Interlocked.Increment(ref disconnected);
        server.ErrorOccurred += (_, _) => Interlocked.Increment(ref errors);
        for (var i = 0; i < 3; i++)
        {
            using var client = Connect(server.Port);
            Send(client, "1 1\n");
            Assert.Equal(Reply(1), ReadLines(client, 1).Single());
        }

        Eventually(() => Volatile.Read(ref errors) == 3 && server.ActiveConnections == 0, "each close's listener failure reported");
        server.Stop();
        Assert.Equal(3, Volatile.Read(ref errors));
        Assert.Equal(3, Volatile.Read(ref disconnected)); // the meter's failure, reported once, keeps no subscriber from hearing
    }

    [Fact]
    public async Task AStopLetsABusyConnectionFinishThenClosesItWithoutWaitingForTheShutdownTimeout()
    {
        // 10 KB replies, read only once the stop has begun: the connection is busy sending when the stop
        // comes. It must close as soon as its replies are out, not at the end of a 60 s shutdown timeout.
        var reply = new string('x', 10_000);
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.ShutdownTimeout = TimeSpan.FromSeconds(60);
            o.KeyMap = new Protocol.KeyMap(new[] { new KeyValuePair<string, string>("1", reply) });
        });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, ReceiveTimeout = (int)Bound.TotalMilliseconds };
        client.Connect(IPAddress.Loopback, server.Port);
        client.Send(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("c 1\n", 500))));
        Eventually(() => server.Table.Requests > 0, "the requests being answered");
        var stop = server.StopAsync();
        var received = ReadToEnd(client).Length;
        await stop.WaitAsync(Bound);

        // Every request the server read is answered in full, then the connection ends cleanly. Requests it had
        // not read yet (the 500 may come in more than one read) stay unanswered, and must not reset the
        // connection under the replies still on their way.
        var perReply = "Response for the key 1 : ".Length + reply.Length + 1;
        Assert.InRange(server.Requests, 1, 500);
        Assert.Equal(server.Requests * perReply, received);
    }

    [Fact]
    public void ATlsClientOnAPlainPortIsRefusedAtItsFirstBytesAndNeverReadAsRequests()
    {
        using var server = StartServer();
        using var bystander = Connect(server.Port);
        using (var tls = Connect(server.Port))
        {
            tls.Send(new byte[] { 0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03, 0x0A, 0x00, 0xFF, 0x13, 0x01, 0x13, 0x02 });
            Assert.Equal(string.Empty, ReadToEnd(tls)); // closed, no plain-text reply to a TLS client
        }

        Send(bystander, "2 4\n");
        Assert.Equal(Reply(4), ReadLines(bystander, 1).Single());
        Assert.Equal(1, server.Rejected);
        server.Stop();
        var log = LogLines(server.LogPath!);
        Assert.Single(log, l => l == "SYSTEM: Client refused (handshake)");
        Assert.Equal(new[] { "Client: 2 4", "Server: 2 " + Reply(4) }, log.Where(l => l.StartsWith("Client:", StringComparison.Ordinal) || l.StartsWith("Server:", StringComparison.Ordinal)));
    }

    /// <summary>A MeterListener that throws from one instrument's measurements of one server, <c>times</c> times.</summary>
    private sealed class FailingMeterListener : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private int _left;

        public FailingMeterListener(int port, string instrument, int times)
        {
            _left = times;
            _listener.InstrumentPublished = (published, listener) =>
            {
                if (published.Meter.Name == "KeyShell.Server" && published.Name == instrument)
                {
                    listener.EnableMeasurementEvents(published);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, _, tags, _) => Fail(tags, port));
            _listener.SetMeasurementEventCallback<double>((_, _, tags, _) => Fail(tags, port));
            _listener.Start();
        }

        public void Dispose() => _listener.Dispose();

        private void Fail(ReadOnlySpan<KeyValuePair<string, object?>> tags, int port)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "server.port" && Equals(tag.Value, port) && Interlocked.Decrement(ref _left) >= 0)
                {
                    throw new InvalidOperationException("a meter listener's bug");
                }
            }
        }
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
