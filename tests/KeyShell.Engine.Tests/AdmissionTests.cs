using System.Collections.Concurrent;
using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using KeyShell.Engine.Sessions;
using Microsoft.Extensions.Logging.Abstractions;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>One admission path: MaxConnections bounds every accepted socket, TLS handshakes included.</summary>
public class AdmissionTests : TransportTests
{
    [Fact]
    public async Task SilentTlsConnectionsPastTheLimitAreTurnedAwayAtOnceAndARealClientGetsTheNextFreeSlot()
    {
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.Certificate = new ServerCertificate(TestCertificates.Shared.Server);
            o.MaxConnections = 4;
            o.IdleTimeout = TimeSpan.FromSeconds(30); // the handshake timeout: far longer than any wait below
        });
        var descriptorsBefore = OpenDescriptors();
        using var silent = ConnectMany(server.Port, 2000); // TCP only: not one sends a ClientHello
        Eventually(() => server.Rejected == 1996, "all but 4 turned away");
        Assert.Equal(4, server.Handshakes);
        if (descriptorsBefore >= 0)
        {
            // This process holds the 2,000 client sockets; of the server's side only the 4 admitted remain
            // (and a few the runtime may open meanwhile), not 2,000 waiting for the handshake timeout.
            Eventually(() => OpenDescriptors() - descriptorsBefore - 2000 <= 4 + 16, "the server's descriptors of turned-away sockets to be closed");
        }

        Assert.Equal(0, server.ActiveConnections);
        Assert.Equal(0, server.Connections);

        // The server has let go of every socket it turned away: each of those reads the end at once.
        var held = silent.Where(s => !ClosedByPeer(s)).ToArray();
        Assert.Equal(4, held.Length);

        // No room for a real client yet; one silent peer leaving frees a slot for it.
        held[0].Dispose();
        Eventually(() => server.Handshakes == 3, "the freed slot");
        var replies = new ConcurrentQueue<KeyReply>();
        var options = new KeyClientOptions { Port = server.Port, UseTls = true, SkipCertificateCheck = true, Connection = ConnectionMode.Persistent, Timeout = Bound };
        await KeyClient.RunAsync(new[] { ClientSequence.Parse("1 1 2") }, options, new Replies(replies)).WaitAsync(Bound);
        Assert.Equal(new[] { Reply(1), Reply(2) }, replies.Select(r => r.Reply));
        Assert.Equal(1, server.Connections);
        Assert.Equal(1996, server.Rejected);
    }

    [Fact]
    public void PlainConnectionsPastTheLimitReadTheBusyReplyAndAreCountedOnce()
    {
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.MaxConnections = 2;
        });
        using var first = ConnectMany(server.Port, 2);
        foreach (var socket in first)
        {
            Send(socket, "1 1\n");
            Assert.Equal(Reply(1), ReadLines(socket, 1).Single());
        }

        using var turnedAway = ConnectMany(server.Port, 3);
        foreach (var socket in turnedAway)
        {
            Assert.Equal("Error: server busy", ReadToEnd(socket).TrimEnd('\n'));
        }

        Assert.Equal(3, server.Rejected);
        Assert.Equal(2, server.Connections);
    }

    /// <summary>This process's open descriptors, or -1 where /proc does not tell.</summary>
    private static int OpenDescriptors() => Directory.Exists("/proc/self/fd") ? Directory.GetFileSystemEntries("/proc/self/fd").Length : -1;

    private static bool ClosedByPeer(Socket socket)
    {
        if (!socket.Poll((int)Bound.TotalMicroseconds / 100, SelectMode.SelectRead))
        {
            return false; // nothing to read for a while: the server still holds it
        }

        try
        {
            return socket.Receive(new byte[16]) == 0;
        }
        catch (SocketException)
        {
            return true; // reset
        }
    }

    private sealed class Replies : IKeyClientObserver
    {
        private readonly ConcurrentQueue<KeyReply> _replies;

        public Replies(ConcurrentQueue<KeyReply> replies) => _replies = replies;

        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply) => _replies.Enqueue(reply);

        public void OnFailure(KeyClientFailure failure) => throw new InvalidOperationException(failure.Message);
    }
}

/// <summary>Every test of <see cref="AdmissionTests"/> on the portable async path.</summary>
public sealed class AdmissionTestsOnTheAsyncPath : AdmissionTests
{
    protected override bool UseEventLoops => false;
}

/// <summary>The slot count itself: many acceptors racing never take more slots than the limit.</summary>
public sealed class ConnectionSlotTests
{
    [Fact]
    public async Task SixteenAcceptorsRacingNeverTakeMoreSlotsThanTheLimit()
    {
        var events = new ServerEvents(this, new ServerMetrics("127.0.0.1", 0, () => null), NullLogger.Instance);
        using var table = new ConnectionTable(maxConnections: 100, maxHandshakes: 100, TimeSpan.Zero, events);
        var taken = 0;
        var most = 0;
        using var start = new Barrier(16);
        var acceptors = Enumerable.Range(0, 16).Select(_ => Task.Factory.StartNew(
            () =>
            {
                start.SignalAndWait(Bound);
                for (var i = 0; i < 20_000; i++)
                {
                    if (!table.TryTakeSlot())
                    {
                        continue;
                    }

                    var now = Interlocked.Increment(ref taken);
                    InterlockedMax(ref most, now);
                    Interlocked.Decrement(ref taken);
                    table.ReleaseSlot();
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(acceptors).WaitAsync(Bound * 4);
        Assert.InRange(most, 1, 100);
        Assert.Equal(0, table.Slots);
    }

    [Fact]
    public void AtTheLimitEveryAcceptorIsRefusedUntilASlotIsGivenBack()
    {
        var events = new ServerEvents(this, new ServerMetrics("127.0.0.1", 0, () => null), NullLogger.Instance);
        using var table = new ConnectionTable(maxConnections: 3, maxHandshakes: 3, TimeSpan.Zero, events);
        var won = 0;
        Parallel.For(0, 64, _ =>
        {
            if (table.TryTakeSlot())
            {
                Interlocked.Increment(ref won);
            }
        });
        Assert.Equal(3, won);
        Assert.False(table.TryTakeSlot());
        table.ReleaseSlot();
        Assert.True(table.TryTakeSlot());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
