using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Security;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Streams;

namespace KeyShell.Engine.Server;

/// <summary>
/// What happens to every accepted socket, on either transport, in one order: the address rules, then a
/// slot (one atomic count, so MaxConnections bounds every accepted socket, handshakes included), then a
/// Refuse fault's draw, then a TLS handshake (bounded in number and in time), then the connection is
/// served. A socket turned away, refused or faulted is counted and reported once, here.
/// </summary>
internal sealed class Admission
{
    private static long _nextConnectionId;

    private readonly ServerContext _context;
    private readonly ConnectionTable _table;
    private readonly AddressRules? _rules;
    private readonly TlsServerSettings? _tls;
    private readonly CancellationToken _stopping;

    public Admission(ServerContext context, ConnectionTable table, AddressRules? rules, TlsServerSettings? tls, CancellationToken stopping)
    {
        _context = context;
        _table = table;
        _rules = rules;
        _tls = tls;
        _stopping = stopping;
    }

    private ServerEvents Events => _context.Events;

    /// <summary>Takes an accepted socket through admission; on the acceptor's thread, which it never blocks.</summary>
    public void Accept(AcceptedSocket socket)
    {
        var slot = false;
        try
        {
            if (_rules is { } rules && (socket.Peer is null || !rules.Allows(socket.Peer.Address)))
            {
                Events.Refused(ClientRefusal.Address, socket.Peer?.ToString(), null);
                socket.Close(); // before any byte is read
                return;
            }

            if (_context.IsStopping || !(slot = _table.TryTakeSlot()))
            {
                TurnAway(socket, _context.IsStopping || _table.IsClosing ? RejectionReason.Stopping : RejectionReason.MaxConnections);
                return;
            }

            if (_context.Faults.SelectAtAccept() is { } refuse)
            {
                // A Refuse fault: closed as accepted, before any TLS, a fault (not a rejection); logged, then closed.
                _table.ReleaseSlot();
                slot = false;
                Events.RefusedByFault(refuse, socket.Peer?.ToString());
                socket.Close();
                return;
            }

            if (_tls is null)
            {
                var session = Open(socket.Peer);
                slot = false; // the session owns it now, or gave it back
                if (session is null)
                {
                    socket.TurnAway();
                    return;
                }

                Serve(socket, session);
                return;
            }

            if (!_table.TryBeginHandshake())
            {
                _table.ReleaseSlot();
                slot = false;
                TurnAway(socket, _table.IsClosing ? RejectionReason.Stopping : RejectionReason.MaxHandshakes);
                return;
            }

            slot = false; // the handshake owns it now
            _ = ShakeHandsAsync(socket, _tls);
        }
        catch (Exception e)
        {
            if (slot)
            {
                _table.ReleaseSlot();
            }

            socket.Close();
            if (!ServerSession.IsConnectionError(e))
            {
                Events.InternalError(0, socket.Peer?.ToString(), e);
            }
        }
    }

    /// <summary>Serves a plain-text session on its socket's driver; a socket that cannot be served is closed and
    /// its session retired, so its slot comes back.</summary>
    private void Serve(AcceptedSocket socket, ServerSession session)
    {
        try
        {
            socket.Serve(session);
        }
        catch (Exception e)
        {
            socket.Close();
            session.Closed();
            if (!ServerSession.IsConnectionError(e))
            {
                Events.InternalError(session.Id, session.RemoteEndPoint, e);
            }
        }
    }

    private void TurnAway(AcceptedSocket socket, RejectionReason reason)
    {
        var why = reason switch
        {
            RejectionReason.Stopping => "the server is stopping",
            RejectionReason.MaxHandshakes => $"{_table.Handshakes} TLS handshakes are in progress, the most allowed at once",
            _ => $"{_table.Slots} connections open, the limit is {_table.MaxConnections}",
        };
        Events.TurnedAway(socket.Peer, reason, why);
        if (_tls is null)
        {
            socket.TurnAway(); // a plain-text client reads why
        }
        else
        {
            socket.Close(); // no handshake for a client there is no room for; a plain reply would not be TLS
        }
    }

    /// <summary>The TLS part of admission: the handshake, bounded by the handshake timeout and by a stop;
    /// a failure is a refusal (counted, logged with its reason). The slot is held throughout.</summary>
    private async Task ShakeHandsAsync(AcceptedSocket accepted, TlsServerSettings tls)
    {
        var peer = accepted.Peer;
        IStreamSocket? socket = null;
        SslStream secure;
        try
        {
            (socket, var inner) = accepted.OpenStream();
            secure = await TlsHandshake.AuthenticateAsServerAsync(inner, tls, _stopping).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (e is TlsHandshakeException { ClosedFirst: false } failure)
            {
                Events.Refused(failure.Failure == TlsFailure.Certificate ? ClientRefusal.Certificate : ClientRefusal.Handshake, peer?.ToString(), failure.Message);
            }
            else if (!ServerSession.IsConnectionError(e) && e is not TlsHandshakeException)
            {
                Events.InternalError(0, peer?.ToString(), e);
            }

            // Otherwise a port check that left without a byte, a peer that reset, or the server stopping.
            if (socket is null)
            {
                accepted.Close();
            }
            else
            {
                socket.Dispose();
            }

            _table.ReleaseSlot();
            return;
        }
        finally
        {
            _table.EndHandshake();
        }

        try
        {
            var session = Open(peer);
            if (session is null)
            {
                secure.Dispose();
                socket.Dispose();
                return;
            }

            try
            {
                _ = StreamConnection.Run(session, socket, secure, session, waitWithoutBuffer: true);
            }
            catch (Exception e)
            {
                secure.Dispose();
                socket.Dispose();
                session.Closed(); // its slot back
                Events.InternalError(session.Id, peer?.ToString(), e);
            }
        }
        catch (Exception e)
        {
            secure.Dispose();
            socket.Dispose();
            _table.ReleaseSlot(); // no session was made to give it back
            Events.InternalError(0, peer?.ToString(), e);
        }
    }

    /// <summary>Makes the connection of a socket that holds a slot: listed, counted, announced; or null (its slot
    /// given back) when a stop began meanwhile.</summary>
    private ServerSession? Open(IPEndPoint? peer)
    {
        var session = new ServerSession(_context, Interlocked.Increment(ref _nextConnectionId), peer);
        if (!_table.TryAdd(session))
        {
            Events.TurnedAway(peer, RejectionReason.Stopping, "the server is stopping");
            return null;
        }

        Events.Connected(session);
        return session;
    }
}

/// <summary>An accepted socket as admission sees it, whichever transport accepted it.</summary>
internal abstract class AcceptedSocket
{
    protected AcceptedSocket(IPEndPoint? peer) => Peer = peer;

    public IPEndPoint? Peer { get; }

    /// <summary>Closes it unserved: nothing read, nothing sent.</summary>
    public abstract void Close();

    /// <summary>Tells a plain-text client it was turned away (<c>Error: server busy</c>), then closes.</summary>
    public abstract void TurnAway();

    /// <summary>The socket as a stream (for TLS), which the stream driver can end.</summary>
    public abstract (IStreamSocket Socket, Stream Stream) OpenStream();

    /// <summary>Serves a plain-text connection on this socket's own driver.</summary>
    public abstract void Serve(ServerSession session);

    /// <summary>What a client turned away at the connection limit reads before the server closes.</summary>
    protected static byte[] BusyReply { get; } = System.Text.Encoding.ASCII.GetBytes(Protocol.Replies.Busy + "\n");
}
