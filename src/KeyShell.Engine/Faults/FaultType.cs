namespace KeyShell.Engine.Faults;

/// <summary>What a fault does to the request it takes (see <see cref="KeyFault"/> for each one's parameters).</summary>
public enum FaultType
{
    /// <summary>Holds the request or its reply for DelayMilliseconds (± JitterMilliseconds), then goes on.</summary>
    Delay,

    /// <summary>Never replies; the connection stays open.</summary>
    Stall,

    /// <summary>Closes the connection with a reset (RST) instead of replying.</summary>
    Reset,

    /// <summary>Closes the connection (FIN) instead of replying.</summary>
    Close,

    /// <summary>Sends part of the reply (ByteCount bytes, half of it by default), then closes.</summary>
    Truncate,

    /// <summary>Sends ByteCount random bytes instead of the reply, then closes.</summary>
    Garbage,

    /// <summary>Sends the reply ByteCount bytes at a time, pausing DelayMilliseconds (± jitter) between pieces.</summary>
    Slice,

    /// <summary>Closes a connection as it is accepted, before any request.</summary>
    Refuse,
}

/// <summary>
/// When a fault acts on its request. Request: before the request is answered (on a plain server its key map
/// or -Handler never sees it, or sees it only after a Delay's hold; in upstream mode the upstream never sees
/// it). Reply: once the request is answered (the handler has run, the upstream has replied), the reply is
/// what the fault takes.
/// </summary>
public enum FaultDirection
{
    Request,
    Reply,
}
