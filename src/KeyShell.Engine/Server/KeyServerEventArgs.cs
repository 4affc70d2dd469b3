using System;

namespace KeyShell.Engine.Server;

/// <summary>One thing that happened on a server: a connection opened or closed, a request answered, an error.</summary>
public sealed class KeyServerEventArgs : EventArgs
{
    public KeyServerEventArgs(long connectionId, string? remoteEndPoint, string? clientId = null, string? key = null, string? reply = null, Exception? error = null, string? reason = null)
    {
        Time = DateTime.UtcNow;
        ConnectionId = connectionId;
        RemoteEndPoint = remoteEndPoint;
        ClientId = clientId;
        Key = key;
        Reply = reply;
        Error = error;
        Reason = reason;
    }

    public DateTime Time { get; }

    public long ConnectionId { get; }

    public string? RemoteEndPoint { get; }

    public string? ClientId { get; }

    /// <summary>The request's key, or the whole request (escaped) when it could not be parsed.</summary>
    public string? Key { get; }

    public string? Reply { get; }

    public Exception? Error { get; }

    /// <summary>Why a peer was refused (ClientRefused): <c>certificate: &lt;details&gt;</c>, <c>address</c>, <c>handshake: ...</c>.</summary>
    public string? Reason { get; }
}
