using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Streams;

namespace KeyShell.Engine.Server;

/// <summary>
/// Accepts with async sockets and hands each socket to admission, which serves it on the stream driver:
/// the path for every platform. Two accept loops keep a burst of connects moving while one hands a
/// connection off. Like Kestrel's listener, a loop ends when the listener is closed and goes on after
/// other socket errors, pausing a moment so that a lasting one (out of descriptors) does not spin.
/// </summary>
internal sealed class SocketAcceptor : IAcceptor
{
    private readonly Admission _admission;
    private readonly ServerEvents _events;
    private readonly Socket _listener;
    private readonly Func<bool> _stopping;
    private Task[] _loops = Array.Empty<Task>();

    public SocketAcceptor(Admission admission, ServerEvents events, Socket listener, Func<bool> stopping)
    {
        _admission = admission;
        _events = events;
        _listener = listener;
        _stopping = stopping;
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
        await Bounded.WaitAsync(Task.WhenAll(_loops), Bounded.StopWait).ConfigureAwait(false);
    }

    public void Dispose() => _listener.Dispose();

    private async Task AcceptLoopAsync()
    {
        while (!_stopping())
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
            catch (SocketException) when (_stopping())
            {
                return;
            }
            catch (SocketException e)
            {
                _events.AcceptFailed(e);
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }

            IPEndPoint? peer;
            try
            {
                peer = socket.RemoteEndPoint as IPEndPoint;
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                socket.Dispose(); // reset before it could be served
                continue;
            }

            _admission.Accept(new Accepted(socket, peer));
        }
    }

    /// <summary>A .NET socket through admission.</summary>
    private sealed class Accepted : AcceptedSocket
    {
        private readonly Socket _socket;

        public Accepted(Socket socket, IPEndPoint? peer)
            : base(peer) => _socket = socket;

        public override void Close() => _socket.Dispose();

        public override void TurnAway()
        {
            try
            {
                _socket.Blocking = false; // a fresh socket's send buffer is empty: this never waits
                _socket.Send(BusyReply);
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // The client is already gone.
            }
            finally
            {
                _socket.Dispose();
            }
        }

        public override (IStreamSocket Socket, Stream Stream) OpenStream()
        {
            _socket.NoDelay = true;
            return (new DotNetSocket(_socket), new NetworkStream(_socket, ownsSocket: true));
        }

        public override void Serve(ServerSession session)
        {
            var (socket, stream) = OpenStream();
            _ = StreamConnection.Run(session, socket, stream, session, waitWithoutBuffer: true);
        }
    }
}
