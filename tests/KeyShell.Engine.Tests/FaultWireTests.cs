using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Each fault type as a raw client sees it on the wire (which bytes, then FIN or RST, or nothing), on each
/// driver, plain and over TLS. Every wait is for a condition: a reply, the end of the stream, a log line.
/// </summary>
public abstract class FaultWireTests
{
    protected abstract bool UseEventLoops { get; }

    protected virtual bool UseTls => false;

    [Fact]
    public void DelayHoldsTheReplyAndTheRepliesBeforeAndAfterItKeepTheirOrder()
    {
        using var server = Start(new KeyFault(FaultType.Delay, delayMilliseconds: 50, key: new[] { "2" }));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n"); // one read: the reply before the hold goes first, the one after waits
        Assert.Equal(new[] { Reply(1), Reply(2), Reply(3) }, client.ReadLines(3));
        Assert.Equal(1, server.Faults);
        var log = Conversation(server);
        AssertInOrder(log, "Client: 1 2", "SYSTEM: Fault delay (1 2)", "Server: 1 " + Reply(2), "Client: 1 3");
    }

    [Fact]
    public void SliceSendsTheReplyInPiecesThatMakeTheWholeReply()
    {
        using var server = Start(new KeyFault(FaultType.Slice, delayMilliseconds: 1, byteCount: 4, key: new[] { "7" }));
        using var client = Open(server);
        client.Send("1 7\n1 8\n");
        Assert.Equal(new[] { Reply(7), Reply(8) }, client.ReadLines(2));
        AssertInOrder(Conversation(server), "Client: 1 7", "SYSTEM: Fault slice (1 7)", "Server: 1 " + Reply(7), "Client: 1 8");
    }

    [Fact]
    public void StallNeverRepliesAndKeepsTheConnectionOpenUntilTheClientCloses()
    {
        using var server = Start(new KeyFault(FaultType.Stall, key: new[] { "2" }));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n");
        Assert.Equal(new[] { Reply(1) }, client.ReadLines(1));
        Eventually(() => Conversation(server).Contains("SYSTEM: Fault stall (1 2)"), "the stall in the log");
        client.Send("1 4\n"); // discarded, unanswered
        Eventually(() => server.Requests == 2, "the requests up to the stall counted");
        Assert.Equal(1, server.ActiveConnections); // still open
        client.EndSending();
        Assert.Equal(string.Empty, client.ReadToEnd()); // no byte after the first reply: the end, once the client ended
        Eventually(() => server.ActiveConnections == 0, "the connection closed after the client's end");
        Assert.DoesNotContain(Conversation(server), l => l.StartsWith("Client: 1 3", StringComparison.Ordinal) || l.StartsWith("Client: 1 4", StringComparison.Ordinal));
    }

    [Fact]
    public void ResetClosesWithARstInsteadOfTheReply()
    {
        using var server = Start(new KeyFault(FaultType.Reset));
        using var client = Open(server);
        client.Send("1 1\n");
        var error = Assert.ThrowsAny<Exception>(() => client.ReadToEnd());
        Assert.Equal(SocketError.ConnectionReset, SocketErrorOf(error));
        AssertInOrder(Conversation(server), "Client: 1 1", "SYSTEM: Fault reset (1 1)");
        Assert.Equal(1, server.Faults);
    }

    [Fact]
    public void ResetAfterRepliesOfTheSameReadSendsThemFirst()
    {
        using var server = Start(new KeyFault(FaultType.Reset, key: new[] { "3" }));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n1 4\n");
        Assert.Equal(new[] { Reply(1), Reply(2) }, client.ReadLines(2));
        var error = Assert.ThrowsAny<Exception>(() => client.ReadToEnd());
        Assert.Equal(SocketError.ConnectionReset, SocketErrorOf(error));
    }

    [Fact]
    public void CloseEndsTheConnectionWithAFinAndNoReply()
    {
        using var server = Start(new KeyFault(FaultType.Close));
        using var client = Open(server);
        client.Send("1 1\n");
        Assert.Equal(string.Empty, client.ReadToEnd());
        AssertInOrder(Conversation(server), "Client: 1 1", "SYSTEM: Fault close (1 1)");
    }

    [Theory]
    [InlineData(5)]
    [InlineData(null)]
    public void TruncateSendsExactlyThePartOfTheReplyThenTheEnd(int? byteCount)
    {
        using var server = Start(new KeyFault(FaultType.Truncate, byteCount: byteCount));
        using var client = Open(server);
        client.Send("1 1\n");
        var whole = Reply(1) + "\n";
        Assert.Equal(whole.Substring(0, byteCount ?? whole.Length / 2), client.ReadToEnd());
        Assert.Contains("SYSTEM: Fault truncate (1 1)", Conversation(server));
    }

    [Fact]
    public void GarbageSendsExactlyItsBytesThenTheEnd()
    {
        var fault = new KeyFault(FaultType.Garbage, byteCount: 40);
        using var server = Start(fault, seed: 11);
        using var client = Open(server);
        client.Send("1 1\n");
        var expected = new FaultSet(new[] { fault }, 11).CreateSelector().SelectAt("1", "1", 1)!.GarbageBytes();
        Assert.Equal(expected, client.ReadBytesToEnd());
        Assert.Contains("SYSTEM: Fault garbage (1 1)", Conversation(server));
    }

    [Fact]
    public void RefuseClosesTheConnectionAtAcceptAndCountsAFaultNotARejection()
    {
        using var server = Start(new KeyFault(FaultType.Refuse, every: 2));
        using (var first = Open(server))
        {
            first.Send("1 1\n");
            Assert.Equal(new[] { Reply(1) }, first.ReadLines(1));
        }

        using (var socket = Connect(server.Port))
        {
            // Closed as accepted (before any TLS): the end, or a reset when the close met our bytes.
            try
            {
                Assert.Equal(0, socket.Receive(new byte[16]));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
            }
        }

        Eventually(() => Conversation(server).Contains("SYSTEM: Fault refuse (connection 2)"), "the refusal in the log");
        Assert.Equal(1, server.Faults);
        Assert.Equal(1, server.Connections); // the refused one was never served
        Assert.Equal(0, server.Rejected);
    }

    [Fact]
    public void FaultsAimAtOneClientOnly()
    {
        using var server = Start(new KeyFault(FaultType.Close, clientId: "victim"));
        using (var other = Open(server))
        {
            other.Send("1 1\n");
            Assert.Equal(new[] { Reply(1) }, other.ReadLines(1));
        }

        using var victim = Open(server);
        victim.Send("victim 1\n");
        Assert.Equal(string.Empty, victim.ReadToEnd());
        Assert.Equal(1, server.Faults);
    }

    [Fact]
    public void ALiveSwapAppliesFromTheNextRequestAndAnEmptySetRemovesTheFaults()
    {
        using var server = Start(null);
        using (var before = Open(server))
        {
            before.Send("1 1\n");
            Assert.Equal(new[] { Reply(1) }, before.ReadLines(1));
        }

        server.SetFaults(new FaultSet(new[] { new KeyFault(FaultType.Close) }));
        using (var during = Open(server))
        {
            during.Send("1 2\n");
            Assert.Equal(string.Empty, during.ReadToEnd());
        }

        server.SetFaults(FaultSet.Empty);
        Assert.True(server.FaultSet.IsEmpty);
        using var after = Open(server);
        after.Send("1 3\n");
        Assert.Equal(new[] { Reply(3) }, after.ReadLines(1));
        Assert.Equal(1, server.Faults);
    }

    [Theory]
    [InlineData(FaultDirection.Request, 0)]
    [InlineData(FaultDirection.Reply, 1)]
    public void TheDirectionSaysWhetherTheHandlerSeesTheRequest(FaultDirection direction, int handled)
    {
        var calls = 0;
        using var server = Start(new KeyFault(FaultType.Close, key: new[] { "2" }, direction: direction), handler: new CountingHandler(() => Interlocked.Increment(ref calls)));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n");
        Assert.Equal(new[] { "handled 1 1" }, client.ReadLines(1));
        Assert.Equal(string.Empty, client.ReadToEnd());
        Assert.Equal(1 + handled, Volatile.Read(ref calls)); // 1 3 never reaches it: the close dropped it
        AssertInOrder(Conversation(server), "Client: 1 2", "SYSTEM: Fault close (1 2)");
    }

    [Theory]
    [InlineData(FaultDirection.Request)]
    [InlineData(FaultDirection.Reply)]
    public void AHandlersDelayedRequestIsAnsweredAfterTheHoldInOrder(FaultDirection direction)
    {
        var calls = 0;
        using var server = Start(new KeyFault(FaultType.Delay, delayMilliseconds: 20, key: new[] { "2" }, direction: direction), handler: new CountingHandler(() => Interlocked.Increment(ref calls)));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n");
        Assert.Equal(new[] { "handled 1 1", "handled 1 2", "handled 1 3" }, client.ReadLines(3));
        Assert.Equal(3, Volatile.Read(ref calls));
        AssertInOrder(Conversation(server), "Client: 1 2", "SYSTEM: Fault delay (1 2)", "Server: 1 handled 1 2", "Client: 1 3");
    }

    [Fact]
    public void AHoldOverAtOnceLeadsIntoTheHandlersNextWaitWithEveryReplyKept()
    {
        // A zero hold wakes at once, straight into the handler's next wait (with no log, no reply waits for the
        // end of the pass): its replies must not be lost with the buffers of the wait before.
        var faults = new FaultSet(new[] { new KeyFault(FaultType.Delay, delayMilliseconds: 0, key: new[] { "2" }) });
        using var server = Start(faults, new CountingHandler(() => { }), log: false);
        using var client = Open(server);
        client.Send("1 1\n1 2\n" + new string('x', 2000) + "\n");
        Assert.Equal(new[] { "handled 1 1", "handled 1 2", Replies.TooLong }, client.ReadLines(3));
        Assert.Equal(1, server.Faults);
    }

    [Theory]
    [InlineData(FaultDirection.Request)]
    [InlineData(FaultDirection.Reply)]
    public void TheKeyMapsDelayedRequestIsAnsweredAfterTheHoldInEitherDirection(FaultDirection direction)
    {
        using var server = Start(new KeyFault(FaultType.Delay, delayMilliseconds: 20, key: new[] { "1", "3" }, direction: direction));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n1 4\n"); // two holds in one read
        Assert.Equal(new[] { Reply(1), Reply(2), Reply(3), Reply(4) }, client.ReadLines(4));
        Assert.Equal(4, server.Requests);
        AssertInOrder(Conversation(server), "Client: 1 1", "SYSTEM: Fault delay (1 1)", "Server: 1 " + Reply(1), "Client: 1 2", "Server: 1 " + Reply(2), "Client: 1 3", "SYSTEM: Fault delay (1 3)", "Server: 1 " + Reply(3), "Server: 1 " + Reply(4));
    }

    [Fact]
    public void AHandlersStallAnswersNothingMoreOnItsConnection()
    {
        var calls = 0;
        using var server = Start(new KeyFault(FaultType.Stall, key: new[] { "2" }, direction: FaultDirection.Request), handler: new CountingHandler(() => Interlocked.Increment(ref calls)));
        using var client = Open(server);
        client.Send("1 1\n1 2\n1 3\n");
        Assert.Equal(new[] { "handled 1 1" }, client.ReadLines(1));
        Eventually(() => Conversation(server).Contains("SYSTEM: Fault stall (1 2)"), "the stall in the log");
        client.Send("1 4\n");
        client.EndSending();
        Assert.Equal(string.Empty, client.ReadToEnd());
        Assert.Equal(1, Volatile.Read(ref calls));
    }

    [SkippableFact]
    public void TheIdleTimeoutClosesAStalledConnectionAsAnyIdleOne()
    {
        // A short idle timeout also bounds the TLS handshake, which a busy machine may not finish in it.
        Skip.If(UseTls, "plain text only: the idle timeout would bound the TLS handshake too");
        using var server = StartServer(o =>
        {
            o.UseEventLoops = UseEventLoops;
            o.Faults = new FaultSet(new[] { new KeyFault(FaultType.Stall) });
            o.IdleTimeout = TimeSpan.FromMilliseconds(200);
            o.Certificate = UseTls ? new ServerCertificate(TestCertificates.Shared.Server) : null;
        });
        using var client = Open(server);
        client.Send("1 1\n");
        Assert.Empty(client.ReadBytesToEnd()); // nothing, then the idle close's end
        Eventually(() => server.IdleClosed == 1, "the idle close counted");
    }

    [Fact]
    public void AHandlersSlicedAndTruncatedRepliesAreTheHandlersOwn()
    {
        using var server = Start(
            new FaultSet(new[]
            {
                new KeyFault(FaultType.Slice, delayMilliseconds: 1, byteCount: 3, key: new[] { "1" }),
                new KeyFault(FaultType.Truncate, byteCount: 4, key: new[] { "2" }),
            }),
            new CountingHandler(() => { }));
        using var client = Open(server);
        client.Send("1 1\n1 2\n");
        Assert.Equal("handled 1 1\n" + "hand", client.ReadToEnd());
    }

    [Fact]
    public void TheFaultsMeterCountsEachTypeOnItsTag()
    {
        using var server = Start(new FaultSet(new[] { new KeyFault(FaultType.Close, key: new[] { "1" }), new KeyFault(FaultType.Delay, delayMilliseconds: 0, key: new[] { "2" }) }), null);
        using var meters = new MeterCollector("KeyShell.Server", server.Port);
        using (var client = Open(server))
        {
            client.Send("1 2\n");
            Assert.Equal(new[] { Reply(2) }, client.ReadLines(1));
        }

        using (var client = Open(server))
        {
            client.Send("1 1\n");
            Assert.Equal(string.Empty, client.ReadToEnd());
        }

        Assert.Equal(1, meters.Sum("keyshell.faults", ("type", "close")));
        Assert.Equal(1, meters.Sum("keyshell.faults", ("type", "delay")));
        Assert.Equal(2, server.Faults);
    }

    [Fact]
    public void TheSameSequencesFaultTheSameRequestsOnEveryRunWithEightInParallel()
    {
        var faults = new FaultSet(
            new[] { new KeyFault(FaultType.Reset, probability: 0.3), new KeyFault(FaultType.Close, probability: 0.5, key: new[] { "5" }) },
            seed: 7);
        var first = FaultedRequests(faults);
        var second = FaultedRequests(faults);
        Assert.NotEmpty(first);
        Assert.True(first.SequenceEqual(second), $"first:\n{string.Join("\n", first)}\nsecond:\n{string.Join("\n", second)}");

        // And they are the ones the seed picks, request by request: nothing depended on the threads.
        var selector = faults.CreateSelector();
        var expected = new List<(string, string, long, string)>();
        for (var client = 1; client <= 8; client++)
        {
            for (var key = 0; key <= 9; key++)
            {
                if (selector.SelectAt(client.ToString(), key.ToString(), key + 1) is { } action)
                {
                    expected.Add((client.ToString(), key.ToString(), key + 1, action.Fault.Word));
                }
            }
        }

        Assert.True(expected.SequenceEqual(first), $"expected:\n{string.Join("\n", expected)}\nlogged:\n{string.Join("\n", first)}");
    }

    /// <summary>Eight clients in parallel, each sending keys 0 to 9 one connection per request; the faults as
    /// the log shows them: (client, key, the request's position among its client's, type), in client order.
    /// Each client sends each key once, so the position is the key's place in its sequence (key + 1), which
    /// the count of the client's request lines before the fault line must agree with (on every driver, TLS
    /// included: a client sends its next request only once it holds the last one's reply, or its end, and by
    /// then that request's lines are in the log).</summary>
    private List<(string Client, string Key, long Position, string Type)> FaultedRequests(FaultSet faults)
    {
        using var server = Start(faults, null);
        Parallel.For(1, 9, new ParallelOptions { MaxDegreeOfParallelism = 8 }, client =>
        {
            for (var key = 0; key <= 9; key++)
            {
                using var connection = Open(server);
                connection.Send($"{client} {key}\n");
                try
                {
                    connection.ReadLines(1); // a reply, or the end a fault made
                }
                catch (IOException)
                {
                    // reset
                }
            }
        });
        server.Stop();
        var positions = new Dictionary<string, long>();
        var faulted = new List<(string Client, string Key, long Position, string Type)>();
        foreach (var line in Conversation(server))
        {
            if (line.StartsWith("Client: ", StringComparison.Ordinal))
            {
                var client = line.Substring(8).Split(' ')[0];
                positions[client] = positions.TryGetValue(client, out var n) ? n + 1 : 1;
            }
            else if (line.StartsWith("SYSTEM: Fault ", StringComparison.Ordinal))
            {
                var parts = line.Substring(14).Split(' ', '(', ')').Where(p => p.Length > 0).ToArray(); // type, client, key
                var position = int.Parse(parts[2]) + 1;
                Assert.Equal(position, positions[parts[1]]);

                faulted.Add((parts[1], parts[2], position, parts[0]));
            }
        }

        return faulted.OrderBy(f => int.Parse(f.Client)).ThenBy(f => f.Position).ToList();
    }

    private KeyServer Start(KeyFault? fault, int seed = 0) =>
        Start(fault is null ? FaultSet.Empty : new FaultSet(new[] { fault }, seed), null);

    private KeyServer Start(KeyFault fault, IKeyRequestHandler handler) => Start(new FaultSet(new[] { fault }), handler);

    private KeyServer Start(FaultSet faults, IKeyRequestHandler? handler, bool log = true) => StartServer(o =>
    {
        o.LogPath = log ? o.LogPath : null;
        o.UseEventLoops = UseEventLoops;
        o.Faults = faults;
        o.Handler = handler;
        o.Certificate = UseTls ? new ServerCertificate(TestCertificates.Shared.Server) : null;
    });

    private FaultClient Open(KeyServer server) => new(server.Port, UseTls);

    private static string[] Conversation(KeyServer server) => LogLines(server.LogPath!);

    /// <summary>Asserts that the log has these lines in this order (other lines may come between).</summary>
    internal static void AssertInOrder(string[] log, params string[] lines)
    {
        var at = 0;
        foreach (var line in lines)
        {
            var found = Array.FindIndex(log, at, l => l == line);
            Assert.True(found >= 0, $"'{line}' not found after line {at} in:\n{string.Join("\n", log)}");
            at = found + 1;
        }
    }

    private static SocketError? SocketErrorOf(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.SocketErrorCode;
            }
        }

        return null;
    }

    private sealed class CountingHandler : IKeyRequestHandler
    {
        private readonly Action _called;

        public CountingHandler(Action called) => _called = called;

        public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
        {
            _called();
            return Task.FromResult($"handled {request.ClientId} {request.Key}");
        }
    }
}

/// <summary>A raw client over a socket, or over TLS on it; its reads are bounded by the socket's timeout.</summary>
internal sealed class FaultClient : IDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;

    public FaultClient(int port, bool tls)
    {
        _socket = Connect(port);
        Stream stream = new NetworkStream(_socket, ownsSocket: false);
        if (tls)
        {
            stream = TlsHandshake.AuthenticateAsClientAsync(stream, new TlsClientSettings { SkipCertificateCheck = true }, "localhost", CancellationToken.None)
                .WaitAsync(Bound).GetAwaiter().GetResult();
        }

        _stream = stream;
    }

    public void Send(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        _stream.Write(bytes, 0, bytes.Length);
        _stream.Flush();
    }

    public void EndSending() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Reads until <paramref name="count"/> LF-ended lines have arrived (or the end); reads nothing past them.</summary>
    public string[] ReadLines(int count)
    {
        var lines = new List<string>();
        var line = new List<byte>();
        var one = new byte[1];
        while (lines.Count < count && _stream.Read(one, 0, 1) == 1)
        {
            if (one[0] == (byte)'\n')
            {
                lines.Add(Encoding.ASCII.GetString(line.ToArray()));
                line.Clear();
            }
            else
            {
                line.Add(one[0]);
            }
        }

        return lines.ToArray();
    }

    /// <summary>Everything until the end; a reset throws, unless <paramref name="resetEnds"/>.</summary>
    public byte[] ReadBytesToEnd(bool resetEnds = false)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int count;
            while ((count = _stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                received.Write(buffer, 0, count);
            }
        }
        catch (IOException e) when (resetEnds && e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
        }

        return received.ToArray();
    }

    public string ReadToEnd() => Encoding.ASCII.GetString(ReadBytesToEnd());

    public void Dispose()
    {
        _stream.Dispose();
        _socket.Dispose();
    }
}

#if !ENGINE_NETSTANDARD
public sealed class FaultWireTestsOnEventLoops : FaultWireTests
{
    protected override bool UseEventLoops => true;
}

public sealed class FaultWireTestsOverTlsOnEventLoops : FaultWireTests
{
    protected override bool UseEventLoops => true;

    protected override bool UseTls => true;
}
#endif

public sealed class FaultWireTestsOnTheAsyncPath : FaultWireTests
{
    protected override bool UseEventLoops => false;
}

public sealed class FaultWireTestsOverTlsOnTheAsyncPath : FaultWireTests
{
    protected override bool UseEventLoops => false;

    protected override bool UseTls => true;
}
