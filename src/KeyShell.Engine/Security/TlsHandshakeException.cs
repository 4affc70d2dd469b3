using System;
using System.Net.Security;
using System.Security.Authentication;

namespace KeyShell.Engine.Security;

/// <summary>Why a TLS handshake failed, as a server counts and logs it.</summary>
public enum TlsFailure
{
    /// <summary>The peer's certificate was refused: missing, not chaining to an authority, not trusted.</summary>
    Certificate,
    /// <summary>Anything else: not TLS (plain text, garbage), a protocol error, the peer gone, no handshake in time.</summary>
    Handshake,
}

/// <summary>A TLS handshake failed; the stream it ran over has been closed.</summary>
public class TlsHandshakeException : AuthenticationException
{
    public TlsHandshakeException(TlsFailure failure, string message, bool timedOut = false, Exception? inner = null, bool closedFirst = false)
        : base(message, inner)
    {
        Failure = failure;
        TimedOut = timedOut;
        ClosedFirst = closedFirst;
    }

    public TlsFailure Failure { get; }

    /// <summary>The peer closed the connection before sending a byte (a port check, a watchdog's probe):
    /// nothing was refused, and a server neither counts nor logs it as a refusal.</summary>
    public bool ClosedFirst { get; }

    /// <summary>The peer did not finish the handshake within the handshake timeout.</summary>
    public bool TimedOut { get; }

    /// <summary>The word a server's log line and counters use: <c>certificate</c> or <c>handshake</c>.</summary>
    public string Reason => Failure == TlsFailure.Certificate ? "certificate" : "handshake";
}

/// <summary>The client refused the server's certificate (untrusted authority, wrong name, expired): the clear error, never a hang.</summary>
public sealed class TlsCertificateUntrustedException : TlsHandshakeException
{
    public TlsCertificateUntrustedException(string message, SslPolicyErrors policyErrors, string? subject, Exception? inner = null)
        : base(TlsFailure.Certificate, message, timedOut: false, inner)
    {
        PolicyErrors = policyErrors;
        Subject = subject;
    }

    public SslPolicyErrors PolicyErrors { get; }

    /// <summary>The refused certificate's subject, or null when the server sent none.</summary>
    public string? Subject { get; }
}
