using System;

namespace KeyShell.Engine.Client;

/// <summary>How a client uses connections.</summary>
public enum ConnectionMode
{
    /// <summary>A new connection for every key, as the seed's client does.</summary>
    PerMessage,
    /// <summary>One connection per sequence, kept for all its keys.</summary>
    Persistent,
}

/// <summary>How requests and replies are delimited on the wire.</summary>
public enum Framing
{
    /// <summary>Requests and replies end with LF.</summary>
    Line,
    /// <summary>The seed's: no terminator; a reply is what one read returns.</summary>
    Legacy,
}

public sealed partial class KeyClientOptions
{
    public string ComputerName { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 8080;

    public ConnectionMode Connection { get; set; } = ConnectionMode.PerMessage;

    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>How long one request (connect, send and reply) may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the watchdog checks a server that has stopped answering.</summary>
    public TimeSpan WatchdogInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A client-side conversation log (the seed's client logged too); null for none.</summary>
    public string? LogPath { get; set; }

    public bool Timestamps { get; set; }

    /// <summary>Counts any one-line reply that does not start with <c>Error:</c> as an answer, for servers whose
    /// handlers compute replies of their own form (Invoke-KeyClient -SkipReplyCheck).</summary>
    public bool SkipReplyCheck { get; set; }

    /// <summary>For tests: false runs the sequences on the portable async path even where event loops run.</summary>
    internal bool UseEventLoops { get; set; } = true;
}
