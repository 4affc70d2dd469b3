using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as ServerTestsOnTheAsyncPath.
public abstract class ServerTests : TransportTests
#else
public class ServerTests : TransportTests
#endif
{
    [Fact]
    public void LinuxServesFromEventLoopsAndOtherwiseFromTheAsyncPath()
    {
        using var server = StartServer(o => o.LogPath = null);
        Assert.Equal(UseEventLoops && OperatingSystem.IsLinux(), server.UsesEventLoops);
    }

    [Fact]
    public void EventHandlersThatThrowDoNotStopTheServer()
    {
        using var server = StartServer(o => o.LogPath = null);
        var reported = 0;
        server.ErrorOccurred += (_, _) => Interlocked.Increment(ref reported);
        server.ClientConnected += (_, _) => throw new InvalidOperationException("a subscriber's bug");
        server.ClientDisconnected += (_, _) => throw new InvalidOperationException("a subscriber's bug");
        for (var i = 0; i < 8; i++)
        {
            using var client = Connect(server.Port);
            Send(client, $"1 {i}\n");
            Assert.Equal(Reply(i), ReadLines(client, 1).Single());
        }

        // Each of the 16 subscriber failures (a connect and a disconnect per client) is reported, once: none
        // is lost (the count gets there), and none is reported twice (it is still there after the stop).
        Eventually(() => server.InternalErrors == 16, "every subscriber failure reported");
        server.Stop();
        Assert.Equal(16, server.InternalErrors);
        Assert.Equal(16, Volatile.Read(ref reported));
    }

    [SkippableTheory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void EventsCarryTheClientsAddressOverIPv4AndIPv6(string loopback)
    {
        var address = IPAddress.Parse(loopback);
        SkipWithoutIPv6(address);
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.Address = address;
        });
        using var connected = new BlockingCollection<string?>();
        server.ClientConnected += (_, e) => connected.Add(e.RemoteEndPoint);
        using var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(address, server.Port);
        Send(client, "1 1\n");
        Assert.Equal(Reply(1), ReadLines(client, 1).Single());
        Assert.True(connected.TryTake(out var remote, Bound), "no ClientConnected event");
        Assert.Equal(client.LocalEndPoint!.ToString(), remote);
    }

    [Fact]
    public void TheFirstConnectionIsServed()
    {
        // The seed accepted its first connection outside the loop and dropped it.
        using var server = StartServer();
        using var client = Connect(server.Port);
        Send(client, "1 1\n");
        Assert.Equal(new[] { Reply(1) }, ReadLines(client, 1));
    }

    [Fact]
    public void LineFramingWithPipelinedRequestsKeepsRequestOrder()
    {
        using var server = StartServer();
        using var client = Connect(server.Port);
        var keys = Enumerable.Range(0, 200).Select(i => (i * 7) % 10).ToArray();
        Send(client, string.Concat(keys.Select(k => $"5 {k}\r\n")));
        Assert.Equal(keys.Select(Reply), ReadLines(client, keys.Length));
    }

    [Fact]
    public void LegacyFramingAnswersWithoutTerminator()
    {
        using var server = StartServer();
        using var client = Connect(server.Port);
        foreach (var key in new[] { 7, 8, 9 })
        {
            Send(client, $"3 {key}");
            Assert.Equal(Reply(key), ReceiveOnce(client));
        }
    }

    [Fact]
    public void BadRequestsGetErrorsAndTheConnectionGoesOn()
    {
        using var server = StartServer();
        using var client = Connect(server.Port);
        Send(client, "1 10\n7\n1 2 3\n\n" + new string('c', 65) + " 1\n1 4\n");
        var replies = ReadLines(client, 6);
        Assert.Equal("Error: enter a number between 0 and 9", replies[0]);
        Assert.StartsWith("Error: malformed request", replies[1]);
        Assert.StartsWith("Error: malformed request", replies[2]);
        Assert.StartsWith("Error: malformed request", replies[3]);
        Assert.StartsWith("Error: client must be", replies[4]);
        Assert.Equal(Reply(4), replies[5]);
        Eventually(() => server.Errors == 5 && server.Requests == 6, "the counters to show 6 requests, 5 errors");
    }

    [Fact]
    public void ARequestPastTheLineLimitGetsAnErrorAndTheConnectionCloses()
    {
        using var server = StartServer(o => o.MaxLineLength = 100);
        using var client = Connect(server.Port);
        Send(client, new string('9', 5000));
        Assert.Equal("Error: request too long\n", ReadToEnd(client));
    }

    [SkippableFact]
    public void SixtyFourClientsConnectingAtOnceAreAllServedWithoutARetriedConnect()
    {
        using var server = StartServer();
        using var start = new Barrier(64);
        var replies = new string[64];
        var retransmissions = new int[64];
        var threads = Enumerable.Range(0, 64).Select(i => new Thread(() =>
        {
            start.SignalAndWait(Bound);
            using var client = Connect(server.Port);
            retransmissions[i] = OperatingSystem.IsLinux() ? TcpInfo.Retransmissions(client) : 0; // before any data: SYNs only
            Send(client, $"{i} {i % 10}\n");
            replies[i] = ReadLines(client, 1).Single();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(Bound)));
        Assert.Equal(Enumerable.Range(0, 64).Select(i => Reply(i % 10)), replies);

        // A listen queue too short for the burst drops SYNs, and the client's kernel sends them again a second
        // later (the seed's backlog of 3 did). The kernel counts those retries: none may have been needed,
        // however long the machine took to run the connects.
        Skip.IfNot(OperatingSystem.IsLinux(), "every client was served; counting retried SYNs needs Linux's TCP_INFO");
        Assert.All(retransmissions, count => Assert.Equal(0, count));
    }

    [Fact]
    public void TheLogShowsEveryRequestAndReplyWithItsClientInOrder()
    {
        using var server = StartServer();
        using var clients = ConnectMany(server.Port, 3);
        for (var round = 0; round < 3; round++)
        {
            for (var c = 0; c < 3; c++)
            {
                Send(clients[c], $"{c + 1} {(c * 3) + round + 1}\n");
                ReadLines(clients[c], 1);
            }
        }

        clients.Dispose(); // the three goodbyes, before the stop
        server.Stop();
        var lines = LogLines(server.LogPath!);
        Assert.Equal("SYSTEM: Server launched", lines.First());
        Assert.Equal("SYSTEM: Server stopped", lines.Last());
        Assert.Equal(3, lines.Count(l => l == "SYSTEM: Client connected!"));
        Assert.Equal(3, lines.Count(l => l == "SYSTEM: Client deconnected!"));
        for (var c = 1; c <= 3; c++)
        {
            var own = lines.Where(l => l.StartsWith($"Client: {c} ") || l.StartsWith($"Server: {c} ")).ToArray();
            var expected = Enumerable.Range(0, 3).SelectMany(r =>
            {
                var key = ((c - 1) * 3) + r + 1;
                return new[] { $"Client: {c} {key}", $"Server: {c} {Reply(key)}" };
            });
            Assert.Equal(expected, own);
        }
    }

    [Fact]
    public void AClosingConnectionIsLoggedWhileTheServerIsIdle()
    {
        // The last request of a half-closed connection has no terminator: answered, then closed. Nothing
        // else happens on the server afterwards, yet the goodbye must reach the log (not wait for traffic).
        using var server = StartServer();
        using (var client = Connect(server.Port))
        {
            Send(client, "1 1\n1 2");
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(Reply(1) + "\n" + Reply(2) + "\n", ReadToEnd(client));
        }

        Eventually(() => LogLines(server.LogPath!).Contains("SYSTEM: Client deconnected!"), "the disconnect in the log");
    }

    [Fact]
    public void LogEscapesBytesThatCouldForgeALine()
    {
        using var server = StartServer();
        using (var client = Connect(server.Port))
        {
            client.Send(new byte[] { (byte)'1', (byte)' ', 0x01, (byte)'\r', (byte)'S', (byte)'\\', 0xFF, (byte)'\n' });
            ReadLines(client, 1);
        }

        server.Stop();
        Assert.Contains(@"Client: 1 \x01\x0DS\\\xFF", LogLines(server.LogPath!));
    }

    [Fact]
    public void AClientNamedQuestionMarkOrHoldingABackslashReadsBackFromTheLog()
    {
        // Found by the fuzzer: "?" also marks a reply to a request with no valid client.
        using var server = StartServer();
        using (var client = Connect(server.Port))
        {
            Send(client, "? 1\na\\b 2\n1 2 3\n");
            ReadLines(client, 3);
        }

        server.Stop();
        var lines = LogLines(server.LogPath!);
        Assert.Contains(@"Server: \x3F " + Reply(1), lines);
        Assert.Contains(@"Server: ? Error: malformed request, expected '<client> <key>'", lines);
        var entries = Logging.ConversationCheck.Read(server.LogPath!).Select(l => l.Entry!).ToArray();
        Assert.Equal(new[] { "?", "?", @"a\b", @"a\b" }, entries.Where(e => e.ClientId is not null).Select(e => e.ClientId));
        Assert.True(Logging.ConversationCheck.Verify(server.LogPath!).IsValid);
    }

    [Fact]
    public void TimestampsArePrefixedInIso8601Utc()
    {
        using var server = StartServer(o => o.Timestamps = true);
        server.Stop();
        var first = LogLines(server.LogPath!).First();
        var space = first.IndexOf(' ');
        Assert.True(DateTime.TryParse(first[..space], null, System.Globalization.DateTimeStyles.RoundtripKind, out var time));
        Assert.Equal(DateTimeKind.Utc, time.Kind);
        Assert.Equal("SYSTEM: Server launched", first[(space + 1)..]);
    }

    [Fact]
    public void APortInUseIsAClearErrorAndLeavesTheOtherServersLogAlone()
    {
        using var first = StartServer();
        using var client = Connect(first.Port);
        Send(client, "1 1\n");
        ReadLines(client, 1);
        var error = Assert.Throws<KeyServerException>(() => StartServer(o => { o.Port = first.Port; o.LogPath = first.LogPath; }));
        Assert.Equal(KeyServerErrorKind.AddressInUse, error.Kind);
        Assert.Contains(first.Port.ToString(), error.Message);
        Eventually(() => File.ReadAllText(first.LogPath!).Contains("Client: 1 1"), "the first server's log to keep its lines");
    }

    [Fact]
    public void AnUnwritableLogPathIsAClearErrorAndLeavesNothingListening()
    {
        var port = FreePort();
        var error = Assert.Throws<KeyServerException>(() => StartServer(o => { o.Port = port; o.LogPath = Path.Combine(TempDirectory(), "missing", "dir", "log.txt"); }));
        Assert.Equal(KeyServerErrorKind.LogPathUnwritable, error.Kind);
        using var again = StartServer(o => o.Port = port); // the port was released
        Assert.Equal(port, again.Port);
    }

    [Fact]
    public void ARestartOnTheSamePortRightAfterAStopWorks()
    {
        using var server = StartServer();
        var port = server.Port;
        using (var client = Connect(port))
        {
            Send(client, "1 1\n");
            ReadLines(client, 1);
        }

        server.Stop();
        using var again = StartServer(o => o.Port = port);
        using var next = Connect(port);
        Send(next, "1 2\n");
        Assert.Equal(Reply(2), ReadLines(next, 1).Single());
    }

    [Fact]
    public async Task StopClosesIdleConnectionsAndReturnsPromptly()
    {
        // Idle connections are closed at once, not waited for: with a shutdown timeout far beyond the test's
        // bound, a stop that waited on them could not return within that bound, however fast the machine.
        using var server = StartServer(o => o.ShutdownTimeout = 4 * Bound);
        using var clients = ConnectMany(server.Port, 20);
        Eventually(() => server.ActiveConnections == 20, "20 open connections");
        var stop = Task.Run(server.Stop);
        Assert.True(await Task.WhenAny(stop, Task.Delay(Bound)) == stop, $"the stop waited on idle connections (shutdown timeout {server.ShutdownTimeout})");
        Assert.Equal(KeyServerState.Stopped, server.State);
        Assert.All(clients, c => Assert.Equal(string.Empty, ReadToEnd(c)));
        Assert.Throws<SocketException>(() => Connect(server.Port));
    }

    [Fact]
    public void IdleConnectionsAreClosedAfterTheTimeoutEvenWhenTrickling()
    {
        // The idle timeout counts from the last completed request: bytes that never complete one do not hold
        // the slot. Trickle a byte every 50 ms (a sixth of the timeout), never a whole request, until the server
        // closes the connection; the bound is the test's.
        using var server = StartServer(o => o.IdleTimeout = TimeSpan.FromMilliseconds(300));
        using var client = Connect(server.Port);
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "a connection that trickled bytes was never closed");
            try
            {
                Send(client, "1"); // a client name growing by one byte: no space, so never a request
            }
            catch (SocketException)
            {
                break; // closed with a byte still unread on the server's side: the close came as a reset
            }

            if (client.Poll(50_000, SelectMode.SelectRead))
            {
                break;
            }
        }

        Assert.Equal(string.Empty, ReadToEnd(client));
        Assert.Equal(1, server.IdleClosed);
    }

    [Fact]
    public void PastTheConnectionLimitNewClientsAreToldBusyAndOldOnesAreStillServed()
    {
        using var server = StartServer(o => o.MaxConnections = 2);
        using var a = Connect(server.Port);
        using var b = Connect(server.Port);
        Eventually(() => server.ActiveConnections == 2, "two open connections");
        using var c = Connect(server.Port);
        Assert.Equal("Error: server busy\n", ReadToEnd(c));
        Send(a, "1 1\n");
        Assert.Equal(Reply(1), ReadLines(a, 1).Single());
        Assert.Equal(1, server.Rejected);
    }

    [Fact]
    public void ListensOnLoopbackByDefault()
    {
        Assert.Equal(IPAddress.Loopback, new KeyServerOptions().Address);
        Assert.Equal(8080, new KeyServerOptions().Port);
    }
}

/// <summary>Every test of <see cref="ServerTests"/> on the portable async path.</summary>
public sealed class ServerTestsOnTheAsyncPath : ServerTests
{
    protected override bool UseEventLoops => false;
}
