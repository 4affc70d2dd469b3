#if !ENGINE_NETSTANDARD
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using KeyShell.Engine.Transport.Epoll;
using static KeyShell.Engine.Tests.LoopTestSupport;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>A loop's socket as a Stream (what SslStream runs on): what it asks the poller for, and how it ends.</summary>
public class PolledStreamTests
{
    [SkippableFact]
    public void WriteInterestLastsOnlyWhileAWriteWaits()
    {
        Skip.IfNot(Libc.IsSupported, "needs Linux epoll");
        using var pair = new LoopSocketPair();
        var read = OnLoop(pair.Loop, () => pair.Stream.ReadAsync(new byte[100], 0, 100));
        var reply = new byte[8 * 1024 * 1024]; // far more than both 4 KiB buffers hold: the write waits for the peer
        var write = OnLoop(pair.Loop, () => pair.Stream.WriteAsync(reply, 0, reply.Length));
        Assert.False(write.IsCompleted);
        Assert.Equal(Interest.Read | Interest.Write, pair.WatchedFor());

        pair.Receive(reply.Length);
        Assert.True(write.Wait(Bound), "the write did not finish");
        OnLoop(pair.Loop, () => 0); // the loop has finished the event that completed it

        // A socket with room to send is reported writable on every wait: watched for that, the loop would spin.
        Assert.Equal(Interest.Read, pair.WatchedFor());
        Assert.False(read.IsCompleted);
    }

    [SkippableFact]
    public void AStreamWithNothingPendingStaysWatchedForReadsUntilAHangUpThenLeavesThePoller()
    {
        Skip.IfNot(Libc.IsSupported, "needs Linux epoll");
        using var pair = new LoopSocketPair();
        var read = OnLoop(pair.Loop, () => pair.Stream.ReadAsync(new byte[100], 0, 100));
        Assert.Equal(Interest.Read, pair.WatchedFor());
        pair.Client.Send(new byte[] { 1 });
        Assert.True(read.Wait(Bound), "the read did not finish");
        OnLoop(pair.Loop, () => 0);

        // Nothing pending, as between a request to an upstream and the next: still watched, so the next read
        // joins no poller. Its calls to the poller so far: the one that added it.
        Assert.Equal(Interest.Read, pair.WatchedFor());
        var next = OnLoop(pair.Loop, () => pair.Stream.ReadAsync(new byte[100], 0, 100));
        pair.Client.Send(new byte[] { 2 });
        Assert.True(next.Wait(Bound), "the second read did not finish");
        OnLoop(pair.Loop, () => 0);
        Assert.Equal(new[] { "add" }, pair.CallsFor());

        // A hang-up with nothing pending, reported on every wait whatever is asked, reaches the loop once: the
        // socket leaves the poller, and stays out.
        pair.Client.Dispose();
        Eventually(() => pair.WatchedFor() is null, "the hung-up socket left the poller");
        OnLoop(pair.Loop, () => 0);
        Assert.Null(pair.WatchedFor());
        Assert.Equal(new[] { "add", "remove" }, pair.CallsFor());

        // The next read learns of the end.
        var last = OnLoop(pair.Loop, () => pair.Stream.ReadAsync(new byte[100], 0, 100));
        Assert.True(((Task)last).ContinueWith(_ => { }, TaskScheduler.Default).Wait(Bound), "the read after the hang-up did not end");
        Assert.True(last.IsFaulted || last.Result == 0);
    }

    [SkippableFact]
    public void AWriteFromAnotherThreadOnceTheLoopHasEndedFails()
    {
        Skip.IfNot(Libc.IsSupported, "needs Linux epoll");
        using var pair = new LoopSocketPair();
        pair.Loop.Dispose(); // as a handler's reply after Stop-KeyServer ended the loops

        var write = Task.Run(async () => await pair.Stream.WriteAsync(new byte[] { 1, 2, 3 }, 0, 3));
        var error = Assert.Throws<AggregateException>(() => write.Wait(Bound));
        Assert.IsType<ObjectDisposedException>(error.InnerException);
    }

    /// <summary>A connected pair: a .NET client, and the accepted end as a PolledStream on its own loop.</summary>
    private sealed class LoopSocketPair : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly RecordingPoller _poller = new();
        private readonly int _descriptor;

        public LoopSocketPair()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(1);
            Client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            {
                ReceiveBufferSize = 4096,
                ReceiveTimeout = (int)Bound.TotalMilliseconds,
            };
            Client.Connect(_listener.LocalEndPoint!);
            using (var accepted = _listener.Accept())
            {
                accepted.SendBufferSize = 4096;
                _descriptor = dup((int)accepted.Handle);
            }

            Libc.SetNonBlocking(_descriptor);
            Loop = new EventLoop("test loop", e => throw e, _poller);
            Stream = OnLoop(Loop, () => new PolledStream(Loop, _descriptor));
        }

        public EventLoop Loop { get; }

        public PolledStream Stream { get; }

        public Socket Client { get; }

        public Interest? WatchedFor() => _poller.Watched.TryGetValue(_descriptor, out var interest) ? interest : null;

        /// <summary>The poller's adds and removes of the stream's socket, in order.</summary>
        public string[] CallsFor() => _poller.Calls.Where(call => call.Descriptor == _descriptor).Select(call => call.Operation).ToArray();

        public void Receive(int count)
        {
            var sink = new byte[65536];
            for (var total = 0; total < count;)
            {
                var received = Client.Receive(sink);
                Assert.True(received > 0, "the connection ended early");
                total += received;
            }
        }

        public void Dispose()
        {
            Stream.Dispose();
            Loop.Dispose();
            _poller.Dispose();
            Client.Dispose();
            _listener.Dispose();
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int dup(int descriptor);
    }
}
#endif
