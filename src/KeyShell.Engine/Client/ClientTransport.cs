using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Streams;

namespace KeyShell.Engine.Client;

/// <summary>How a client's connector opens one connection and hands it to a driver.</summary>
internal abstract class ClientTransport : IDisposable
{
    public abstract bool UsesEventLoops { get; }

    /// <summary>
    /// Opens a connection to <paramref name="remote"/> (<paramref name="slot"/> keeps a session's successive
    /// connections on one thread where the transport has several) and runs <paramref name="session"/> on it,
    /// telling <paramref name="owner"/> how it went. Returns the attempt, which <see cref="IConnection.Abort"/>
    /// ends while it connects.
    /// </summary>
    public abstract IConnection Dial(int slot, IPEndPoint remote, ISession session, IDialOwner owner);

    public virtual void Dispose()
    {
    }
}

/// <summary>Connections on the stream driver, over a .NET socket: every platform, and TLS (SslStream).</summary>
internal sealed class StreamTransport : ClientTransport
{
    private readonly TlsClientSettings? _tls;
    private readonly string _targetHost;

    public StreamTransport(TlsClientSettings? tls, string targetHost)
    {
        _tls = tls;
        _targetHost = targetHost;
    }

    public override bool UsesEventLoops => false;

    public override IConnection Dial(int slot, IPEndPoint remote, ISession session, IDialOwner owner)
    {
        var attempt = new Attempt(new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true });
        _ = ConnectAsync(attempt, remote, session, owner);
        return attempt;
    }

    private async Task ConnectAsync(Attempt attempt, IPEndPoint remote, ISession session, IDialOwner owner)
    {
        Stream stream;
        try
        {
            await attempt.Socket.ConnectAsync(remote).ConfigureAwait(false);
            stream = new NetworkStream(attempt.Socket, ownsSocket: true);
            if (_tls is not null)
            {
                stream = await TlsHandshake.AuthenticateAsClientAsync(stream, _tls, _targetHost, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            attempt.Socket.Dispose();
            owner.DialFailed(e); // refused, out of descriptors, aborted, or no TLS agreement
            return;
        }

        owner.Connected(StreamConnection.Start(session, new DotNetSocket(attempt.Socket), stream, owner, waitWithoutBuffer: false));
    }

    /// <summary>A connect under way: aborted by closing its socket under it.</summary>
    private sealed class Attempt : IConnection
    {
        public Attempt(Socket socket) => Socket = socket;

        public Socket Socket { get; }

        public int BlockedSince => 0;

        public void Abort() => Socket.Dispose();

        public void CloseWhenIdle() => Abort();

        public bool TryClaimIdle() => false;

        public void CloseClaimed()
        {
        }
    }
}
