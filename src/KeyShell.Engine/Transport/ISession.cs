using System;
using System.Threading.Tasks;

namespace KeyShell.Engine.Transport;

/// <summary>What a session tells its driver to do once the output it wrote has been sent.</summary>
internal enum Step
{
    /// <summary>Wait for the peer's next bytes.</summary>
    Receive,
    /// <summary>Run the session's asynchronous work (a request handler), then do the step it returns.</summary>
    Handle,
    /// <summary>Close the connection: the session is over.</summary>
    Close,
    /// <summary>Stop sending, read and discard what the peer still sends for a moment, then close: so a
    /// reply written just before closing is read, not lost to a reset.</summary>
    DrainThenClose,
    /// <summary>Client roles: close this connection and open a new one.</summary>
    Reconnect,
    /// <summary>Client roles: close this connection and open a new one a little later (the last failed).</summary>
    ReconnectSoon,
}

/// <summary>
/// The protocol side of a connection (or, for a client, of its successive connections): framing,
/// answering, logging and limits, as a state machine over bytes that knows no socket. A driver (the
/// Linux event loop, or the async stream driver) moves the bytes and calls these on one thread at a
/// time. A session appends what to send to <see cref="Scratch.Output"/>; the driver sends it, then does
/// the returned <see cref="Step"/>.
/// </summary>
internal interface ISession
{
    /// <summary>The connection is open (accepted, or connected); <paramref name="connection"/> ends it from any thread.</summary>
    Step Opened(IConnection connection, Scratch scratch);

    /// <summary>Bytes arrived; <paramref name="data"/> is valid during the call only.</summary>
    Step Received(ReadOnlySpan<byte> data, Scratch scratch);

    /// <summary>The peer ended its side of the connection.</summary>
    Step Ended(Scratch scratch);

    /// <summary>The connection failed: refused, reset, aborted, or the session's own code threw.
    /// Nothing more can be sent on it; the step says whether to close or (clients) reconnect.</summary>
    Step Failed(Exception error);

    /// <summary>The work of a <see cref="Step.Handle"/>, off the driver's thread.</summary>
    Task<Step> HandleAsync(Scratch scratch);

    /// <summary>The connection is closed for good, after <see cref="Step.Close"/> or a failure that ended
    /// the session. Called once; never throws.</summary>
    void Closed();
}

/// <summary>A connection as its session sees it: the one thing it can do from another thread.</summary>
internal interface IConnection
{
    /// <summary>Environment.TickCount since which output has waited for the peer to read it; 0 when none waits.</summary>
    int BlockedSince { get; }

    /// <summary>Ends the connection from any thread; the driver then reports <see cref="ISession.Failed"/>.</summary>
    void Abort();

    /// <summary>Closes the connection if it is waiting for a request (an idle close, a server's stop);
    /// <paramref name="closing"/> runs just before it closes. A connection busy with a request is left
    /// alone. The driver then calls <see cref="ISession.Closed"/>.</summary>
    void CloseWhenIdle(Action? closing = null);
}
