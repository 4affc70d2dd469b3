using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// A non-blocking socket on an event loop, as a <see cref="System.IO.Stream"/>: what lets SslStream, and the
/// stream driver above it, run on the loops. A read or write that can go at once does; one that cannot is
/// completed by the loop when the socket is ready, inline on its thread, so the continuations (SslStream's,
/// the session's) run there too, with no hop to the thread pool, as Tmds.LinuxAsync completes its sockets.
/// One read and one write may be pending at a time (as SslStream and the driver use a stream); calls from
/// another thread (a handler's continuation) are passed to the loop. Its state is the loop thread's.
/// </summary>
internal sealed class PolledStream : System.IO.Stream, IPollable, IStreamSocket, IDeferredSend
{
    private readonly EventLoop _loop;
    private readonly Pending _read = new();
    private readonly Pending _write = new();
    private SocketDescriptor? _socket;
    private ulong _token;
    private bool _registered;
    private Interest _interest;
    private bool _sendQueued; // the write waits for the end of the pass (SendAfterLog)

    /// <summary>Connects to <paramref name="remote"/> without blocking the loop (the handshake is waited for on
    /// the thread pool, only when it does not end at once), then serves the socket on <paramref name="loop"/>.</summary>
    public static async Task<System.IO.Stream> ConnectAsync(EventLoop loop, IPEndPoint remote, CancellationToken cancellationToken)
    {
        var result = Libc.Connect(remote, out var descriptor);
        if (result == -Libc.EINPROGRESS)
        {
            result = await Task.Run(() => WaitForConnect(descriptor, cancellationToken), CancellationToken.None).ConfigureAwait(false);
        }

        if (result < 0)
        {
            if (descriptor >= 0)
            {
                Libc.Close(descriptor);
            }

            cancellationToken.ThrowIfCancellationRequested();
            throw Libc.ToException(-result);
        }

        return new PolledStream(loop, descriptor);
    }

    private static int WaitForConnect(int descriptor, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var ready = Libc.WaitWritable(descriptor, 50); // in slices: a cancel is seen within one
            if (ready > 0)
            {
                return Libc.PendingError(descriptor);
            }

            if (ready < 0 && ready != -Libc.EINTR)
            {
                return ready;
            }
        }

        return -Libc.ECANCELED;
    }

    /// <summary>Takes an accepted (or connected) descriptor; on the loop's thread, or before any call.</summary>
    public PolledStream(EventLoop loop, int descriptor)
    {
        _loop = loop;
        _socket = new SocketDescriptor(descriptor);
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Start(_read, buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var written = Start(_write, System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer), cancellationToken);
        return written.IsCompletedSuccessfully ? default : new ValueTask(written.AsTask());
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("A loop's stream is asynchronous only.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("A loop's stream is asynchronous only.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Any thread: pending calls fail (the loop sees the hang-up).</summary>
    public void Abort() => Volatile.Read(ref _socket)?.Shutdown();

    /// <summary>The FIN; on the loop's thread, after the pass's log lines (as a reply waits for them).</summary>
    public void ShutdownSend()
    {
        _loop.WriteLogNow();
        Volatile.Read(ref _socket)?.Shutdown(SocketShutdown.Send);
    }

    /// <summary>The RST; as <see cref="ShutdownSend"/>, after the pass's log lines.</summary>
    public void Reset() => OnLoop(() =>
    {
        _loop.WriteLogNow();
        Close(new ObjectDisposedException(nameof(PolledStream)), reset: true);
    });

    public void OnReady()
    {
        if (!_read.Active && !_write.Active)
        {
            Unwatch(); // still watched for reads from the last one, and woken for nothing: a hang-up, or bytes no one asked for
            return;
        }

        if (_read.Active)
        {
            TryRead();
        }

        if (_write.Active)
        {
            TryWrite();
        }

        try
        {
            WatchPending();
        }
        catch (Exception e)
        {
            Close(new IOException("The event loop could not watch the connection.", e));
        }
    }

    public void OnLoopEnded(Exception? error)
    {
        _registered = false;
        Close(error ?? new ObjectDisposedException("The event loop has stopped."));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            OnLoop(() => Close(new ObjectDisposedException(nameof(PolledStream))));
        }

        base.Dispose(disposing);
    }

    private ValueTask<int> Start(Pending pending, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!_loop.IsCurrentThread)
        {
            return StartFromAnotherThread(pending, buffer, cancellationToken);
        }

        if (pending.Active)
        {
            throw new InvalidOperationException("A read or write is already pending on this stream.");
        }

        pending.Begin(buffer, cancellationToken, this);
        var isRead = ReferenceEquals(pending, _read);
        if (!isRead && _loop.LogPending)
        {
            QueueSend();
            return new ValueTask<int>(pending, pending.Version);
        }

        if (!(isRead && buffer.IsEmpty))
        {
            // A zero-byte read (SslStream's and the driver's way of holding no buffer while idle) only waits
            // for the socket to be readable, which only the loop learns.
            if (isRead)
            {
                TryRead();
            }
            else
            {
                TryWrite();
            }
        }

        if (pending.Active)
        {
            // Not when it completed at once: a reply sent inline between two reads must not leave the poller
            // and join it again. What is left unasked is let go in OnReady, after the continuations it ran.
            try
            {
                WatchPending();
            }
            catch (Exception e)
            {
                pending.Fail(e); // the kernel refused the registration: this call fails, never waits forever
            }
        }

        return new ValueTask<int>(pending, pending.Version);
    }

    // Its own method: a lambda's captures would otherwise be allocated on every call, also on the loop's thread.
    private ValueTask<int> StartFromAnotherThread(Pending pending, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_loop.HasEnded)
        {
            // Posting would run this on the calling thread again, and again: the loop is gone, so is the socket.
            return new ValueTask<int>(Task.FromException<int>(new ObjectDisposedException(nameof(PolledStream))));
        }

        // A handler's continuation, on the thread pool: the loop's thread does the I/O, and this waits for it.
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Post(() => Forward(pending, buffer, cancellationToken, done));
        return new ValueTask<int>(done.Task);
    }

    private async void Forward(Pending pending, Memory<byte> buffer, CancellationToken cancellationToken, TaskCompletionSource<int> done)
    {
        try
        {
            done.TrySetResult(await Start(pending, buffer, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e)
        {
            done.TrySetException(e);
        }
    }

    /// <summary>The end of the pass: a write that waited for the pass's log lines goes out now.</summary>
    public void SendDeferred()
    {
        _sendQueued = false;
        if (!_write.Active)
        {
            return; // failed or cancelled meanwhile
        }

        TryWrite();
        try
        {
            WatchPending(); // write interest now that the write may wait for the socket
        }
        catch (Exception e)
        {
            _write.Fail(e); // the kernel refused the registration: this write fails, never waits forever
        }
    }

    /// <summary>The log lines of what the pending write carries are not in the file yet: it goes at the end of
    /// the pass. Also when the write began earlier: a read completed in this pass may have run the session, whose
    /// lines are now pending, and whatever the write holds must not overtake them.</summary>
    private void QueueSend()
    {
        if (!_sendQueued)
        {
            _sendQueued = true;
            _loop.SendAfterLog(this);
        }
    }

    private void TryRead()
    {
        if (_socket is null || _loop.HasEnded)
        {
            _read.Fail(new ObjectDisposedException(nameof(PolledStream)));
            return;
        }

        if (_read.Buffer.IsEmpty)
        {
            _read.Complete(0); // called from OnReady: readable now
            return;
        }

        var received = Libc.Receive(_socket.Value, _read.Buffer.Span);
        if (received == -Libc.EAGAIN)
        {
            return;
        }

        if (received < 0)
        {
            _read.Fail(new IOException("The connection was lost.", Libc.ToException(-received)));
            return;
        }

        _read.Complete(received);
    }

    private void TryWrite()
    {
        if (_socket is null || _loop.HasEnded)
        {
            _write.Fail(new ObjectDisposedException(nameof(PolledStream)));
            return;
        }

        if (_loop.LogPending)
        {
            QueueSend();
            return;
        }

        var sent = Libc.SendUntilFull(_socket.Value, _write.Buffer.Span);
        if (sent < 0)
        {
            _write.Fail(new IOException("The connection was lost.", Libc.ToException(-sent)));
            return;
        }

        _write.Buffer = _write.Buffer.Slice(sent);
        if (_write.Buffer.IsEmpty)
        {
            _write.Complete(0);
        }
    }

    /// <summary>
    /// Asks the loop for what is pending. Level-triggered epoll reports a writable socket, and a hung-up one
    /// whatever is asked, on every wait: write interest lasts only while a write waits, and with nothing pending
    /// a socket watched for reads stays so until an event finds nothing to do (then it leaves the poller, back at
    /// the next read or write). A peer that answers each request, as an upstream server does, sends nothing in
    /// between: its socket stays in the poller from one read to the next, with no system call.
    /// </summary>
    private void WatchPending()
    {
        var interest = (_read.Active ? Interest.Read : Interest.None) | (_write.Active && !_sendQueued ? Interest.Write : Interest.None);
        if (interest == Interest.None && _registered && _interest == Interest.Read)
        {
            return;
        }

        if (interest == Interest.None)
        {
            Unwatch();
        }
        else
        {
            Watch(interest);
        }
    }

    private void Unwatch()
    {
        if (_registered && _socket is not null)
        {
            _loop.Unregister(_socket.Value, _token);
        }

        _registered = false;
        _interest = Interest.None;
    }

    private void Watch(Interest interest)
    {
        if ((_registered && interest == _interest) || _socket is null)
        {
            return;
        }

        if (!_registered)
        {
            _token = _loop.Register(_socket.Value, interest, this);
            _registered = true;
        }
        else
        {
            _loop.Change(_socket.Value, interest, _token);
        }

        _interest = interest;
    }

    private void Close(Exception reason, bool reset = false)
    {
        var socket = Interlocked.Exchange(ref _socket, null);
        if (socket is not null)
        {
            if (_registered)
            {
                _loop.Unregister(socket.Value, _token);
                _registered = false;
            }

            socket.Close(shutdownFirst: false, reset);
        }

        _read.Fail(reason);
        _write.Fail(reason);
    }

    private void OnLoop(Action action)
    {
        if (_loop.IsCurrentThread)
        {
            action();
        }
        else
        {
            _loop.Post(action);
        }
    }

    /// <summary>One read or write under way: its buffer, its completion, and its cancellation.</summary>
    private sealed class Pending : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core; // completions run inline: on the loop, where they happen
        private CancellationTokenRegistration _cancel;

        public bool Active { get; private set; }

        public Memory<byte> Buffer { get; set; }

        public short Version => _core.Version;

        public void Begin(Memory<byte> buffer, CancellationToken cancellationToken, PolledStream stream)
        {
            _core.Reset();
            Buffer = buffer;
            Active = true;
            if (cancellationToken.CanBeCanceled)
            {
                _cancel = RegisterCancel(cancellationToken, stream);
            }
        }

        // Its own method: the lambdas' captures are allocated only for a token that can be cancelled.
        private CancellationTokenRegistration RegisterCancel(CancellationToken cancellationToken, PolledStream stream)
        {
            var version = _core.Version; // a late cancel must not reach the next read or write
            return cancellationToken.Register(() => stream.OnLoop(() =>
            {
                if (Version == version)
                {
                    Fail(new OperationCanceledException(cancellationToken));
                    stream.WatchPending();
                }
            }));
        }

        public void Complete(int result)
        {
            if (End())
            {
                _core.SetResult(result);
            }
        }

        public void Fail(Exception error)
        {
            if (End())
            {
                _core.SetException(error);
            }
        }

        public int GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        private bool End()
        {
            if (!Active)
            {
                return false;
            }

            Active = false;
            Buffer = default;
            _cancel.Dispose();
            _cancel = default;
            return true;
        }
    }
}
