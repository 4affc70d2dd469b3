using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Server;

/// <summary>
/// A server's live connections: the registry, the counters, the sweep that closes idle and stalled
/// connections, and the wait for them all to close when the server stops.
/// </summary>
internal sealed class ConnectionTable : IDisposable
{
    private readonly ConcurrentDictionary<long, ServerSession> _live = new();
    private readonly object _retireLock = new(); // taken on close and by counter readers, never per request
    private readonly TaskCompletionSource<bool> _empty = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _maxConnections;
    private readonly int _idleTimeoutMs;
    private Timer? _sweep;
    private volatile bool _closing;
    private long _accepted;
    private long _rejected;
    private long _idleClosed;
    private long _retiredRequests;
    private long _retiredErrors;

    public ConnectionTable(int maxConnections, TimeSpan idleTimeout)
    {
        _maxConnections = maxConnections;
        _idleTimeoutMs = idleTimeout > TimeSpan.Zero ? (int)Math.Min(int.MaxValue / 2, idleTimeout.TotalMilliseconds) : 0;
    }

    public int Count => _live.Count;

    /// <summary>False at the connection limit, or once a stop began: the next client is turned away.</summary>
    public bool HasRoom => !_closing && _live.Count < _maxConnections;

    public long Accepted => Interlocked.Read(ref _accepted);

    public long Rejected => Interlocked.Read(ref _rejected);

    public long IdleClosed => Interlocked.Read(ref _idleClosed);

    /// <summary>Requests answered: those of closed connections, and each live one's own count.</summary>
    public long Requests
    {
        get
        {
            lock (_retireLock)
            {
                return _retiredRequests + _live.Values.Sum(s => s.Requests);
            }
        }
    }

    public long Errors
    {
        get
        {
            lock (_retireLock)
            {
                return _retiredErrors + _live.Values.Sum(s => s.Errors);
            }
        }
    }

    /// <summary>Starts closing connections idle (or with replies unread) for the idle timeout.</summary>
    public void StartSweeping()
    {
        if (_idleTimeoutMs > 0)
        {
            var period = Math.Max(10, Math.Min(1000, _idleTimeoutMs / 4));
            using (ExecutionContext.SuppressFlow())
            {
                _sweep = new Timer(_ => Sweep(), null, period, period);
            }
        }
    }

    /// <summary>Lists a new connection; false (and not listed) when a stop began meanwhile, whose sweep of the
    /// table might have missed it.</summary>
    public bool TryAdd(ServerSession session)
    {
        _live[session.Id] = session;
        Interlocked.MemoryBarrier(); // pairs with CloseAllAsync's: it sees this connection, or this sees the stop
        if (_closing)
        {
            _live.TryRemove(session.Id, out _);
            if (_live.IsEmpty)
            {
                _empty.TrySetResult(true);
            }

            return false;
        }

        Interlocked.Increment(ref _accepted);
        return true;
    }

    public void CountRejected() => Interlocked.Increment(ref _rejected);

    public void CountIdleClosed() => Interlocked.Increment(ref _idleClosed);

    public void Remove(ServerSession session)
    {
        // Retiring a connection's counts and removing it is one step for readers: never missed, never twice.
        lock (_retireLock)
        {
            if (!_live.TryRemove(session.Id, out _))
            {
                return;
            }

            _retiredRequests += session.Requests;
            _retiredErrors += session.Errors;
        }

        if (_closing && _live.IsEmpty)
        {
            _empty.TrySetResult(true);
        }
    }

    /// <summary>
    /// The connections' part of a stop: those waiting for a request close at once, the others once their
    /// request is answered; past <paramref name="grace"/> the rest are aborted. Completes when all have
    /// closed (or a bounded moment after the abort, should a driver not answer).
    /// </summary>
    public async Task CloseAllAsync(TimeSpan grace)
    {
        _closing = true;
        Interlocked.MemoryBarrier(); // Remove reads _closing after its removal: one of the two sees the table empty
        _sweep?.Dispose();
        foreach (var session in _live.Values)
        {
            session.Connection?.CloseWhenIdle();
        }

        if (_live.IsEmpty)
        {
            _empty.TrySetResult(true);
        }

        if (await Task.WhenAny(_empty.Task, Task.Delay(grace)).ConfigureAwait(false) == _empty.Task)
        {
            return;
        }

        foreach (var session in _live.Values)
        {
            session.Abort();
        }

        await Task.WhenAny(_empty.Task, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
    }

    public void Dispose() => _sweep?.Dispose();

    private void Sweep()
    {
        var now = Environment.TickCount;
        foreach (var session in _live.Values)
        {
            var blockedSince = session.Connection?.BlockedSince ?? 0;
            if (blockedSince != 0)
            {
                // A client may stop reading; it may not keep its slot (memcached closes slow readers too).
                if (unchecked(now - blockedSince) > _idleTimeoutMs)
                {
                    session.CloseStalled();
                }
            }
            else if (!session.IsHandling && unchecked(now - session.LastActivity) > _idleTimeoutMs)
            {
                session.CloseIfIdle(_idleTimeoutMs);
            }
        }
    }
}
