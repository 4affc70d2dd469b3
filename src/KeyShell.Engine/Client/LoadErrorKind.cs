namespace KeyShell.Engine.Client;

/// <summary>Why a load request failed; the result counts each kind (its properties are named as these).</summary>
public enum LoadErrorKind
{
    /// <summary>No connection: refused, unreachable, or the TLS handshake failed.</summary>
    ConnectFailed,
    /// <summary>No reply within the timeout.</summary>
    Timeout,
    /// <summary>The connection was reset or closed before the reply.</summary>
    ConnectionLost,
    /// <summary>The server answered <c>Error: ...</c>.</summary>
    ErrorReply,
    /// <summary>The reply is not the protocol's reply to the key sent.</summary>
    UnexpectedReply,
}
