using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Server;
using KeyShell.Engine.Server.Upstream;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as UpstreamTestsOnTheAsyncPath.
public abstract class UpstreamTests : TransportTests
#else
public class UpstreamTests : TransportTests
#endif
{
    private static readonly string[] EightSequences =
        { "1 1 2 3", "2 4 5 6", "3 7 8 9", "4 0 9 8 7", "5 5 5", "6 6 1 6", "7 2 4 6 8", "8 9 0" };

    private sealed class Collector : IKeyClientObserver
    {
        public ConcurrentQueue<KeyReply> Replies { get; } = new();

        public ConcurrentQueue<KeyClientFailure> Failures { get; } = new();

        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply) => Replies.Enqueue(reply);

        public void OnFailure(KeyClientFailure failure) => Failures.Enqueue(failure);
    }

    /// <summary>A server in upstream mode in front of <paramref name="upstreamPort"/>, on this class's driver.</summary>
    private KeyServer StartFront(int upstreamPort, Framing framing, ConnectionMode connection, TimeSpan? timeout = null) =>
        StartServer(o =>
        {
            o.Handler = new UpstreamHandler(new UpstreamTarget("127.0.0.1", upstreamPort), framing, connection);
            o.HandlerTimeout = timeout ?? Bound;
            o.KeyMap = new Protocol.KeyMap(new Dictionary<string, string> { ["1"] = "not the upstream's" }); // ignored
        });

    private static async Task<Collector> RunThrough(KeyServer front, ConnectionMode clientMode, params string[] sequences)
    {
        var collector = new Collector();
        await KeyClient.RunAsync(
            sequences.Select(ClientSequence.Parse).ToArray(),
            new KeyClientOptions { Port = front.Port, Connection = clientMode, Timeout = Bound },
            collector).WaitAsync(Bound);
        return collector;
    }

    private static void AssertSeedRepliesInOrder(Collector collector, string[] sequences)
    {
        Assert.Empty(collector.Failures);
        foreach (var sequence in sequences.Select(ClientSequence.Parse))
        {
            var own = collector.Replies.Where(r => r.ClientId == sequence.ClientId).ToArray();
            Assert.Equal(Enumerable.Range(0, sequence.Keys.Count), own.Select(r => r.Index));
            Assert.Equal(sequence.Keys.Select(k => Reply(int.Parse(k))), own.Select(r => r.Reply));
        }
    }

    private static void AssertLogValid(KeyServer front, string[] sequences)
    {
        var expected = sequences.Select(ClientSequence.Parse).ToDictionary(s => s.ClientId, s => (IReadOnlyList<string>)s.Keys.ToList());
        var requests = sequences.Select(ClientSequence.Parse).Sum(s => s.Keys.Count);
        Eventually(() => ConversationCheck.Verify(front.LogPath!).Replies == requests, "every reply in the front's log");
        var check = ConversationCheck.Verify(front.LogPath!, expected);
        Assert.True(check.IsValid, string.Join(Environment.NewLine, check.Problems));
        Assert.Equal(requests, check.Requests);
        Assert.Equal(sequences.Length, check.Clients);
    }

    /// <summary>A reply read from a raw client of the front: one request, one line back.</summary>
    private static string AskFront(KeyServer front, string request)
    {
        using var client = Connect(front.Port);
        Send(client, request + "\n");
        return ReadLines(client, 1).Single();
    }

    [Theory]
    [InlineData(Framing.Line, ConnectionMode.Persistent)]
    [InlineData(Framing.Line, ConnectionMode.PerMessage)]
    [InlineData(Framing.Legacy, ConnectionMode.Persistent)]
    [InlineData(Framing.Legacy, ConnectionMode.PerMessage)]
    public async Task EightParallelClientsGetTheUpstreamsRepliesInTheirOrderAndTheLogChecks(Framing framing, ConnectionMode upstreamMode)
    {
        using var upstream = StartServer(o => o.LogPath = null);
        using var front = StartFront(upstream.Port, framing, upstreamMode);
        var collector = await RunThrough(front, ConnectionMode.Persistent, EightSequences);
        AssertSeedRepliesInOrder(collector, EightSequences);
        AssertLogValid(front, EightSequences);

        // Persistent: one upstream connection per client connection; per message: one per request.
        var requests = EightSequences.Sum(s => s.Split(' ').Length - 1);
        Eventually(() => upstream.Requests == requests, "the upstream to count every request");
        Assert.Equal(upstreamMode == ConnectionMode.Persistent ? EightSequences.Length : requests, upstream.Connections);
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public async Task InFrontOfAStandInForTheSeedsServerTheSeedsSessionChecks(ConnectionMode upstreamMode)
    {
        using var seed = new SeedStandInServer();
        using var front = StartFront(seed.Port, Framing.Legacy, upstreamMode);
        var sequences = new[] { "1 1 2 3", "2 4 5 6", "3 7 8 9" };
        var collector = await RunThrough(front, ConnectionMode.PerMessage, sequences);
        AssertSeedRepliesInOrder(collector, sequences);
        AssertLogValid(front, sequences);
        lock (seed.Received)
        {
            Assert.Equal(9, seed.Received.Count);
            Assert.All(seed.Received, r => Assert.DoesNotContain("\n", r)); // the seed's framing: no terminator
        }
    }

    [Fact]
    public void AnUpstreamConnectionClosesWithItsClientsConnection()
    {
        using var upstream = StartServer(o => o.LogPath = null);
        using var front = StartFront(upstream.Port, Framing.Line, ConnectionMode.Persistent);
        var handler = (UpstreamHandler)front.Handler!;
        using (var client = Connect(front.Port))
        {
            Send(client, "1 1\n1 2\n");
            Assert.Equal(new[] { Reply(1), Reply(2) }, ReadLines(client, 2));
            Assert.Equal(1, handler.OpenConnections);
            Assert.Equal(1, upstream.ActiveConnections);
        }

        Eventually(() => handler.OpenConnections == 0 && upstream.ActiveConnections == 0, "the upstream connection to close after the client's");
        Assert.Equal(1, upstream.Connections);
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public void AnUpstreamThatRefusesGivesItsOwnErrorReply(ConnectionMode upstreamMode)
    {
        using var holder = RefusingPort(out var port);
        using var front = StartFront(port, Framing.Line, upstreamMode);
        Assert.Equal("Error: upstream refused the connection", AskFront(front, "1 1"));
        Eventually(() => front.Errors == 1, "the error reply to be counted");
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public void AnUpstreamThatNeverAnswersTimesOutAndTheConnectionGoesOn(ConnectionMode upstreamMode)
    {
        // Accepted by the kernel (the listen queue), never read: the requests go out, no reply ever comes.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(16);
        using var front = StartFront(((IPEndPoint)silent.LocalEndPoint!).Port, Framing.Line, upstreamMode, TimeSpan.FromMilliseconds(300));
        using var client = Connect(front.Port);
        Send(client, "1 1\n1 2\n");
        Assert.Equal(new[] { "Error: upstream timed out", "Error: upstream timed out" }, ReadLines(client, 2));
        // A timed-out upstream connection is dropped (a late reply on it must not answer the next request).
        Eventually(() => ((UpstreamHandler)front.Handler!).OpenConnections == 0, "the timed-out upstream connections to be dropped");
    }

    [Fact]
    public void AnUpstreamThatClosesMidReplyOrBeforeItGivesItsOwnErrorReplies()
    {
        using var midReply = new ScriptedServer(_ => ("Response for the ke", true));
        using var front = StartFront(midReply.Port, Framing.Line, ConnectionMode.PerMessage);
        Assert.Equal("Error: upstream closed the connection mid-reply after 'Response for the ke'", AskFront(front, "1 1"));

        using var closing = new ScriptedServer(_ => (string.Empty, true));
        using var second = StartFront(closing.Port, Framing.Line, ConnectionMode.PerMessage);
        Assert.Equal("Error: upstream closed the connection", AskFront(second, "1 1"));
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public async Task AnUpstreamThatResetsGivesItsOwnErrorReply(ConnectionMode upstreamMode)
    {
        // Reads the request, then closes with RST (linger 0) instead of replying.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var resetter = Task.Run(() =>
        {
            using var accepted = listener.Accept();
            accepted.ReceiveTimeout = (int)Bound.TotalMilliseconds;
            accepted.Receive(new byte[64]);
            accepted.LingerState = new LingerOption(true, 0);
            accepted.Close();
        });
        using var front = StartFront(((IPEndPoint)listener.LocalEndPoint!).Port, Framing.Line, upstreamMode);
        Assert.Equal("Error: upstream reset the connection", AskFront(front, "1 1"));
        await resetter.WaitAsync(Bound);
    }

    [Fact]
    public void APersistentUpstreamConnectionDroppedWhileIdleIsOpenedAgainOnce()
    {
        // Answers one request per connection, then closes it: every request after the first finds its connection gone.
        using var oneShot = new ScriptedServer(request => (Reply(int.Parse(request.Trim().Split(' ')[1])) + "\n", true));
        using var front = StartFront(oneShot.Port, Framing.Line, ConnectionMode.Persistent);
        using var client = Connect(front.Port);
        Send(client, "1 1\n");
        Assert.Equal(Reply(1), ReadLines(client, 1).Single());
        Send(client, "1 2\n");
        Assert.Equal(Reply(2), ReadLines(client, 1).Single());
        Assert.Equal(2, oneShot.Reads);
    }

    [Fact]
    public void AReplyThatIsNotTheProtocolsPassesThroughAsTheUpstreamSentIt()
    {
        using var http = ScriptedServer.Http();
        using var front = StartFront(http.Port, Framing.Line, ConnectionMode.PerMessage);
        Assert.Equal("HTTP/1.1 400 Bad Request", AskFront(front, "1 1"));
    }

    [Fact]
    public void ATrailingLineEndOfASeedFramedReplyIsNotPartOfIt()
    {
        using var upstream = new ScriptedServer(_ => (Reply(3) + "\r\n", false));
        using var front = StartFront(upstream.Port, Framing.Legacy, ConnectionMode.Persistent);
        Assert.Equal(Reply(3), AskFront(front, "1 3"));
    }

    [Fact]
    public void AReplysBytesPassThroughAsTheUpstreamSentThemAndTheLogEscapesThem()
    {
        using var upstream = new ScriptedServer(_ => (new byte[] { (byte)'R', 0xFF, 0xFE, (byte)'!', (byte)'\n' }, false));
        string log;
        using (var front = StartFront(upstream.Port, Framing.Line, ConnectionMode.Persistent))
        {
            log = front.LogPath!;
            using var client = Connect(front.Port);
            Send(client, "1 1\n");
            var received = new List<byte>();
            var buffer = new byte[64];
            while (!received.Contains((byte)'\n'))
            {
                var count = client.Receive(buffer);
                Assert.True(count > 0, "the front closed before the reply");
                received.AddRange(buffer.Take(count));
            }

            Assert.Equal(new byte[] { (byte)'R', 0xFF, 0xFE, (byte)'!', (byte)'\n' }, received);
        }

        Assert.Contains("Server: 1 R\\xFF\\xFE!", LogLines(log));
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public void LineBreaksInsideASeedFramedReplyBecomeSpacesAsAHandlersDo(ConnectionMode upstreamMode)
    {
        using var upstream = new ScriptedServer(_ => ("Response\r\nfor the\nkey\r3 : 23", false));
        using var front = StartFront(upstream.Port, Framing.Legacy, upstreamMode);
        Assert.Equal(Reply(3), AskFront(front, "1 3"));
        Assert.Equal(Reply(3), AskFront(front, "1 3"));
    }

    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080)]
    [InlineData("localhost:1", "localhost", 1)]
    [InlineData("[::1]:65535", "::1", 65535)]
    [InlineData(" seed.example:8080 ", "seed.example", 8080)]
    public void AnUpstreamIsReadAsHostColonPort(string text, string host, int port)
    {
        var target = UpstreamTarget.Parse(text);
        Assert.Equal((host, port), (target.Host, target.Port));
        Assert.Equal(target.ToString(), UpstreamTarget.Parse(target.ToString()).ToString());
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":8080")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:80a")]
    [InlineData("::1:8080")]
    [InlineData("")]
    public void AnUpstreamThatIsNotHostColonPortIsInvalidUpstream(string text)
    {
        var error = Assert.Throws<KeyServerException>(() => UpstreamTarget.Parse(text));
        Assert.Equal(KeyServerErrorKind.InvalidUpstream, error.Kind);
        Assert.Equal(text, error.Target);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080")]
    [InlineData("tcp://seed.example:8080")]
    public void AnUpstreamGivenAsAUrlIsToldToDropTheScheme(string text)
    {
        var error = Assert.Throws<KeyServerException>(() => UpstreamTarget.Parse(text));
        Assert.Equal(KeyServerErrorKind.InvalidUpstream, error.Kind);
        Assert.Contains("with no scheme", error.Message);
    }

    [Fact]
    public async Task ADeadlineLeftArmedByAnEarlierExchangeNeverCutsALaterUnboundedOneShort()
    {
        // The link's one timer stays armed after an exchange; an unbounded exchange that outlasts it must not be cut.
        // If the first exchange itself runs out of time on a busy machine, the second gets a new link, and passes too.
        var bounded = TimeSpan.FromMilliseconds(300);
        using var upstream = new ScriptedServer(request =>
        {
            var key = int.Parse(request.Trim().Split(' ')[1]);
            if (key == 2)
            {
                Thread.Sleep(bounded * 3); // past the first exchange's deadline
            }

            return (Reply(key) + "\n", false);
        });
        using var handler = new UpstreamHandler(new UpstreamTarget("127.0.0.1", upstream.Port), Framing.Line, ConnectionMode.Persistent);
        _ = await ((IRequestForwarder)handler).ForwardAsync(1, System.Text.Encoding.ASCII.GetBytes("a 1"), bounded, CancellationToken.None).AsTask().WaitAsync(Bound);
        Assert.Equal(Reply(2), await handler.HandleAsync(new KeyRequest("a", "2", 1, null), CancellationToken.None).WaitAsync(Bound));
    }

    [Fact]
    public void TheServerNamesItsUpstream()
    {
        using var front = StartFront(FreePort(), Framing.Line, ConnectionMode.Persistent);
        Assert.Equal("127.0.0.1:" + ((UpstreamHandler)front.Handler!).Target.Port, front.Upstream);
        using var plain = StartServer(o => o.LogPath = null);
        Assert.Null(plain.Upstream);
    }
}

/// <summary>Every test of <see cref="UpstreamTests"/> with the front on the portable async path.</summary>
public sealed class UpstreamTestsOnTheAsyncPath : UpstreamTests
{
    protected override bool UseEventLoops => false;
}
