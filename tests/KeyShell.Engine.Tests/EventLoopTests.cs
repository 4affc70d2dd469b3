#if !ENGINE_NETSTANDARD
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Server;
using KeyShell.Engine.Transport.Epoll;
using static KeyShell.Engine.Tests.LoopTestSupport;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The event loop's own guarantees, with the poller replaced or watched.</summary>
public class EventLoopTests
{
    [Fact]
    public void AnEventForASocketUnregisteredMeanwhileReachesNoOne()
    {
        using var poller = new ScriptedPoller();
        using var loop = new EventLoop("test loop", e => throw e, poller);
        var first = new CountingHandler();
        var second = new CountingHandler();
        var tokens = OnLoop(loop, () =>
        {
            var stale = loop.Register(7, Interest.Read, first);
            loop.Unregister(7, stale);
            var live = loop.Register(8, Interest.Read, second); // reuses the slot, with a new generation
            return (stale, live);
        });
        Assert.NotEqual(tokens.stale, tokens.live);

        poller.Deliver(tokens.stale, tokens.live, tokens.stale);
        OnLoop(loop, () => 0); // the batch above has been dispatched
        Assert.Equal(0, first.Ready);
        Assert.Equal(1, second.Ready);
    }

    [SkippableFact]
    public void WorkPostedFromTheLoopsOwnThreadRunsWithoutWakingItsPoller()
    {
        Skip.IfNot(Libc.IsSupported, "needs Linux epoll");
        using var poller = new RecordingPoller();
        using var loop = new EventLoop("test loop", e => throw e, poller);
        using var ran = new ManualResetEventSlim();
        var wakes = -1;
        OnLoop(loop, () =>
        {
            // From a timer, which runs after the posted work of its pass: only the wait's look at the queue finds it.
            loop.Schedule(TimeSpan.Zero, () =>
            {
                var before = poller.Wakes;
                loop.Post(ran.Set); // as a handler's reply that came on the loop's thread
                Volatile.Write(ref wakes, poller.Wakes - before);
            });
            return 0;
        });
        Assert.True(ran.Wait(Bound), "the posted work did not run");
        Assert.Equal(0, Volatile.Read(ref wakes));
    }

    [SkippableFact]
    public void AListenerPausedForLackOfDescriptorsIsNeverWatchedAgainOnceStopped()
    {
        Skip.IfNot(Libc.IsSupported, "needs Linux epoll");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var descriptor = (int)listener.Handle;
        Libc.SetNonBlocking(descriptor);
        using var poller = new RecordingPoller();
        using var loop = new EventLoop("test loop", e => throw e, poller);
        var watched = new EventLoopListener(loop, descriptor, (_, fd, _) => Libc.Close(fd), _ => { });
        loop.Post(watched.Listen);
        Eventually(() => poller.Calls.Contains(("add", descriptor)), "the listener watched");

        // Out of descriptors, then a stop before the pause ends: in that order, on the loop, at once.
        Task? stopped = null;
        OnLoop(loop, () =>
        {
            watched.PauseForShortage();
            stopped = watched.StopAsync();
            return 0;
        });
        Assert.True(stopped!.Wait(Bound));

        // A timer due after the pause's: when it runs, the pause's own timer has run too.
        var later = new ManualResetEventSlim();
        loop.Post(() => loop.Schedule(TimeSpan.FromMilliseconds(50), later.Set));
        Assert.True(later.Wait(Bound));
        Assert.Equal(new[] { ("add", descriptor), ("remove", descriptor) }, poller.Calls.Where(c => c.Descriptor == descriptor));
    }

    [Theory]
    [InlineData(24, SocketError.TooManyOpenSockets)]
    [InlineData(23, SocketError.TooManyOpenSockets)]
    [InlineData(111, SocketError.ConnectionRefused)]
    [InlineData(104, SocketError.ConnectionReset)]
    [InlineData(12, SocketError.NoBufferSpaceAvailable)]
    [InlineData(9, SocketError.OperationAborted)]
    public void AnErrnoBecomesTheSocketErrorDotNetWouldReport(int errno, SocketError expected)
    {
        Assert.Equal(expected, Libc.ToSocketError(errno));
        var thrown = Assert.Throws<SocketException>(() => Libc.Check(-errno, "epoll_ctl"));
        Assert.Equal(expected, thrown.SocketErrorCode);
        Assert.Contains("epoll_ctl", thrown.Message);
    }

    private sealed class CountingHandler : IPollable
    {
        public int Ready;

        public void OnReady() => Ready++;

        public void OnLoopEnded(Exception? error)
        {
        }
    }

    /// <summary>A poller whose events the test decides.</summary>
    private sealed class ScriptedPoller : IPoller
    {
        private readonly BlockingCollection<ulong[]> _batches = new();

        public void Deliver(params ulong[] tokens) => _batches.Add(tokens);

        public void Add(int descriptor, Interest interest, ulong token)
        {
        }

        public void Change(int descriptor, Interest interest, ulong token)
        {
        }

        public void Remove(int descriptor)
        {
        }

        public int Wait(Span<ulong> tokens, int timeoutMs)
        {
            if (!_batches.TryTake(out var batch, timeoutMs < 0 ? 20 : Math.Min(timeoutMs, 20)))
            {
                return 0;
            }

            batch.CopyTo(tokens);
            return batch.Length;
        }

        public void Wake() => _batches.Add(Array.Empty<ulong>());

        public void Dispose() => _batches.Dispose();
    }
}
#endif
