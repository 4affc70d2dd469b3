using System;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Stream;

namespace KeyShell.Engine.Server;

/// <summary>
/// Accepts with async sockets and serves each connection on the stream driver: the path for every
/// platform, and for TLS. Two accept loops keep a burst of connects moving while one hands a
/// connection off. Like Kestrel's listener, a loop ends when the listener is closed and goes on after
/// other socket errors, pausing a moment so that a lasting one (out of descriptors) does not spin.
/// </summary>
internal sealed class SocketAcceptor : IAcceptor
{
    private readonly KeyServer _server;
    private readonly Socket _listener;
    private Task[] _loops = Array.Empty<Task>();

    public SocketAcceptor(KeyServer server, Socket listener)
    {
        _server = server;
        _listener = listener;
    }

    public bool UsesEventLoops => false;

    public void Start()
    {
        // Without the caller's ExecutionContext: a server must not carry its starter's AsyncLocals (a
        // PowerShell runspace's, a test host's), and with no context to restore each completion is cheaper.
        using (ExecutionContext.SuppressFlow())
        {
            _loops = Enumerable.Range(0, Math.Max(2, Math.Min(4, Environment.ProcessorCount))).Select(_ => Task.Run(AcceptLoopAsync)).ToArray();
        }
    }

    public async Task StopAsync()
    {
        _listener.Dispose();
        await Task.WhenAny(Task.WhenAll(_loops), Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
    }

    public void Dispose() => _listener.Dispose();

    private async Task AcceptLoopAsync()
    {
        while (!_server.IsStopping)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException) when (_server.IsStopping)
            {
                return;
            }
            catch (SocketException e)
            {
                _server.ReportAcceptFailure(e);
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }

            Serve(socket);
        }
    }

    private void Serve(Socket socket)
    {
        try
        {
            var peer = socket.RemoteEndPoint as IPEndPoint;
            if (_server.Refuses(peer))
            {
                socket.Dispose(); // before any byte is read
                return;
            }

            socket.NoDelay = true;
            if (_server.Tls is { } tls)
            {
                _ = TlsAcceptance.ServeAsync(_server, new DotNetSocket(socket), new NetworkStream(socket, ownsSocket: true), peer, tls);
                return;
            }

            var session = _server.Admit(peer);
            if (session is null)
            {
                Reject(socket);
                return;
            }

            _ = StreamConnection.Serve(session, new DotNetSocket(socket), new NetworkStream(socket, ownsSocket: true));
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            socket.Dispose(); // reset before it could be served
        }
    }

    private static void Reject(Socket socket)
    {
        try
        {
            socket.Blocking = false; // a fresh socket's send buffer is empty: this never waits
            socket.Send(BusyReply.Bytes);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // The client is already gone.
        }
        finally
        {
            socket.Dispose();
        }
    }
}
