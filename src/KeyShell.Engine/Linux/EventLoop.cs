#if NET
using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace KeyShell.Engine.Linux;

/// <summary>
/// One thread serving many connections, as memcached's workers do: epoll says which sockets are ready,
/// and this thread reads, answers and sends for each of them inline. The default .NET socket engine
/// also waits on epoll, but then queues every completion to the thread pool; on a busy 2-core machine
/// that hop cost more than the answer itself. Level-triggered, one read per ready event, so one busy
/// connection cannot starve the others. The server's connections and the client's sequences both run on
/// these loops, as <see cref="IReadyHandler"/>s.
/// </summary>
internal sealed class EventLoop : IDisposable
{
    private const int MaxEvents = 256;
    private const ulong WakeToken = 0; // GCHandles are pointers: never 0 or 1
    private const ulong ListenerToken = 1;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly Action<Exception> _onError;
    private volatile bool _stopping;
    private bool _stopped;
    private bool _disposed;
    private int _listener = -1;
    private Action<EventLoop>? _onAcceptable;
    private bool _listeningPaused;   // loop thread only
    private int _resumeListeningAt;  // Environment.TickCount at which a paused listener is watched again

    public bool IsCurrentThread => Thread.CurrentThread == _thread;

    public EventLoop(string name, Action<Exception> onError)
    {
        _onError = onError;
        _epoll = LinuxSockets.CreateEpoll();
        try
        {
            _wake = LinuxSockets.CreateEventFd();
            LinuxSockets.Add(_epoll, _wake, LinuxSockets.EPOLLIN, WakeToken);
        }
        catch
        {
            LinuxSockets.Close(_epoll);
            throw;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.UnsafeStart(); // no ExecutionContext: the server does not carry its starter's AsyncLocals
    }

    /// <summary>
    /// A registration for <paramref name="handler"/>, not yet receiving events: the handler must hold it
    /// before <see cref="Registration.Start"/>, since the first event can arrive before that call returns.
    /// </summary>
    public Registration CreateRegistration(IReadyHandler handler, int descriptor) =>
        new(this, descriptor, GCHandle.Alloc(handler));

    /// <summary>
    /// Also waits for connections on <paramref name="listener"/> (a non-blocking listening socket):
    /// <paramref name="onAcceptable"/> runs on this thread to accept them. Every loop of a server watches
    /// the same listener; EPOLLEXCLUSIVE wakes only one of them per connection.
    /// </summary>
    public void Listen(int listener, Action<EventLoop> onAcceptable)
    {
        _onAcceptable = onAcceptable;
        _listener = listener;
        LinuxSockets.Add(_epoll, listener, LinuxSockets.EPOLLIN | LinuxSockets.EPOLLEXCLUSIVE, ListenerToken);
    }

    /// <summary>
    /// Stops watching the listener for a moment; call on the loop's thread. Out of descriptors, a pending
    /// connection cannot be accepted and stays pending; level-triggered epoll would report it again at once,
    /// in a busy loop. The loop itself watches the listener again when the pause ends (its epoll_wait
    /// times out then): no timer callback, which would need a thread-pool thread, and starting a thread
    /// can fail when the process is out of descriptors.
    /// </summary>
    public void PauseListening(TimeSpan pause)
    {
        LinuxSockets.Remove(_epoll, _listener);
        _listeningPaused = true;
        _resumeListeningAt = Environment.TickCount + (int)pause.TotalMilliseconds;
    }

    /// <summary>Milliseconds epoll_wait may block: until a paused listener is due again, else no limit.</summary>
    private int WaitTimeout()
    {
        if (!_listeningPaused)
        {
            return -1;
        }

        var left = unchecked(_resumeListeningAt - Environment.TickCount);
        if (left > 0)
        {
            return left;
        }

        _listeningPaused = false;
        LinuxSockets.Add(_epoll, _listener, LinuxSockets.EPOLLIN | LinuxSockets.EPOLLEXCLUSIVE, ListenerToken);
        return -1;
    }

    /// <summary>Ends the loop's thread (a bounded wait). Its connections can then be closed from the caller.</summary>
    public void Stop()
    {
        _stopping = true;
        LinuxSockets.Signal(_wake);
        _stopped = _thread.Join(TimeSpan.FromSeconds(5));
    }

    /// <summary>Stops the loop if running, then closes its descriptors.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_stopping)
        {
            Stop();
        }

        if (_stopped)
        {
            // Only once the thread is gone: closing under epoll_wait could hand the numbers to new sockets.
            LinuxSockets.Close(_wake);
            LinuxSockets.Close(_epoll);
        }
    }

    private void Run()
    {
        Span<byte> events = stackalloc byte[MaxEvents * LinuxSockets.EventSize];
        while (!_stopping)
        {
            int count;
            try
            {
                count = LinuxSockets.Wait(_epoll, events, WaitTimeout());
            }
            catch (System.Net.Sockets.SocketException e)
            {
                Report(e); // the listener could not be watched again: try once more after the next pause
                _listeningPaused = true;
                _resumeListeningAt = Environment.TickCount + 10;
                continue;
            }

            if (count < 0)
            {
                if (count == -LinuxSockets.EINTR)
                {
                    continue;
                }

                Report(new System.Net.Sockets.SocketException(-count, $"epoll_wait failed with errno {-count}; this loop stops serving."));
                return;
            }

            for (var i = 0; i < count; i++)
            {
                var token = LinuxSockets.EventData(events, i);
                if (token == WakeToken)
                {
                    LinuxSockets.Drain(_wake);
                    continue;
                }

                try
                {
                    // Accepting and OnReady handle their own failures (closing that connection only); what
                    // can still escape is a user's event handler throwing (ClientConnected, ErrorOccurred),
                    // and it must not end the thread every connection of this loop depends on.
                    if (token == ListenerToken)
                    {
                        _onAcceptable!(this);
                    }
                    else
                    {
                        ((IReadyHandler)GCHandle.FromIntPtr((nint)token).Target!).OnReady();
                    }
                }
                catch (Exception e)
                {
                    Report(e);
                }
            }
        }
    }

    private void Report(Exception error)
    {
        try
        {
            _onError(error);
        }
        catch (Exception)
        {
            // The error handler itself failed: nothing is left to tell; the loop goes on.
        }
    }

    /// <summary>A connection's place in a loop: which events it waits for, and its removal.</summary>
    internal sealed class Registration
    {
        public const uint Reads = LinuxSockets.EPOLLIN | LinuxSockets.EPOLLRDHUP;
        private const uint Writes = LinuxSockets.EPOLLOUT;

        private readonly EventLoop _loop;
        private GCHandle _handle;

        public Registration(EventLoop loop, int descriptor, GCHandle handle)
        {
            _loop = loop;
            Descriptor = descriptor;
            _handle = handle;
        }

        public int Descriptor { get; }

        public ulong Token => (ulong)GCHandle.ToIntPtr(_handle);

        /// <summary>Starts delivering the socket's readiness to its handler on the loop's thread.</summary>
        public void Start(bool forWrites = false)
        {
            try
            {
                LinuxSockets.Add(_loop._epoll, Descriptor, forWrites ? Writes : Reads, Token);
            }
            catch
            {
                _handle.Free();
                throw;
            }
        }

        /// <summary>The socket's send buffer is full: wait until it drains instead of reading more.</summary>
        public void WaitForWrites() => LinuxSockets.Modify(_loop._epoll, Descriptor, Writes, Token);

        public void WaitForReads() => LinuxSockets.Modify(_loop._epoll, Descriptor, Reads, Token);

        /// <summary>Stops the events. Call before the socket is closed, on the loop's thread.</summary>
        public void Unregister()
        {
            if (_handle.IsAllocated)
            {
                LinuxSockets.Remove(_loop._epoll, Descriptor);
                _handle.Free();
            }
        }
    }
}
#endif
