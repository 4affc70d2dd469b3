using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// Everything a server tells the world besides its replies and its conversation: the events its host
/// subscribes to, the meters, the engine's diagnostics, and the counts of connections turned away or
/// closed. One place absorbs the failures of subscribers, meter listeners and the host's logger: they are
/// counted as internal errors and raised through ErrorOccurred, never the client's problem.
/// </summary>
internal sealed class ServerEvents
{
    private readonly object _sender;
    private readonly ServerMetrics _metrics;
    private long _rejected;
    private long _idleClosed;
    private long _faults;
    private long _internalErrors;
    private long _acceptFailures;
    private int _lastAcceptFailureReport;

    public ServerEvents(object sender, ServerMetrics metrics, ILogger diagnostics)
    {
        _sender = sender;
        _metrics = metrics;
        Diagnostics = diagnostics;
    }

    public event EventHandler<KeyServerEventArgs>? ClientConnected;

    public event EventHandler<KeyServerEventArgs>? ClientDisconnected;

    public event EventHandler<KeyServerEventArgs>? RequestServed;

    public event EventHandler<KeyServerEventArgs>? ErrorOccurred;

    public event EventHandler<KeyServerEventArgs>? ClientRefused;

    /// <summary>A fault was applied: Reason is its type's word (reset, delay, ...), ClientId and Key the request's (null for refuse).</summary>
    public event EventHandler<KeyServerEventArgs>? FaultApplied;

    /// <summary>The engine's own diagnostics (not the conversation): the host's logger, or none.</summary>
    public ILogger Diagnostics { get; }

    /// <summary>The conversation log, for the lines of refused peers (set once the log is open).</summary>
    public ILogger? Conversation { get; set; }

    public bool HasRequestListeners => RequestServed is not null;

    /// <summary>Connections turned away (at the limits, while stopping) or refused (address rules, TLS).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Connections closed by the idle timeout: silent ones, and those that did not read their replies.</summary>
    public long IdleClosed => Interlocked.Read(ref _idleClosed);

    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    /// <summary>Faults applied: requests faulted, and connections refused at accept by a Refuse fault.</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>Counts an applied fault (before it acts on the wire: a client that sees it sees the count) and
    /// its meter, keyshell.faults tagged by type.</summary>
    public void Faulted(long connectionId, string? remote, FaultAction fault)
    {
        Interlocked.Increment(ref _faults);
        Guard(connectionId, remote, () =>
        {
            _metrics.FaultApplied(fault.Type);
            FaultApplied?.Invoke(_sender, new KeyServerEventArgs(connectionId, remote, fault.ClientId, fault.Key, reason: fault.Fault.Word));
        });
    }

    /// <summary>A connection closed at accept by a Refuse fault: counted as a fault (not a rejection), and its
    /// line <c>SYSTEM: Fault refuse (connection N)</c> handed to the log before the socket closes.</summary>
    public void RefusedByFault(FaultAction refuse, string? remote)
    {
        Faulted(0, remote, refuse);
        Guard(0, remote, () => Conversation?.Log(LogLevel.Information, ConversationEvents.System, ConversationLine.RefuseFault(refuse.Position), null, static (text, _) => text));
    }

    public void Connected(ServerSession session) => Guard(session, () =>
    {
        _metrics.ConnectionOpened();
        ClientConnected?.Invoke(_sender, new KeyServerEventArgs(session.Id, session.RemoteEndPoint));
    });

    /// <summary>A connection has closed: its meters (before it leaves the table, so whoever sees it gone from
    /// the active count finds it in them too) and the diagnostic of a close the server decided.</summary>
    public void Closing(ServerSession session, TimeSpan idleTimeout) => Guard(session, () =>
    {
        _metrics.ConnectionClosed(session.OpenedAt);
        if (session.CloseReason is CloseReason.Idle or CloseReason.Stalled)
        {
            Diagnostics.LogInformation(
                DiagnosticEvents.IdleClosed,
                session.CloseReason == CloseReason.Stalled ? "Closed {Peer}: it did not read its replies for {Seconds} s." : "Closed {Peer}: idle for {Seconds} s.",
                session.RemoteEndPoint,
                idleTimeout.TotalSeconds);
        }
    });

    /// <summary>A connection has left the table.</summary>
    public void Disconnected(ServerSession session) =>
        Guard(session, () => ClientDisconnected?.Invoke(_sender, new KeyServerEventArgs(session.Id, session.RemoteEndPoint)));

    /// <summary>One read's requests: one meter call per outcome per read, not one per request.</summary>
    public void Answered(ServerSession session, int requests, int errors)
    {
        try
        {
            _metrics.RequestsAnswered(requests, errors);
        }
        catch (Exception e)
        {
            Report(session, e); // a meter listener's failure: the replies go out all the same
        }
    }

    /// <summary>Counts a close the server decided (idle, stalled), before the socket closes: a client that sees the end sees the count.</summary>
    public void ClosedByServer(ServerSession session, CloseReason reason)
    {
        Interlocked.Increment(ref _idleClosed);
        try
        {
            _metrics.ConnectionRejected(reason == CloseReason.Stalled ? RejectionReason.Stalled : RejectionReason.Idle);
        }
        catch (Exception e)
        {
            Report(session, e);
        }
    }

    /// <summary>Raises <see cref="RequestServed"/> for a request answered from the key map.</summary>
    public void Served(ServerSession session, ReadOnlySpan<byte> request, int clientLength, ParseStatus status, byte[] reply)
    {
        if (RequestServed is not { } handler)
        {
            return;
        }

        string? client = null;
        string key;
        if (status == ParseStatus.Ok)
        {
            client = Ascii(request.Slice(0, clientLength));
            key = Ascii(request.Slice(clientLength + 1));
        }
        else
        {
            using var escaped = new ByteBuffer(request.Length + 16);
            ConversationLine.WriteEscaped(escaped, request);
            key = Ascii(escaped.Span);
        }

        var args = new KeyServerEventArgs(session.Id, null, client, key, Encoding.UTF8.GetString(reply));
        Guard(session, () => handler(_sender, args));
    }

    /// <summary>Raises <see cref="RequestServed"/> for a request answered by the handler.</summary>
    public void Served(ServerSession session, KeyRequest request, string reply)
    {
        if (RequestServed is { } handler)
        {
            var args = new KeyServerEventArgs(session.Id, request.RemoteEndPoint, request.ClientId, request.Key, reply);
            Guard(session, () => handler(_sender, args));
        }
    }

    /// <summary>
    /// Records a refused peer: counted in <see cref="Rejected"/>, one <c>SYSTEM: Client refused (&lt;reason&gt;)</c>
    /// log line, the meter's keyshell.rejected_connections (error.type address_not_allowed,
    /// tls_client_certificate_refused or tls_handshake_failed), a diagnostic, and ClientRefused with the details.
    /// </summary>
    public void Refused(ClientRefusal reason, string? remoteEndPoint, string? detail)
    {
        Interlocked.Increment(ref _rejected);
        var word = ConversationLine.RefusalWord(reason);
        Guard(0, remoteEndPoint, () =>
        {
            Conversation?.Log(LogLevel.Information, ConversationEvents.System, ConversationLine.Refused(reason), null, static (text, _) => text);
            _metrics.ConnectionRejected(reason switch
            {
                ClientRefusal.Address => RejectionReason.Address,
                ClientRefusal.Certificate => RejectionReason.Certificate,
                _ => RejectionReason.Handshake,
            });
            Diagnostics.LogInformation(DiagnosticEvents.Rejected, "Refused {Peer} ({Reason}): {Detail}", remoteEndPoint, word, detail ?? "no rule allows its address");
            ClientRefused?.Invoke(_sender, new KeyServerEventArgs(0, remoteEndPoint, reason: detail is null ? word : $"{word}: {detail}"));
        });
    }

    /// <summary>Records a peer turned away before it was served: at a limit, or while the server stops.</summary>
    public void TurnedAway(IPEndPoint? peer, RejectionReason reason, string why)
    {
        Interlocked.Increment(ref _rejected);
        Guard(0, peer?.ToString(), () =>
        {
            _metrics.ConnectionRejected(reason);
            Diagnostics.LogInformation(DiagnosticEvents.Rejected, "Turned away {Peer}: {Why}.", peer, why);
        });
    }

    /// <summary>
    /// Reports a failed accept: the first at once, then at most one a second while the shortage lasts
    /// (acceptors retry every 10 ms, and a report per retry would bury everything else).
    /// </summary>
    public void AcceptFailed(SocketException error)
    {
        var failures = Interlocked.Increment(ref _acceptFailures);
        var now = Environment.TickCount;
        var last = Volatile.Read(ref _lastAcceptFailureReport);
        if ((failures > 1 && unchecked(now - last) < 1000) || Interlocked.CompareExchange(ref _lastAcceptFailureReport, now, last) != last)
        {
            return;
        }

        Interlocked.Increment(ref _internalErrors);
        try
        {
            Diagnostics.LogWarning(
                DiagnosticEvents.AcceptFailed,
                error,
                "Accepting a connection failed: {Error} ({Failures} failed accepts so far; out of descriptors or memory?). The server keeps serving and tries again every 10 ms.",
                error.SocketErrorCode,
                failures);
        }
        catch (Exception)
        {
            // The host's logger failed: ErrorOccurred below still tells.
        }

        RaiseError(0, null, error);
    }

    /// <summary>The conversation log could not be written (the writer goes on with the next lines).</summary>
    public void LogFailed(Exception error)
    {
        try
        {
            Diagnostics.LogWarning(DiagnosticEvents.LogFailed, error, "The conversation log could not be written: {Message}", error.Message);
        }
        catch (Exception)
        {
            // The host's logger failed: ErrorOccurred below still tells.
        }

        RaiseError(0, null, error);
    }

    public void Report(ServerSession session, Exception error) => InternalError(session.Id, session.RemoteEndPoint, error);

    /// <summary>Counts an unexpected failure inside the server and raises it through ErrorOccurred. Never throws.</summary>
    public void InternalError(long connectionId, string? remote, Exception error)
    {
        Interlocked.Increment(ref _internalErrors);
        try
        {
            Diagnostics.LogError(DiagnosticEvents.InternalError, error, "Internal error on connection {ConnectionId} ({Peer}): {Message}", connectionId, remote, error.Message);
        }
        catch (Exception)
        {
            // The host's logger failed: ErrorOccurred below still tells.
        }

        RaiseError(connectionId, remote, error);
    }

    private static string Ascii(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(bytes.ToArray());

    private void Guard(ServerSession session, Action call) => Guard(session.Id, session.RemoteEndPoint, call);

    private void Guard(long connectionId, string? remote, Action call)
    {
        try
        {
            call();
        }
        catch (Exception e)
        {
            InternalError(connectionId, remote, e); // a subscriber's, a meter listener's or the host logger's failure
        }
    }

    private void RaiseError(long connectionId, string? remote, Exception error)
    {
        try
        {
            ErrorOccurred?.Invoke(_sender, new KeyServerEventArgs(connectionId, remote, error: error));
        }
        catch (Exception)
        {
            // A subscriber to errors failed: there is no one left to tell.
        }
    }
}
