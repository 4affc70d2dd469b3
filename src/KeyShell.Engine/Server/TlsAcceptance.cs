using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Stream;

namespace KeyShell.Engine.Server;

/// <summary>
/// TLS first, for both acceptors: a peer becomes a connection (counted, logged, given a slot) only once its
/// handshake has succeeded, then the stream driver serves it over the SslStream. A failed handshake is a
/// refusal (counted in Rejected, logged with its reason); the idle timeout bounds it, and a stop ends it.
/// </summary>
internal static class TlsAcceptance
{
    public static async Task ServeAsync(KeyServer server, IStreamSocket socket, Stream inner, IPEndPoint? peer, TlsServerSettings tls)
    {
        SslStream secure;
        try
        {
            secure = await TlsHandshake.AuthenticateAsServerAsync(inner, tls, server.Stopping).ConfigureAwait(false);
        }
        catch (TlsHandshakeException e) when (e.ClosedFirst)
        {
            socket.Dispose(); // connected and left without a byte (a port check): nothing to refuse
            return;
        }
        catch (TlsHandshakeException e)
        {
            server.RefuseClient(e, peer?.ToString());
            socket.Dispose();
            return;
        }
        catch (Exception)
        {
            socket.Dispose(); // the server is stopping, or the peer reset
            return;
        }

        try
        {
            var session = server.Admit(peer);
            if (session is null)
            {
                await secure.WriteAsync(BusyReply.Bytes, 0, BusyReply.Bytes.Length).ConfigureAwait(false);
                secure.Dispose();
                socket.Dispose();
                return;
            }

            _ = StreamConnection.Serve(session, socket, secure);
        }
        catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
        {
            secure.Dispose(); // gone before it could be served, or told it was busy
            socket.Dispose();
        }
    }
}
