using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Server.Upstream;

/// <summary>
/// Upstream mode (Start-KeyServer -Upstream): answers each request by asking another server of the protocol,
/// so its conversation is logged, and checkable, in KeyShell's format. The server hands a connection's requests
/// over one at a time, in order, so each client's order is the upstream's too. Per message: a new upstream
/// connection for every request (as the seed's client works); persistent: one upstream connection per
/// downstream connection, opened at its first request, closed when it closes, and opened again once when the
/// upstream dropped it while idle. An upstream that fails gives an <c>Error: upstream ...</c> reply; a reply
/// that is not the protocol's passes through as the upstream sent it (the client's reply check judges it).
/// </summary>
public sealed class UpstreamHandler : IConnectionAwareHandler, IRequestForwarder, IDisposable
{
    private static readonly byte[] ErrorPrefix = Encoding.ASCII.GetBytes(Replies.ErrorPrefix);
    private readonly ConcurrentDictionary<long, UpstreamLink> _links = new(); // persistent mode, by downstream connection
    private Task<IPEndPoint>? _endPoint; // resolved at the first request; forgotten when a connect fails
    private volatile bool _disposed;

    public UpstreamHandler(UpstreamTarget target, Framing framing, ConnectionMode connection)
    {
        Target = target ?? throw new ArgumentNullException(nameof(target));
        Framing = framing;
        Connection = connection;
    }

    public UpstreamTarget Target { get; }

    public Framing Framing { get; }

    public ConnectionMode Connection { get; }

    public string TimedOutReply => Replies.UpstreamTimedOut;

    /// <summary>Persistent upstream connections open now (one per downstream connection that has asked).</summary>
    public int OpenConnections => _links.Count;

    public async Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
    {
        if (request is null)
        {
            throw new ArgumentNullException(nameof(request));
        }

        var bytes = Encoding.ASCII.GetBytes(request.ClientId + " " + request.Key);
        var (reply, _) = await ForwardAsync(request.ConnectionId, bytes, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(reply);
    }

    ValueTask<(byte[] Reply, bool Failed)> IRequestForwarder.ForwardAsync(long connectionId, byte[] request, TimeSpan timeout, CancellationToken cancellationToken) =>
        ForwardAsync(connectionId, request, timeout, cancellationToken);

    private async ValueTask<(byte[] Reply, bool Failed)> ForwardAsync(long connectionId, byte[] request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var loop = TransportPlatform.CurrentLoop; // read before any await: the loop serving the client's connection, if one is
        var deadline = new Deadline(timeout);
        try
        {
            var reply = Connection == ConnectionMode.PerMessage
                ? await AskOnceAsync(request, loop, deadline, cancellationToken).ConfigureAwait(false)
                : await AskOnConnectionAsync(connectionId, request, loop, deadline, cancellationToken).ConfigureAwait(false);
            return (reply, reply.AsSpan().StartsWith(ErrorPrefix));
        }
        catch (UpstreamFailedException failure)
        {
            return (Encoding.UTF8.GetBytes(failure.Reply), true);
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            return (Encoding.UTF8.GetBytes(Replies.HandlerFailed(e.Message)), true); // as the server's handler path says it
        }
    }

    /// <summary>Closes the downstream connection's upstream connection, if it has one.</summary>
    public void ConnectionClosed(long connectionId)
    {
        if (_links.TryRemove(connectionId, out var link))
        {
            link.Dispose();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var id in _links.Keys)
        {
            ConnectionClosed(id);
        }
    }

    private async ValueTask<byte[]> AskOnceAsync(byte[] request, IStreamConnector? loop, Deadline deadline, CancellationToken cancellationToken)
    {
        using var link = await OpenAsync(loop, deadline, cancellationToken).ConfigureAwait(false);
        return await link.ExchangeAsync(request, deadline.Remaining(), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<byte[]> AskOnConnectionAsync(long connectionId, byte[] request, IStreamConnector? loop, Deadline deadline, CancellationToken cancellationToken)
    {
        if (!_links.TryGetValue(connectionId, out var link))
        {
            link = await KeepAsync(connectionId, loop, deadline, cancellationToken).ConfigureAwait(false);
        }

        var reused = link.Used;
        try
        {
            return await link.ExchangeAsync(request, deadline.Remaining(), cancellationToken).ConfigureAwait(false);
        }
        catch (UpstreamFailedException failure) when (failure.BeforeAnyReply && reused && !cancellationToken.IsCancellationRequested)
        {
            // Dropped while idle (an upstream's own idle timeout): once more on a new connection, which, if it fails, says why.
            Forget(connectionId, link);
            link = await KeepAsync(connectionId, loop, deadline, cancellationToken).ConfigureAwait(false);
            return await ExchangeOrForgetAsync(connectionId, link, request, deadline, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Forget(connectionId, link); // failed, timed out or cancelled: a late reply on it would answer the wrong request
            throw;
        }
    }

    private async ValueTask<byte[]> ExchangeOrForgetAsync(long connectionId, UpstreamLink link, byte[] request, Deadline deadline, CancellationToken cancellationToken)
    {
        try
        {
            return await link.ExchangeAsync(request, deadline.Remaining(), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Forget(connectionId, link);
            throw;
        }
    }

    /// <summary>Opens the downstream connection's upstream connection and keeps it.</summary>
    private async Task<UpstreamLink> KeepAsync(long connectionId, IStreamConnector? loop, Deadline deadline, CancellationToken cancellationToken)
    {
        var link = await OpenAsync(loop, deadline, cancellationToken).ConfigureAwait(false);
        _links[connectionId] = link;
        if (_disposed)
        {
            Forget(connectionId, link); // the server stopped meanwhile: nothing will close it later
            throw new ObjectDisposedException(nameof(UpstreamHandler));
        }

        return link;
    }

    /// <summary>Drops <paramref name="link"/> if it is still the connection's (a request after a timeout may have opened a new one).</summary>
    private void Forget(long connectionId, UpstreamLink link)
    {
        ((ICollection<KeyValuePair<long, UpstreamLink>>)_links).Remove(new KeyValuePair<long, UpstreamLink>(connectionId, link));
        link.Dispose();
    }

    /// <summary>Resolves the upstream (once) and connects, both within the request's deadline.</summary>
    private async Task<UpstreamLink> OpenAsync(IStreamConnector? loop, Deadline deadline, CancellationToken cancellationToken)
    {
        var endPoint = await ResolveAsync(deadline).ConfigureAwait(false);
        using var timeUp = deadline.IsSet ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : null;
        timeUp?.CancelAfter(deadline.Remaining());
        try
        {
            return await UpstreamLink.OpenAsync(endPoint, Framing, loop, timeUp?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamFailedException(Replies.UpstreamTimedOut, false);
        }
        catch (UpstreamFailedException)
        {
            _endPoint = null; // the name may point elsewhere by the next request
            throw;
        }
    }

    /// <summary>The upstream's address, looked up once; a lookup that hangs past the deadline is a timeout.</summary>
    private async Task<IPEndPoint> ResolveAsync(Deadline deadline)
    {
        var resolving = _endPoint ??= KeyClient.ResolveAsync(Target.Host, Target.Port, CancellationToken.None);
        if (!resolving.IsCompleted && deadline.IsSet &&
            await Task.WhenAny(resolving, Task.Delay(deadline.Remaining())).ConfigureAwait(false) != resolving)
        {
            throw new UpstreamFailedException(Replies.UpstreamTimedOut, false);
        }

        try
        {
            return await resolving.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException || e is ArgumentException)
        {
            _endPoint = null;
            throw new UpstreamFailedException(
                Replies.UpstreamUnreachable(e is SocketException { SocketErrorCode: SocketError.HostNotFound } ? $"no host named '{Target.Host}'" : e.Message), false, e);
        }
    }

    /// <summary>When a request's time is up, for each step it takes (connect, exchange, the retry).</summary>
    private readonly struct Deadline
    {
        private readonly long _at; // Stopwatch ticks; 0: none

        // Past what a timer takes (about 24 days), a timeout is none.
        public Deadline(TimeSpan timeout) =>
            _at = timeout == Timeout.InfiniteTimeSpan || timeout.TotalMilliseconds >= int.MaxValue
                ? 0
                : Stopwatch.GetTimestamp() + (long)(Math.Max(0, timeout.TotalSeconds) * Stopwatch.Frequency);

        public bool IsSet => _at != 0;

        /// <summary>The time left (at least a millisecond: a step that starts late still fails by its timer); infinite when none.</summary>
        public TimeSpan Remaining() =>
            _at == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(Math.Max(1, (_at - Stopwatch.GetTimestamp()) * 1000.0 / Stopwatch.Frequency));
    }
}
