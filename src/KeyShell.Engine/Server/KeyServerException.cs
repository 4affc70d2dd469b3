using System;

namespace KeyShell.Engine.Server;

/// <summary>Why a server could not start. Each kind maps to one stable ErrorId in the module.</summary>
public enum KeyServerErrorKind
{
    AddressInUse,
    AddressNotAvailable,
    InvalidAddress,
    AccessDenied,
    LogPathUnwritable,
    /// <summary>Another process writes the log file: it was left untouched.</summary>
    LogPathInUse,
    SocketError,
    /// <summary>An -AllowedAddress rule that is not an address or a CIDR block.</summary>
    InvalidAddressRule,
    /// <summary>A certificate that cannot serve: missing file, not a certificate, no or wrong private key, wrong password.</summary>
    CertificateInvalid,
    /// <summary>A TLS setting for a server that was started without TLS.</summary>
    TlsNotEnabled,
    /// <summary>An -Upstream that is not host:port with a port from 1 to 65535.</summary>
    InvalidUpstream,
}

/// <summary>
/// A server could not start (nothing is left listening or open when this is thrown), or a setting given to
/// it is invalid (an address rule, a certificate).
/// </summary>
public sealed class KeyServerException : Exception
{
    public KeyServerException(KeyServerErrorKind kind, string message, object? target, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Target = target;
    }

    public KeyServerErrorKind Kind { get; }

    /// <summary>What the error is about: the endpoint, address, log path, rule or certificate file.</summary>
    public object? Target { get; }
}
