using System.Collections.Concurrent;
using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as ClientTestsOnTheAsyncPath.
public abstract class ClientTests
#else
public class ClientTests
#endif
{
    /// <summary>Linux runs sequences on event loops; <see cref="ClientTestsOnTheAsyncPath"/> runs the portable path.</summary>
    protected virtual bool UseEventLoops => true;

    private KeyClientOptions OnThisPath(KeyClientOptions options)
    {
        options.UseEventLoops = UseEventLoops;
        return options;
    }

    private static readonly string[] SeedSequences = { "1 1 2 3", "2 4 5 6", "3 7 8 9" };

    private sealed class Collector : IKeyClientObserver
    {
        public ConcurrentQueue<KeyReply> Replies { get; } = new();

        public ConcurrentQueue<KeyClientFailure> Failures { get; } = new();

        public ConcurrentQueue<string> Sent { get; } = new();

        public ConcurrentQueue<string?> ReplyThreads { get; } = new();

        public bool WantsSendNotices => true;

        public void OnSending(string clientId, string key) => Sent.Enqueue($"{clientId} {key}");

        public void OnReply(KeyReply reply)
        {
            ReplyThreads.Enqueue(Thread.CurrentThread.Name);
            Replies.Enqueue(reply);
        }

        public void OnFailure(KeyClientFailure failure) => Failures.Enqueue(failure);
    }

    private Task<KeyClientSummary> Run(int port, Collector collector, ConnectionMode mode, Framing framing, params string[] sequences) =>
        KeyClient.RunAsync(
            sequences.Select(ClientSequence.Parse).ToArray(),
            OnThisPath(new KeyClientOptions { Port = port, Connection = mode, Framing = framing }),
            collector).WaitAsync(Bound);

    private static void AssertEveryReplyRightAndInOrder(Collector collector, string[] sequences)
    {
        foreach (var sequence in sequences.Select(ClientSequence.Parse))
        {
            var own = collector.Replies.Where(r => r.ClientId == sequence.ClientId).ToArray();
            Assert.Equal(Enumerable.Range(0, sequence.Keys.Count), own.Select(r => r.Index));
            Assert.Equal(sequence.Keys.Select(k => Reply(int.Parse(k))), own.Select(r => r.Reply));
        }
    }

    [Fact]
    public async Task LinuxRunsSequencesOnEventLoopsAndOtherwiseOnTheAsyncPath()
    {
        using var server = StartServer();
        var collector = new Collector();
        await Run(server.Port, collector, ConnectionMode.Persistent, Framing.Line, SeedSequences);
        var onLoops = UseEventLoops && OperatingSystem.IsLinux();
        Assert.All(collector.ReplyThreads, name => Assert.Equal(onLoops, name?.StartsWith("KeyShell client loop", StringComparison.Ordinal) == true));
    }

    [SkippableTheory]
    [InlineData(ConnectionMode.PerMessage)]
    [InlineData(ConnectionMode.Persistent)]
    public async Task TheSeedsSessionOverIPv6(ConnectionMode mode)
    {
        SkipWithoutIPv6(System.Net.IPAddress.IPv6Loopback);
        using var server = StartServer(o => o.Address = System.Net.IPAddress.IPv6Loopback);
        var collector = new Collector();
        var summary = await KeyClient.RunAsync(
            SeedSequences.Select(ClientSequence.Parse).ToArray(),
            OnThisPath(new KeyClientOptions { ComputerName = "::1", Port = server.Port, Connection = mode }),
            collector).WaitAsync(Bound);
        Assert.Empty(collector.Failures);
        Assert.Equal(9, summary.Replies);
        AssertEveryReplyRightAndInOrder(collector, SeedSequences);
    }

    [Theory]
    [InlineData(ConnectionMode.PerMessage, Framing.Line)]
    [InlineData(ConnectionMode.Persistent, Framing.Line)]
    [InlineData(ConnectionMode.PerMessage, Framing.Legacy)]
    [InlineData(ConnectionMode.Persistent, Framing.Legacy)]
    public async Task TheSeedsSessionAgainstKeyShell(ConnectionMode mode, Framing framing)
    {
        using var server = StartServer();
        var collector = new Collector();
        var summary = await Run(server.Port, collector, mode, framing, SeedSequences);
        Assert.Empty(collector.Failures);
        Assert.Equal(9, summary.Replies);
        AssertEveryReplyRightAndInOrder(collector, SeedSequences);
        Assert.All(collector.Replies, r => Assert.NotNull(r.Value));
    }

    [Theory]
    [InlineData(ConnectionMode.PerMessage)]
    [InlineData(ConnectionMode.Persistent)]
    public async Task LegacyFramingAgainstAStandInForTheSeedsServer(ConnectionMode mode)
    {
        using var seed = new SeedStandInServer();
        var collector = new Collector();
        await Run(seed.Port, collector, mode, Framing.Legacy, SeedSequences);
        Assert.Empty(collector.Failures);
        AssertEveryReplyRightAndInOrder(collector, SeedSequences);
        lock (seed.Received)
        {
            Assert.Equal(9, seed.Received.Count);
            Assert.All(seed.Received, m => Assert.DoesNotContain("\n", m));
        }
    }

    [Fact]
    public async Task ALargeSessionKeepsEverySequenceInOrder()
    {
        using var server = StartServer();
        var sequences = Enumerable.Range(1, 50).Select(c => c + " " + string.Join(" ", Enumerable.Range(0, 20).Select(i => (c + i) % 10))).ToArray();
        var collector = new Collector();
        await Run(server.Port, collector, ConnectionMode.Persistent, Framing.Line, sequences);
        Assert.Empty(collector.Failures);
        Assert.Equal(1000, collector.Replies.Count);
        AssertEveryReplyRightAndInOrder(collector, sequences);
    }

    [Fact]
    public async Task TwoSequencesWithOneClientIdAreRefusedBeforeAnyConnection()
    {
        using var server = StartServer();
        var collector = new Collector();
        var refused = await Assert.ThrowsAsync<DuplicateClientIdException>(() => Run(server.Port, collector, ConnectionMode.Persistent, Framing.Line, "2 5", "1 1 2", "1 3 4"));
        Assert.Equal("1", refused.ClientId);
        Assert.Equal("1 1 2", refused.First.ToString());
        Assert.Equal("1 3 4", refused.Second.ToString());
        Assert.Contains("'1 1 2' and '1 3 4'", refused.Message);
        Assert.Null(refused.ParamName);
        Assert.Empty(collector.Sent);
        Assert.Empty(collector.Replies);
        Assert.Equal(0, server.Connections);
    }

    [Fact]
    public async Task ErrorRepliesAreRepliesNotFailures()
    {
        using var server = StartServer();
        var collector = new Collector();
        await Run(server.Port, collector, ConnectionMode.Persistent, Framing.Line, "1 42 x 3");
        Assert.Empty(collector.Failures);
        Assert.Equal(new[] { true, true, false }, collector.Replies.Select(r => r.IsError));
        Assert.Null(collector.Replies.First().Value);
    }

    /// <summary>A stand-in server that answers each connection's requests with <paramref name="answer"/>.</summary>
    private static (System.Net.Sockets.TcpListener Listener, Task Serving) StandIn(Func<System.Net.Sockets.NetworkStream, Task> answer)
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var serving = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            await answer(client.GetStream());
        });
        return (listener, serving);
    }

    [Fact]
    public async Task ReplyLinesSplitAcrossReadsAreJoined()
    {
        // Reply 1 comes in two reads; the head of reply 2 comes with the end of reply 1, before request 2.
        var (listener, serving) = StandIn(async stream =>
        {
            var buffer = new byte[64];
            _ = await stream.ReadAsync(buffer);
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes("Response for"));

            // Nothing on the client's side says it has read the head: a pause makes the split likely. Where the
            // two writes still arrive in one read, the test checks the rest (reply 2's head with reply 1's end).
            await Task.Delay(50);
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(" the key 1 : 45\nResponse for the key 2"));
            _ = await stream.ReadAsync(buffer);
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(" : 78\r\n"));
            await ReadUntilClosed(stream); // the client closes once it has both replies
        });
        using (listener)
        {
            var collector = new Collector();
            var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            await Run(port, collector, ConnectionMode.Persistent, Framing.Line, "1 1 2");
            Assert.Empty(collector.Failures);
            Assert.Equal(new[] { Reply(1), Reply(2) }, collector.Replies.Select(r => r.Reply));
            await serving.WaitAsync(Bound);
        }
    }

    [Fact]
    public async Task AReplyWithoutEndIsAProtocolError()
    {
        var (listener, serving) = StandIn(async stream =>
        {
            _ = await stream.ReadAsync(new byte[64]);
            await stream.WriteAsync(new byte[70_000].Select(_ => (byte)'x').ToArray()); // no LF, ever

            // Held open until the client gives up on the reply (a close here would be a lost connection instead).
            await ReadUntilClosed(stream);
        });
        using (listener)
        {
            var collector = new Collector();
            var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            await Run(port, collector, ConnectionMode.Persistent, Framing.Line, "1 1 2");
            var failure = Assert.Single(collector.Failures);
            Assert.Equal(FailureKind.ProtocolError, failure.Kind);
            Assert.Contains("longer than 65536 bytes", failure.Message);
            Assert.Empty(collector.Replies);
            await serving.WaitAsync(Bound);
        }
    }

    /// <summary>Reads until the client closes its end (or resets it), bounded.</summary>
    private static async Task ReadUntilClosed(System.Net.Sockets.NetworkStream stream)
    {
        var buffer = new byte[256];
        try
        {
            while (await stream.ReadAsync(buffer).AsTask().WaitAsync(Bound) > 0)
            {
            }
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task AClosedPortFailsEverySequenceAtOnce()
    {
        using var refusing = RefusingPort(out var port);
        var collector = new Collector();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Run(port, collector, ConnectionMode.PerMessage, Framing.Line, SeedSequences);

        // A refused connect fails at once; a client that waited out its request timeout (10 s) would not
        // meet half of it. Only an end is asserted, not a speed.
        Assert.True(watch.Elapsed < new KeyClientOptions().Timeout / 2, $"took {watch.Elapsed}");
        Assert.Equal(3, collector.Failures.Count);
        Assert.All(collector.Failures, f => Assert.Equal(0, f.Index));

        // The first refused connect makes the watchdog probe: the others fail on their own connect, or are
        // stopped because the server is gone, whichever comes first.
        Assert.Contains(collector.Failures, f => f.Kind == FailureKind.ConnectFailed && f.Message.Contains("connection refused"));
        Assert.All(collector.Failures, f => Assert.True(f.Kind is FailureKind.ConnectFailed or FailureKind.ServerGone, f.Message));
    }

    [Fact]
    public async Task WhenTheServerGoesAwayMidRunTheRunEndsWithinAboutASecond()
    {
        using var server = StartServer();
        var sequences = Enumerable.Range(1, 8).Select(c => c + " " + string.Join(" ", Enumerable.Repeat(c % 10, 100_000))).ToArray();
        var collector = new Collector();
        var run = Run(server.Port, collector, ConnectionMode.Persistent, Framing.Line, sequences);
        Eventually(() => collector.Replies.Count > 1000, "the run to get going");
        server.Stop();
        await run;

        // Every sequence noticed the server going away (a lost connection, a refused reconnect, or the watchdog's
        // probe, which runs every second) rather than waiting out its request timeout; the run ended within the
        // bound of Run.
        Assert.Equal(8, collector.Failures.Count);
        Assert.All(collector.Failures, f => Assert.True(f.Index > 0 && f.Index < 100_000));
        Assert.All(collector.Failures, f => Assert.True(f.Kind is FailureKind.ConnectionLost or FailureKind.ConnectFailed or FailureKind.ServerGone, $"{f.Kind}: {f.Message}"));
    }

    [Fact]
    public async Task ASilentServerTimesOut()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        var collector = new Collector();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await KeyClient.RunAsync(new[] { ClientSequence.Parse("1 1") }, OnThisPath(new KeyClientOptions { Port = port, Timeout = TimeSpan.FromMilliseconds(500) }), collector).WaitAsync(Bound);
        Assert.Equal(FailureKind.Timeout, collector.Failures.Single().Kind);

        // The 500 ms asked for, not the default 10 s: a generous bound between the two (an end, not a speed).
        Assert.True(watch.Elapsed < new KeyClientOptions().Timeout / 2, $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task CancellingStopsPromptly()
    {
        using var server = StartServer();
        using var cancel = new CancellationTokenSource();
        var collector = new Collector();
        var run = KeyClient.RunAsync(new[] { ClientSequence.Parse("1 " + string.Join(" ", Enumerable.Repeat("1", 1_000_000))) }, OnThisPath(new KeyClientOptions { Port = server.Port, Connection = ConnectionMode.Persistent }), collector, cancel.Token);
        Eventually(() => collector.Replies.Count > 100, "the run to get going");
        cancel.Cancel();
        await run.WaitAsync(Bound);
        Assert.Equal(FailureKind.Cancelled, collector.Failures.Single().Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("   ")]
    public void SequencesWithoutKeysAreRejected(string text)
    {
        Assert.Throws<FormatException>(() => ClientSequence.Parse(text));
    }

    [Fact]
    public void SequencesParseAsTheSeeds()
    {
        var sequence = ClientSequence.Parse("3 7 8 9");
        Assert.Equal("3", sequence.ClientId);
        Assert.Equal(new[] { "7", "8", "9" }, sequence.Keys);
    }

    [Fact]
    public async Task TheClientLogHasEachRequestAndReply()
    {
        using var server = StartServer();
        var path = Path.Combine(TempDirectory(), "client.txt");
        await KeyClient.RunAsync(SeedSequences.Select(ClientSequence.Parse).ToArray(), OnThisPath(new KeyClientOptions { Port = server.Port, LogPath = path }), new Collector()).WaitAsync(Bound);
        var lines = File.ReadAllLines(path);
        Assert.Equal("SYSTEM: Client launched", lines.First());
        Assert.Equal("SYSTEM: Client stopped", lines.Last());
        Assert.Equal(new[] { "Client: 3 7", "Server: 3 " + Reply(7), "Client: 3 8", "Server: 3 " + Reply(8), "Client: 3 9", "Server: 3 " + Reply(9) },
            lines.Where(l => l.Contains(": 3 ")));
    }
}

/// <summary>The same client tests on the portable async path (Windows, macOS, Windows PowerShell).</summary>
public class ClientTestsOnTheAsyncPath : ClientTests
{
    protected override bool UseEventLoops => false;
}
