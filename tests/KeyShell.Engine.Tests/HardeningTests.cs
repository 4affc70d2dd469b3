using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>Bad input, overload and faults: each gets an error reply or a clean close, and nothing is lost.</summary>
#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as HardeningTestsOnTheAsyncPath.
public abstract class HardeningTests : TransportTests
#else
public class HardeningTests : TransportTests
#endif
{
    public static TheoryData<string, byte[]> BadInputs => new()
    {
        { "empty line", "\n"u8.ToArray() },
        { "spaces only", "   \n"u8.ToArray() },
        { "one token", "7\n"u8.ToArray() },
        { "three tokens", "1 2 3\n"u8.ToArray() },
        { "key out of range", "1 10\n"u8.ToArray() },
        { "negative key", "1 -1\n"u8.ToArray() },
        { "non-numeric key", "1 x\n"u8.ToArray() },
        { "huge number", "1 99999999999999999999999999999999\n"u8.ToArray() },
        { "tab instead of space", "1\t2\n"u8.ToArray() },
        { "NUL and control bytes", new byte[] { (byte)'1', (byte)' ', 0, 1, 2, 0x1B, (byte)'\n' } },
        { "invalid UTF-8", new byte[] { (byte)'1', (byte)' ', 0xC3, 0x28, 0xFF, (byte)'\n' } },
        { "65-character client", Encoding.ASCII.GetBytes(new string('c', 65) + " 1\n") },
        { "CR inside the client", "1\r2 3\n"u8.ToArray() },
        { "LF inside the client", "1\n2 3\n"u8.ToArray() },
        { "HTTP request", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray() },
        { "1 MB line", Encoding.ASCII.GetBytes(new string('9', 1024 * 1024) + "\n") },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputGetsAnErrorOrACleanCloseAndEveryoneElseIsStillServed(string what, byte[] input)
    {
        using var server = StartServer(o => o.IdleTimeout = TimeSpan.FromSeconds(2));
        using var bystander = Connect(server.Port);
        using (var bad = Connect(server.Port))
        {
            bad.Send(input);
            bad.Shutdown(SocketShutdown.Send);
            var reply = ReadToEnd(bad);
            var lines = reply.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length > 0 || reply.Length == 0, what);
            Assert.All(lines, l => Assert.True(l.StartsWith("Error:") || l.StartsWith("Response for the key"), $"{what}: '{l}'"));
            Assert.Contains(lines, l => l.StartsWith("Error:"));
        }

        Send(bystander, "2 4\n");
        Assert.Equal(Reply(4), ReadLines(bystander, 1).Single());
        Assert.True(server.Errors > 0, what);
        server.Stop();
        AssertLogWellFormed(server.LogPath!);
    }

    [Fact]
    public void AHalfClosedConnectionGetsItsLastRequestAnswered()
    {
        using var server = StartServer();
        using var line = Connect(server.Port);
        Send(line, "1 1\n1 2");
        line.Shutdown(SocketShutdown.Send);
        Assert.Equal($"{Reply(1)}\n{Reply(2)}\n", ReadToEnd(line));

        using var legacy = Connect(server.Port);
        Send(legacy, "abc");
        legacy.Shutdown(SocketShutdown.Send);
        Assert.StartsWith("Error: malformed request", ReadToEnd(legacy));
    }

    [Fact]
    public void ConnectionsClosedMidRequestOrResetLeaveTheServerServing()
    {
        using var server = StartServer();
        for (var i = 0; i < 50; i++)
        {
            var socket = Connect(server.Port);
            Send(socket, "1 ");
            if (i % 2 == 0)
            {
                socket.LingerState = new LingerOption(true, 0); // close with a reset
            }

            socket.Dispose();
        }

        Eventually(() => server.ActiveConnections == 0, "the dropped connections to be closed");
        using var client = Connect(server.Port);
        Send(client, "1 3\n");
        Assert.Equal(Reply(3), ReadLines(client, 1).Single());
    }

    [Fact]
    public void TenThousandConnectionsOpenedAndDroppedLeaveNothingBehind()
    {
        using var server = StartServer(o => o.LogPath = null);
        Parallel.For(0, 8, worker =>
        {
            for (var i = 0; i < 1250; i++)
            {
                using var socket = Connect(server.Port);
            }
        });
        // Connects complete in the kernel before the server accepts them: wait for all to be accepted and closed.
        Eventually(() => server.Connections == 10_000 && server.ActiveConnections == 0, "every dropped connection to be accepted and closed");
        using var client = Connect(server.Port);
        Send(client, "1 5\n");
        Assert.Equal(Reply(5), ReadLines(client, 1).Single());
    }

    [Fact]
    public async Task AStopUnderLoadOf64ConnectionsReturnsWithinTheDrainTimeoutAndLosesNothing()
    {
        using var server = StartServer(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var answered = new int[64];
        var clients = Enumerable.Range(0, 64).Select(i => Task.Run(() =>
        {
            try
            {
                using var client = Connect(server.Port);
                for (var n = 0; n < 1_000_000; n++)
                {
                    Send(client, $"{i} {n % 10}\n");
                    if (ReadLines(client, 1).Length == 0)
                    {
                        return;
                    }

                    answered[i]++;
                }
            }
            catch (SocketException)
            {
            }
        })).ToArray();
        Eventually(() => server.Requests > 5000, "load to build up");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        server.Stop();

        // The drain timeout bounds the stop, though the clients never stop sending: a generous multiple of it
        // (an end, not a speed; the stop also flushes the log).
        Assert.True(watch.Elapsed < 10 * server.ShutdownTimeout, $"stop took {watch.Elapsed}");
        await Task.WhenAll(clients).WaitAsync(Bound);
        var lines = File.ReadAllLines(server.LogPath!);
        for (var i = 0; i < 64; i++)
        {
            Assert.True(lines.Count(l => l.StartsWith($"Server: {i} Response")) >= answered[i], $"client {i}");
        }

        AssertLogWellFormed(server.LogPath!);
    }

    [Fact]
    public async Task AClientThatSendsWithoutReadingIsHeldBackThenGetsEveryReplyInOrder()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var flooder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveBufferSize = 64 * 1024, // fixed before connecting: no autotuning, so the replies back up soon
            ReceiveTimeout = (int)Bound.TotalMilliseconds,
        };
        flooder.Connect(System.Net.IPAddress.Loopback, server.Port);
        const int Batches = 200, PerBatch = 1000;
        var batch = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, PerBatch).Select(i => $"1 {i % 10}\n")));
        var sender = Task.Run(() =>
        {
            for (var b = 0; b < Batches; b++)
            {
                flooder.Send(batch);
            }
        });

        // The server stops reading from a client whose replies it cannot send: the count stops short. No event
        // marks the moment it holds back, so wait (bounded) until the count stands still for 300 ms. The verdict
        // does not rest on that wait: the 5.4 MB of replies cannot fit in the socket buffers (the client's is 64 KiB,
        // the server's at most tcp_wmem's 4 MiB), so the count is short at any moment.
        long before = -1, now;
        var deadline = DateTime.UtcNow + Bound;
        while ((now = server.Requests) != before && DateTime.UtcNow < deadline)
        {
            before = now;
            await Task.Delay(300);
        }

        // (The sender may well have finished: the kernel buffers hold much of what it sent.)
        Assert.True(now < Batches * PerBatch, $"the server answered {now} requests of a client that reads nothing");

        // Everyone else is still served meanwhile.
        using (var bystander = Connect(server.Port))
        {
            Send(bystander, "2 4\n");
            Assert.Equal(Reply(4), ReadLines(bystander, 1).Single());
        }

        // Reading lets it go on; every reply arrives, in request order.
        var expected = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, PerBatch).Select(i => Reply(i % 10) + "\n")));
        var received = new byte[expected.Length];
        for (var b = 0; b < Batches; b++)
        {
            var filled = 0;
            while (filled < received.Length)
            {
                var count = flooder.Receive(received, filled, received.Length - filled, SocketFlags.None);
                Assert.True(count > 0, $"the connection closed after {b} batches");
                filled += count;
            }

            Assert.True(expected.AsSpan().SequenceEqual(received), $"batch {b} differs");
        }

        await sender.WaitAsync(Bound);
    }

    [Fact]
    public void ADeletedLogIsReportedAndAFreshOneStartedWhileServingGoesOn()
    {
        using var server = StartServer();
        var failures = 0;
        server.ErrorOccurred += (_, _) => Interlocked.Increment(ref failures);
        using var client = Connect(server.Port);
        Send(client, "1 1\n");
        ReadLines(client, 1);
        File.Delete(server.LogPath!);
        var deadline = DateTime.UtcNow + Bound;
        var n = 0;
        while (server.LogErrors == 0 && DateTime.UtcNow < deadline)
        {
            Send(client, $"1 {n++ % 10}\n");
            Assert.Single(ReadLines(client, 1));
            Thread.Sleep(20); // pacing, not a wait: a request every 20 ms until the writer notices the deleted file
        }

        Assert.True(server.LogErrors > 0);
        Assert.True(Volatile.Read(ref failures) > 0);
        Send(client, "1 9\n");
        Assert.Equal(Reply(9), ReadLines(client, 1).Single());
        server.Stop();
        Assert.Contains("Server: 1 " + Reply(9), File.ReadAllLines(server.LogPath!));
    }

    [SkippableFact]
    public void AFullDiskIsReportedAndRequestsAreServedUnlogged()
    {
        Skip.IfNot(File.Exists("/dev/full"), "no /dev/full on this machine (a Linux device on which every write fails with ENOSPC)");
        using var server = StartServer(o => o.LogPath = "/dev/full");
        var failures = 0;
        server.ErrorOccurred += (_, e) => { if (e.Error is IOException) { Interlocked.Increment(ref failures); } };
        using var client = Connect(server.Port);
        for (var i = 0; i < 100; i++)
        {
            Send(client, $"1 {i % 10}\n");
            Assert.Equal(Reply(i % 10), ReadLines(client, 1).Single());
        }

        Assert.True(server.LogErrors >= 100); // every batch counts (each request here is one)

        // The first failure (the launch line) was raised before this test subscribed; the next is raised
        // within a second while failures go on.
        var deadline = DateTime.UtcNow + Bound;
        var n = 0;
        while (Volatile.Read(ref failures) == 0 && DateTime.UtcNow < deadline)
        {
            Send(client, $"1 {n++ % 10}\n");
            Assert.Single(ReadLines(client, 1));
            Thread.Sleep(20); // pacing, not a wait: a request every 20 ms until the next report is due
        }

        Assert.True(Volatile.Read(ref failures) > 0);
    }

    [Fact]
    public async Task ThousandsOfRandomByteStringsThenTheSeedsSessionStillWorksAndTheLogParses()
    {
        using var server = StartServer(o => o.IdleTimeout = TimeSpan.FromSeconds(2));
        var random = new Random(20261125);
        await Parallel.ForEachAsync(Enumerable.Range(0, 2000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            byte[] garbage;
            lock (random)
            {
                garbage = new byte[random.Next(1, 300)];
                random.NextBytes(garbage);
            }

            using var socket = Connect(server.Port);
            socket.Send(garbage);
            socket.Shutdown(SocketShutdown.Send);
            await Task.Run(() => ReadToEnd(socket));
        });

        var sequences = new[] { "seed1 1 2 3", "seed2 4 5 6", "seed3 7 8 9" };
        var replies = new System.Collections.Concurrent.ConcurrentQueue<KeyReply>();
        await KeyClient.RunAsync(sequences.Select(ClientSequence.Parse).ToArray(), new KeyClientOptions { Port = server.Port }, new ReplyCollector(replies)).WaitAsync(Bound);
        Assert.Equal(9, replies.Count(r => !r.IsError));
        server.Stop();
        AssertLogWellFormed(server.LogPath!);
        Assert.True(ConversationCheck.Verify(server.LogPath!, sequences.Select(ClientSequence.Parse).ToDictionary(s => s.ClientId, s => s.Keys)).IsValid);
    }

    /// <summary>Every line parses, and every request has its reply in FIFO order.</summary>
    private static void AssertLogWellFormed(string path)
    {
        var lines = ConversationCheck.Read(path).ToArray();
        Assert.All(lines, l => Assert.True(l.Entry is not null, $"line {l.LineNumber} does not parse: {l.Line}"));
        var check = ConversationCheck.Verify(lines);
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(check.Requests, check.Replies);
    }

    private sealed class ReplyCollector : IKeyClientObserver
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<KeyReply> _replies;

        public ReplyCollector(System.Collections.Concurrent.ConcurrentQueue<KeyReply> replies) => _replies = replies;

        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply) => _replies.Enqueue(reply);

        public void OnFailure(KeyClientFailure failure) => throw new InvalidOperationException(failure.Message);
    }
}

/// <summary>Every test of <see cref="HardeningTests"/> on the portable async path.</summary>
public sealed class HardeningTestsOnTheAsyncPath : HardeningTests
{
    protected override bool UseEventLoops => false;
}
