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
    SocketError,
}

/// <summary>A server could not start; nothing is left listening or open when this is thrown.</summary>
public sealed class KeyServerException : Exception
{
    public KeyServerException(KeyServerErrorKind kind, string message, object? target, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Target = target;
    }

    public KeyServerErrorKind Kind { get; }

    /// <summary>What the error is about: the endpoint, address or log path.</summary>
    public object? Target { get; }
}
