using System;

namespace KeyShell.Engine.Security;

/// <summary>
/// Tells a TLS client that dialled a plain-text port by its first bytes, so the server can refuse it at once
/// (as <c>handshake</c>) instead of answering its ClientHello as garbage requests or waiting out the idle
/// timeout. No request can start this way: 0x16 is not a visible ASCII character, and a client id is.
/// </summary>
public static class TlsDetection
{
    /// <summary>A TLS record of type handshake (22), the first thing every TLS client sends.</summary>
    public const byte HandshakeRecord = 0x16;

    /// <summary>True when a connection's first bytes are a TLS handshake record (version 3.x when the second byte is there).</summary>
    public static bool StartsWithTlsHandshake(ReadOnlySpan<byte> firstBytes) =>
        firstBytes.Length > 0 && firstBytes[0] == HandshakeRecord && (firstBytes.Length < 2 || firstBytes[1] == 0x03);
}
