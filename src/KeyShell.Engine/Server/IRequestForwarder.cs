using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Server;

/// <summary>
/// The engine's own handler (upstream mode), asked with the request's bytes as they came: no strings, no
/// task per layer, and a deadline it keeps itself, so the server skips the generic handler path (two tokens
/// and a timer per request) that a script block needs. Errors are replies, never exceptions.
/// </summary>
internal interface IRequestForwarder
{
    /// <summary>Answers <paramref name="request"/> (<c>&lt;client&gt; &lt;key&gt;</c>) of connection
    /// <paramref name="connectionId"/> within <paramref name="timeout"/>; the reply is one line, without its
    /// end; <c>Failed</c> when it is an <c>Error:</c> reply.</summary>
    ValueTask<(byte[] Reply, bool Failed)> ForwardAsync(long connectionId, byte[] request, TimeSpan timeout, CancellationToken cancellationToken);
}
