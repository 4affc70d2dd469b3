using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Server;

/// <summary>
/// A server's accepted sockets and live connections: the slots that bound them (one atomic count, taken at
/// accept, before a TLS handshake, as Kestrel's connection limit is), the registry of connections, the
/// counters, the sweep that lets each connection judge itself idle or stalled, and the wait for them all
/// to close when the server stops.
/// </summary>
internal sealed class ConnectionTable : IDisposable
{
    private readonly ConcurrentDictionary<long, ServerSession> _live = new();
    private readonly object _retireLock = new(); // taken on close and by counter readers, never per request
    private readonly TaskCompletionSource<bool> _empty = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ServerEvents _events;
    private readonly int _maxConnections;
    private readonly int _maxHandshakes;
    private readonly TimeSpan _idleTimeout;
    private readonly int _idleTimeoutMs;
    private Timer? _sweep;
    private volatile bool _closing;
    private int _slots;
    private int _handshakes;
    private long _accepted;
    private long _retiredRequests;
    private long _retiredErrors;

    public ConnectionTable(int maxConnections, int maxHandshakes, TimeSpan idleTimeout, ServerEvents events)
    {
        _maxConnections = maxConnections;
        _maxHandshakes = maxHandshakes;
        _idleTimeout = idleTimeout;
        _idleTimeoutMs = idleTimeout > TimeSpan.Zero ? (int)Math.Min(int.MaxValue / 2, idleTimeout.TotalMilliseconds) : 0;
        _events = events;
    }

    /// <summary>Connections served now (handshakes in progress not included).</summary>
    public int Count => _live.Count;

    /// <summary>Accepted sockets holding a slot: connections, and TLS handshakes in progress.</summary>
    public int Slots => Volatile.Read(ref _slots);

    /// <summary>TLS handshakes in progress.</summary>
    public int Handshakes => Volatile.Read(ref _handshakes);

    public int MaxConnections => _maxConnections;

    public bool IsClosing => _closing;

    public long Accepted => Interlocked.Read(ref _accepted);

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

    /// <summary>Starts letting connections judge themselves idle (or stalled) every quarter of the idle timeout.</summary>
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

    /// <summary>Takes a slot for an accepted socket, in one atomic step; false at the limit or once a stop began.
    /// The slot is held until the connection leaves the table (or <see cref="ReleaseSlot"/>).</summary>
    public bool TryTakeSlot() => TryIncrement(ref _slots, _maxConnections);

    /// <summary>Gives back the slot of a socket that never became a connection.</summary>
    public void ReleaseSlot() => Interlocked.Decrement(ref _slots);

    /// <summary>Counts a TLS handshake in progress; false when as many as allowed are under way.</summary>
    public bool TryBeginHandshake() => TryIncrement(ref _handshakes, _maxHandshakes);

    public void EndHandshake() => Interlocked.Decrement(ref _handshakes);

    /// <summary>Lists a new connection, whose slot is taken; false (not listed, the slot given back) when a stop
    /// began meanwhile, whose sweep of the table might have missed it.</summary>
    public bool TryAdd(ServerSession session)
    {
        _live[session.Id] = session;
        Interlocked.MemoryBarrier(); // pairs with CloseAllAsync's: it sees this connection, or this sees the stop
        if (_closing)
        {
            _live.TryRemove(session.Id, out _);
            ReleaseSlot();
            if (_live.IsEmpty)
            {
                _empty.TrySetResult(true);
            }

            return false;
        }

        Interlocked.Increment(ref _accepted);
        return true;
    }

    /// <summary>A closed connection leaves the table: its meters hear of it first, its subscribers after. Never throws.</summary>
    public void Retire(ServerSession session)
    {
        _events.Closing(session, _idleTimeout);
        if (Remove(session))
        {
            _events.Disconnected(session);
        }
    }

    /// <summary>
    /// The connections' part of a stop: those waiting for a request close at once, the others once their
    /// request is answered; past <paramref name="grace"/> (or once <paramref name="abandon"/> is cancelled) the
    /// rest are aborted. Completes when all have closed (or a bounded moment after the abort, should a driver
    /// not answer).
    /// </summary>
    public async Task CloseAllAsync(TimeSpan grace, CancellationToken abandon = default)
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

        if (!await Bounded.WaitAsync(_empty.Task, grace, abandon).ConfigureAwait(false))
        {
            foreach (var session in _live.Values)
            {
                session.Abort();
            }

            await Bounded.WaitAsync(_empty.Task, Bounded.StopWait).ConfigureAwait(false);
        }
    }

    public void Dispose() => _sweep?.Dispose();

    private bool TryIncrement(ref int count, int limit)
    {
        while (true)
        {
            var current = Volatile.Read(ref count);
            if (_closing || current >= limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref count, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    private bool Remove(ServerSession session)
    {
        // Retiring a connection's counts and removing it is one step for readers: never missed, never twice.
        lock (_retireLock)
        {
            if (!_live.TryRemove(session.Id, out _))
            {
                return false;
            }

            _retiredRequests += session.Requests;
            _retiredErrors += session.Errors;
        }

        ReleaseSlot();
        if (_closing && _live.IsEmpty)
        {
            _empty.TrySetResult(true);
        }

        return true;
    }

    private void Sweep()
    {
        var now = Environment.TickCount;
        foreach (var session in _live.Values)
        {
            session.Sweep(now, _idleTimeoutMs);
        }
    }
}
