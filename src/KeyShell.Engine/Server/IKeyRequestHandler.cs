using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Server;

/// <summary>A parsed request, as a handler sees it.</summary>
public sealed class KeyRequest
{
    public KeyRequest(string clientId, string key, long connectionId, string? remoteEndPoint)
    {
        ClientId = clientId;
        Key = key;
        ConnectionId = connectionId;
        RemoteEndPoint = remoteEndPoint;
    }

    public string ClientId { get; }

    public string Key { get; }

    public long ConnectionId { get; }

    public string? RemoteEndPoint { get; }

    public override string ToString() => ClientId + " " + Key;
}

/// <summary>
/// Computes replies instead of the key map (a PowerShell script block, in the module). Requests on one
/// connection are handed over one at a time, in order; requests on different connections concurrently.
/// The reply is one line: line breaks in it are replaced by spaces. An exception becomes an
/// <c>Error:</c> reply, and so does a reply not ready within the server's handler timeout.
/// </summary>
public interface IKeyRequestHandler
{
    Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// Optional, for a handler that keeps something per connection (the upstream mode's persistent upstream
/// connections) and has its own words for a timeout. The server tells it when a connection it may have
/// answered closes, and replies with <see cref="TimedOutReply"/> when a request runs past the handler timeout.
/// </summary>
public interface IConnectionAwareHandler : IKeyRequestHandler
{
    /// <summary>The reply to a request not answered within the server's handler timeout.</summary>
    string TimedOutReply { get; }

    /// <summary>The connection <paramref name="connectionId"/> has closed (once, after its last request). Must not throw.</summary>
    void ConnectionClosed(long connectionId);
}
