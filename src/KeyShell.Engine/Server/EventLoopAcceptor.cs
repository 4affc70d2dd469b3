using System;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Server;

/// <summary>
/// Accepts on the Linux event loops, one per processor: every loop watches the listener (EPOLLEXCLUSIVE
/// wakes one per connection, see <see cref="EventLoopListener"/>), accepts on its own thread and serves
/// the connection there.
/// </summary>
internal sealed class EventLoopAcceptor : IAcceptor
{
    private readonly KeyServer _server;
    private readonly Socket _listener;
    private readonly int _descriptor;
    private EventLoop[] _loops = Array.Empty<EventLoop>();
    private EventLoopListener[] _listeners = Array.Empty<EventLoopListener>();

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

        _listeners = _loops.Select(loop => new EventLoopListener(loop, _descriptor, Serve, _server.ReportAcceptFailure)).ToArray();
        foreach (var listener in _listeners)
        {
            listener.Loop.Post(listener.Listen);
        }
    }

    /// <summary>Every loop stops watching the listener (a loop held up by a user's event handler may take
    /// longer than the bounded wait). The listener itself closes in <see cref="Dispose"/>, once the loops
    /// have ended: no loop can then touch the number, closed and perhaps reused by another socket.</summary>
    public async Task StopAsync()
    {
        var stopped = Task.WhenAll(_listeners.Select(l => l.StopAsync()));
        await Task.WhenAny(stopped, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
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

    /// <summary>On a loop's thread: a connection accepted there is served there, or turned away.</summary>
    private void Serve(EventLoop loop, int descriptor, IPEndPoint? peer)
    {
        Sessions.ServerSession? session;
        try
        {
            if (_server.Refuses(peer))
            {
                Libc.Close(descriptor); // before any byte is read
                return;
            }

            if (_server.Tls is { } tls)
            {
                // SslStream over the loop's own stream: the handshake and every record run on this loop's thread.
                var stream = new PolledStream(loop, descriptor);
                _ = TlsAcceptance.ServeAsync(_server, stream, stream, peer, tls);
                return;
            }

            session = _server.Admit(peer);
        }
        catch (Exception e)
        {
            Libc.Close(descriptor);
            _server.ReportInternalError(0, peer?.ToString(), e);
            return;
        }

        if (session is null)
        {
            Reject(descriptor);
            return;
        }

        PolledConnection.Accept(loop, session, descriptor);
    }

    private static void Reject(int descriptor)
    {
        _ = Libc.Send(descriptor, BusyReply.Bytes); // a fresh socket's send buffer is empty: this never waits
        Libc.Shutdown(descriptor, SocketShutdown.Both);
        Libc.Close(descriptor);
    }
}
