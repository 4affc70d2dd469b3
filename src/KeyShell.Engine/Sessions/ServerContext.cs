using System;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// What a server's sessions need of it, and nothing more (as Kestrel hands its protocols a service
/// context, never the server): the settings they answer with, taken once at the start; the key map, which
/// a host may swap; the handler; the conversation log; the event sink; whether a stop has begun; and where
/// a closed connection is retired.
/// </summary>
internal sealed class ServerContext
{
    private readonly Action<ServerSession> _retire;
    private volatile KeyMap _keyMap;
    private volatile FaultSelector _faults;
    private volatile bool _stopping;

    public ServerContext(KeyServerOptions options, bool plainText, ILogger? log, ServerEvents events, Action<ServerSession> retire)
    {
        MaxLineLength = options.MaxLineLength;
        Timestamps = options.Timestamps;
        HandlerTimeout = options.HandlerTimeout;
        Handler = options.Handler;
        PlainText = plainText;
        _keyMap = options.KeyMap;
        _faults = (options.Faults ?? FaultSet.Empty).CreateSelector();
        Log = log;
        Events = events;
        _retire = retire;
    }

    /// <summary>The longest request, in bytes, without its terminator.</summary>
    public int MaxLineLength { get; }

    public bool Timestamps { get; }

    public TimeSpan HandlerTimeout { get; }

    /// <summary>Computes replies instead of <see cref="KeyMap"/>, when set.</summary>
    public IKeyRequestHandler? Handler { get; }

    /// <summary>True when the port speaks plain text: a TLS client's first bytes are then refused.</summary>
    public bool PlainText { get; }

    /// <summary>The map requests are answered from; a swap applies from each connection's next read.</summary>
    public KeyMap KeyMap
    {
        get => _keyMap;
        set => _keyMap = value;
    }

    /// <summary>The faults applied now, with their positions; swapped whole (a new selector, its positions counted
    /// from the swap), so a request meets the old set or the new one, never a mix.</summary>
    public FaultSelector Faults
    {
        get => _faults;
        set => _faults = value;
    }

    /// <summary>The selector when some fault acts on requests, else null: the no-fault path's one read and one check.</summary>
    public FaultSelector? RequestFaults
    {
        get
        {
            var faults = _faults;
            return faults.Set.HasRequestFaults ? faults : null;
        }
    }

    /// <summary>The conversation log, or null when the server keeps none.</summary>
    public ILogger? Log { get; }

    public ServerEvents Events { get; }

    /// <summary>True once a stop has begun: a connection done with its request closes instead of waiting for another.</summary>
    public bool IsStopping => _stopping;

    public void BeginStopping() => _stopping = true;

    /// <summary>A session whose connection has closed leaves the server's table (once, from its <see cref="ServerSession.Closed"/>).</summary>
    public void Retire(ServerSession session) => _retire(session);
}
