using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Server;

/// <summary>
/// Accepts on the Linux event loops, one per processor: every loop watches the listener (EPOLLEXCLUSIVE
/// wakes one per connection, see <see cref="EventLoopListener"/>), accepts on its own thread and hands the
/// socket to admission, which serves it there.
/// </summary>
internal sealed class EventLoopAcceptor : IAcceptor
{
    private readonly Admission _admission;
    private readonly ServerEvents _events;
    private readonly Socket _listener;
    private readonly int _descriptor;
    private readonly int _port;
    private EventLoop[] _loops = Array.Empty<EventLoop>();
    private EventLoopListener[] _listeners = Array.Empty<EventLoopListener>();

    public EventLoopAcceptor(Admission admission, ServerEvents events, Socket listener, int port)
    {
        _admission = admission;
        _events = events;
        _listener = listener;
        _descriptor = (int)listener.Handle;
        _port = port;
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
            _loops[i] = new EventLoop($"KeyShell :{_port} loop {i + 1}", e => _events.InternalError(0, null, e));
        }

        _listeners = _loops.Select(loop => new EventLoopListener(loop, _descriptor, Serve, _events.AcceptFailed)).ToArray();
        foreach (var listener in _listeners)
        {
            listener.Loop.Post(listener.Listen);
        }
    }

    /// <summary>Every loop stops watching the listener (a loop held up by a user's event handler may take
    /// longer than the bounded wait). The listener itself closes in <see cref="Dispose"/>, once the loops
    /// have ended: no loop can then touch the number, closed and perhaps reused by another socket.</summary>
    public Task StopAsync() => Bounded.WaitAsync(Task.WhenAll(_listeners.Select(l => l.StopAsync())), Bounded.StopWait);

    /// <summary>Ends the loops (connections still open close on them as they end), then the listener.</summary>
    public void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }

        _listener.Dispose();
    }

    /// <summary>On a loop's thread: a connection accepted there is served there, or turned away.</summary>
    private void Serve(EventLoop loop, int descriptor, IPEndPoint? peer) => _admission.Accept(new Accepted(loop, descriptor, peer));

    /// <summary>A descriptor accepted on a loop, through admission.</summary>
    private sealed class Accepted : AcceptedSocket
    {
        private readonly EventLoop _loop;
        private readonly int _descriptor;

        public Accepted(EventLoop loop, int descriptor, IPEndPoint? peer)
            : base(peer)
        {
            _loop = loop;
            _descriptor = descriptor;
        }

        public override void Close() => Libc.Close(_descriptor);

        public override void TurnAway()
        {
            _ = Libc.Send(_descriptor, BusyReply); // a fresh socket's send buffer is empty: this never waits
            Libc.Shutdown(_descriptor, SocketShutdown.Both);
            Libc.Close(_descriptor);
        }

        // SslStream over the loop's own stream: the handshake and every record run on this loop's thread.
        public override (IStreamSocket Socket, Stream Stream) OpenStream()
        {
            var stream = new PolledStream(_loop, _descriptor);
            return (stream, stream);
        }

        public override void Serve(ServerSession session) => PolledConnection.Accept(_loop, _descriptor, session, session);
    }
}
