using System;
using System.Net;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Server;

/// <summary>Everything a server is started with. The defaults are the seed's, bound to loopback.</summary>
public sealed partial class KeyServerOptions
{
    public const int DefaultPort = 8080;
    public const string DefaultLogFileName = "conversation_log.txt";

    public IPAddress Address { get; set; } = IPAddress.Loopback;

    /// <summary>0 picks a free port; <see cref="KeyServer.Port"/> reports the one bound.</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>The conversation log; null runs the server without one.</summary>
    public string? LogPath { get; set; } = DefaultLogFileName;

    /// <summary>Puts an ISO-8601 UTC timestamp in front of every log line.</summary>
    public bool Timestamps { get; set; }

    public KeyMap KeyMap { get; set; } = KeyMap.Seed;

    /// <summary>Computes replies instead of <see cref="KeyMap"/>; disposed with the server when IDisposable.</summary>
    public IKeyRequestHandler? Handler { get; set; }

    /// <summary>The faults applied to requests and accepted connections (see <see cref="KeyServer.SetFaults"/>).</summary>
    public FaultSet Faults { get; set; } = FaultSet.Empty;

    /// <summary>How long a handler may take for one request before its reply is an error.</summary>
    public TimeSpan HandlerTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest request, in bytes, without its terminator (the seed's buffer was 1,024).</summary>
    public int MaxLineLength { get; set; } = 1024;

    /// <summary>A connection that completes no request for this long is closed. Zero or less: never.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Past this many accepted sockets (connections, and TLS handshakes in progress) a new one is
    /// turned away: "Error: server busy" and closed (on a TLS port, closed before any handshake).</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Past this many TLS handshakes in progress, a new TLS connection is closed at once, before its
    /// handshake (each handshake also holds one of <see cref="MaxConnections"/>). Null: the smaller of
    /// MaxConnections and 1,024.</summary>
    public int? MaxHandshakes { get; set; }

    internal int EffectiveMaxHandshakes => MaxHandshakes ?? Math.Min(MaxConnections, 1024);

    /// <summary>How long a stop waits for in-flight requests before closing what is left.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The listen queue: large, so a burst of clients connecting at once is not dropped.</summary>
    public int Backlog { get; set; } = 4096;

    /// <summary>Where the engine's own diagnostics go (internal errors, descriptor shortages, rejected,
    /// idle and stalled connections, log failures); the conversation log is separate. Null: nowhere.</summary>
    public ILogger? Diagnostics { get; set; }

    /// <summary>Also keeps the diagnostics for a host to read later (<see cref="KeyServer.DiagnosticQueue"/>).</summary>
    public DiagnosticQueue? DiagnosticQueue { get; set; }

    /// <summary>
    /// Serve connections from Linux event loops where they run (the .NET 8 build on Linux); false keeps
    /// every connection on the portable async path (the stream driver).
    /// </summary>
    internal bool UseEventLoops { get; set; } = true;

    /// <summary>For tests: runs once the server accepts; a throw makes the start fail at its last step.</summary>
    internal Action<KeyServer>? StartedForTests { get; set; }

    /// <summary>Reads an address as users write it: an IP literal, "localhost", or "*" for every interface.</summary>
    public static IPAddress ParseAddress(string address)
    {
        if (string.IsNullOrWhiteSpace(address))
        {
            throw new KeyServerException(KeyServerErrorKind.InvalidAddress, "The address is empty.", address);
        }

        var text = address.Trim();
        if (text == "*" || text.Equals("any", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Any;
        }

        if (text.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Loopback;
        }

        if (IPAddress.TryParse(text.Trim('[', ']'), out var ip))
        {
            return ip;
        }

        throw new KeyServerException(
            KeyServerErrorKind.InvalidAddress,
            $"'{address}' is not an IP address. Give an address such as 127.0.0.1, ::1, 0.0.0.0 or '*', or 'localhost'.",
            address);
    }

    internal void Validate()
    {
        if (Port < 0 || Port > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "The port must be between 0 and 65535.");
        }

        if (MaxLineLength < 3)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLineLength), MaxLineLength, "The line limit must be at least 3 bytes.");
        }

        if (MaxConnections < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, "At least one connection must be allowed.");
        }

        if (MaxHandshakes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxHandshakes), MaxHandshakes, "At least one TLS handshake at a time must be allowed.");
        }

        if (ShutdownTimeout < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ShutdownTimeout), ShutdownTimeout, "The shutdown timeout cannot be negative.");
        }

        if (KeyMap is null)
        {
            throw new ArgumentNullException(nameof(KeyMap));
        }

        if (Faults is null)
        {
            throw new ArgumentNullException(nameof(Faults));
        }

        ValidateSecurity();
    }
}
