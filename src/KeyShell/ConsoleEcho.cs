using System;
using System.Collections.Concurrent;
using System.Threading;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>
/// The seed's server console for Start-KeyServer -Wait: a line per connection and per request (and per
/// refused peer: <c>Client refused (certificate: ...)</c>; per fault applied: <c>Fault reset (3 7)</c>), at
/// no more than a person can read. It listens to the server's events only while this tick's budget of lines
/// lasts; past it, it unsubscribes until the next tick, so under load the server pays for the lines shown,
/// not for one event per request. What was not shown is counted from the server's counters and said in
/// one line.
/// </summary>
internal sealed class ConsoleEcho : IDisposable
{
    private readonly KeyServer _server;
    private readonly int _linesPerTick;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly EventHandler<KeyServerEventArgs> _connected;
    private readonly EventHandler<KeyServerEventArgs> _served;
    private readonly EventHandler<KeyServerEventArgs> _refused;
    private readonly EventHandler<KeyServerEventArgs> _faulted;
    private readonly object _gate = new();
    private int _budget;
    private bool _listening;
    private long _shownRequests;
    private long _shownConnections;
    private long _requestsSeen;
    private long _connectionsSeen;

    public ConsoleEcho(KeyServer server, int linesPerTick)
    {
        _server = server;
        _linesPerTick = linesPerTick;
        _connected = (_, _) => Show("Client connected!", isRequest: false);
        _served = (_, e) => Show($"Client {e.ClientId ?? "?"} : {e.Key}", isRequest: true);
        _refused = (_, e) => Show($"Client refused ({e.Reason})", isRequest: null); // not a connection: not in the summary
        // A faulted request is shown by its fault, as the log shows it (a refused connection: not a request).
        _faulted = (_, e) => Show(e.ClientId is null ? $"Fault {e.Reason}" : $"Fault {e.Reason} ({e.ClientId} {e.Key})", isRequest: e.ClientId is null ? null : true);
        _requestsSeen = server.Requests;
        _connectionsSeen = server.Connections;
        NextTick();
    }

    /// <summary>Takes the lines queued since the last call.</summary>
    public bool TryTake(out string line) => _lines.TryDequeue(out line!);

    /// <summary>Starts a new tick: a fresh budget, and listening again if it ran out.</summary>
    public void NextTick()
    {
        lock (_gate)
        {
            _budget = _linesPerTick;
            Listen(true);
        }
    }

    /// <summary>Requests and connections the console did not show since the last call (the log has them
    /// all). Read from the counters, so a line shown just before its request was counted can shift one
    /// request from one summary to the next.</summary>
    public long TakeUnshown()
    {
        lock (_gate)
        {
            var requests = _server.Requests;
            var connections = _server.Connections;
            var unshown = (requests - _requestsSeen - _shownRequests) + (connections - _connectionsSeen - _shownConnections);
            _requestsSeen = requests;
            _connectionsSeen = connections;
            _shownRequests = _shownConnections = 0;
            return Math.Max(0, unshown);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            Listen(false);
        }
    }

    private void Show(string line, bool? isRequest)
    {
        lock (_gate)
        {
            if (_budget <= 0)
            {
                return; // raised before the unsubscribe took effect: counted as unshown
            }

            if (--_budget == 0)
            {
                Listen(false);
            }

            if (isRequest == true)
            {
                ++_shownRequests;
            }
            else if (isRequest == false)
            {
                ++_shownConnections;
            }
        }

        _lines.Enqueue(line);
    }

    private void Listen(bool on)
    {
        if (on == _listening)
        {
            return;
        }

        _listening = on;
        if (on)
        {
            _server.ClientConnected += _connected;
            _server.RequestServed += _served;
            _server.ClientRefused += _refused;
            _server.FaultApplied += _faulted;
        }
        else
        {
            _server.ClientConnected -= _connected;
            _server.RequestServed -= _served;
            _server.ClientRefused -= _refused;
            _server.FaultApplied -= _faulted;
        }
    }
}
