using System;
using System.Linq;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Server;

/// <summary>
/// Accepts on the Linux event loops, one per processor: every loop watches the listener (EPOLLEXCLUSIVE
/// wakes one per connection), accepts on its own thread and serves the connection there. Out of
/// descriptors, a loop stops watching the listener for 10 ms, on a loop timer: a pending connection it
/// cannot accept would otherwise be reported again at once, in a busy loop.
/// </summary>
internal sealed class EventLoopAcceptor : IAcceptor
{
    private const int AcceptsPerWakeUp = 32; // so a burst of connects cannot starve a loop's connections
    private static readonly TimeSpan ShortagePause = TimeSpan.FromMilliseconds(10);

    private readonly KeyServer _server;
    private readonly Socket _listener;
    private readonly int _descriptor;
    private EventLoop[] _loops = Array.Empty<EventLoop>();
    private LoopListener[] _listeners = Array.Empty<LoopListener>();

    public EventLoopAcceptor(KeyServer server, Socket listener)
    {
        _server = server;
        _listener = listener;
        _descriptor = (int)listener.Handle;
    }

    public bool UsesEventLoops => true;

    /// <summary>The loops, for tests that look at their threads.</summary>
    internal EventLoop[] Loops => _loops;

    public void Start()
    {
        Libc.SetNonBlocking(_descriptor);
        Libc.SetNoDelay(_descriptor); // copied by Linux to every accepted connection: one call, not one per connection
        _loops = new EventLoop[Math.Min(16, Environment.ProcessorCount)];
        for (var i = 0; i < _loops.Length; i++)
        {
            _loops[i] = new EventLoop($"KeyShell :{_server.Port} loop {i + 1}", e => _server.ReportInternalError(0, null, e));
        }

        _listeners = _loops.Select(loop => new LoopListener(this, loop)).ToArray();
        foreach (var listener in _listeners)
        {
            listener.Loop.Post(listener.Listen);
        }
    }

    /// <summary>Every loop stops watching the listener, then it is closed: no loop can watch a number that
    /// was closed (and perhaps reused) meanwhile.</summary>
    public async Task StopAsync()
    {
        var stopped = Task.WhenAll(_listeners.Select(l => l.StopAsync()));
        await Task.WhenAny(stopped, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        _listener.Dispose();
    }

    /// <summary>Ends the loops (connections still open close on them as they end), then the listener.</summary>
    public void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }

        _listener.Dispose();
    }

    private static void Reject(int descriptor)
    {
        _ = Libc.Send(descriptor, BusyReply.Bytes); // a fresh socket's send buffer is empty: this never waits
        Libc.Shutdown(descriptor, SocketShutdown.Both);
        Libc.Close(descriptor);
    }

    /// <summary>The listener as one loop watches it; its state belongs to that loop's thread.</summary>
    private sealed class LoopListener : IPollable
    {
        private readonly EventLoopAcceptor _acceptor;
        private readonly TaskCompletionSource<bool> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private ulong _token;
        private bool _watching;
        private bool _stopping;

        public LoopListener(EventLoopAcceptor acceptor, EventLoop loop)
        {
            _acceptor = acceptor;
            Loop = loop;
        }

        public EventLoop Loop { get; }

        private KeyServer Server => _acceptor._server;

        public void Listen()
        {
            if (_stopping || _watching)
            {
                return;
            }

            try
            {
                _token = Loop.Register(_acceptor._descriptor, Interest.Read | Interest.Exclusive, this);
                _watching = true;
            }
            catch (SocketException e)
            {
                Server.ReportAcceptFailure(e); // out of memory: try again after a pause
                Loop.Schedule(ShortagePause, Listen);
            }
        }

        public Task StopAsync()
        {
            Loop.Post(() =>
            {
                _stopping = true;
                StopWatching();
                _stopped.TrySetResult(true);
            });
            return _stopped.Task;
        }

        public void OnReady()
        {
            for (var i = 0; i < AcceptsPerWakeUp && !_stopping; i++)
            {
                var descriptor = Libc.Accept(_acceptor._descriptor, out var peer);
                if (descriptor == -Libc.EAGAIN)
                {
                    return; // none left, or another loop took it
                }

                if (descriptor < 0)
                {
                    if (descriptor is -Libc.EMFILE or -Libc.ENFILE or -Libc.ENOBUFS or -Libc.ENOMEM)
                    {
                        // Out of descriptors or memory: keep serving, try accepting again shortly.
                        Server.ReportAcceptFailure(Libc.ToException(-descriptor, "accept4"));
                        StopWatching();
                        Loop.Schedule(ShortagePause, Listen);
                        return;
                    }

                    continue; // reset before it was accepted (ECONNABORTED)
                }

                var session = Server.Admit(peer);
                if (session is null)
                {
                    Reject(descriptor);
                    continue;
                }

                PolledConnection.Accept(Loop, session, descriptor);
            }
        }

        public void OnLoopEnded(Exception? error) => _watching = false;

        private void StopWatching()
        {
            if (_watching)
            {
                Loop.Unregister(_acceptor._descriptor, _token);
                _watching = false;
            }
        }
    }
}
