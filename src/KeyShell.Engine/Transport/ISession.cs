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
    /// <summary>Read nothing until <see cref="ISession.WakeAt"/>, then do the step <see cref="ISession.Woken"/> returns.</summary>
    Sleep,
    /// <summary>Close the connection: this connection is over.</summary>
    Close,
    /// <summary>Stop sending, read and discard what the peer still sends for a moment, then close: so a
    /// reply written just before closing is read, not lost to a reset.</summary>
    DrainThenClose,
    /// <summary>Close the connection with a reset (RST) instead of an orderly end: what is unsent is discarded.</summary>
    Reset,
    /// <summary>Client roles: close this connection; the connector opens a new one.</summary>
    Reconnect,
    /// <summary>Client roles: close this connection; the connector opens a new one a little later (the last failed).</summary>
    ReconnectSoon,
}

/// <summary>
/// The protocol side of a connection (or, for a client, of its successive connections): framing,
/// answering, logging and limits, as a state machine over bytes that knows no socket. A driver (the
/// Linux event loop, or the async stream driver) moves the bytes and calls these on one thread at a
/// time. A session appends what to send to <see cref="Scratch.Output"/>; the driver sends it, then does
/// the returned <see cref="Step"/>. When a connection is over, its driver tells whoever started it with
/// the last step (an acceptor, or a client's connector); that owner decides what comes next and calls
/// <see cref="Closed"/> once the session has nothing more to do.
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

    /// <summary>After <see cref="Step.Sleep"/>: when to wake (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    long WakeAt { get; }

    /// <summary>The sleep asked by <see cref="Step.Sleep"/> is over.</summary>
    Step Woken(Scratch scratch);

    /// <summary>The session is over for good. Its owner calls it exactly once; it must not throw.</summary>
    void Closed();
}

/// <summary>A connection as its session sees it: what other threads may do with it.</summary>
internal interface IConnection
{
    /// <summary>Environment.TickCount since which output has waited for the peer to read it; 0 when none waits.</summary>
    int BlockedSince { get; }

    /// <summary>Ends the connection from any thread; the driver then reports <see cref="ISession.Failed"/>.</summary>
    void Abort();

    /// <summary>A server's stop: closes the connection now if it is waiting for a request, else as soon
    /// as it comes back to waiting (its current request answered and sent). Sticky. Any thread.</summary>
    void CloseWhenIdle();

    /// <summary>True when the connection is waiting for the peer's next bytes and is now kept from reading
    /// them: the caller then closes it with <see cref="CloseClaimed"/>. False when it is busy (a read, a
    /// reply, a handler, a sleep under way) or closing already. Any thread.</summary>
    bool TryClaimIdle();

    /// <summary>Closes a connection claimed by <see cref="TryClaimIdle"/>, with an orderly end. Any thread.</summary>
    void CloseClaimed();
}

/// <summary>Who started a connection, and hears once that it is over, with the session's last step.</summary>
internal interface IConnectionOwner
{
    void ConnectionEnded(Step last);
}

/// <summary>Who started a client's connect: hears it succeed (with the running connection) or fail; once
/// connected, its end comes through <see cref="IConnectionOwner.ConnectionEnded"/>.</summary>
internal interface IDialOwner : IConnectionOwner
{
    void Connected(IConnection connection);

    void DialFailed(Exception error);
}

/// <summary>What carries a client session's successive connections: ends the one (or the connect) under way
/// from any thread; the session then hears <see cref="ISession.Failed"/>.</summary>
internal interface ILink
{
    void Abort();
}
