using System;

namespace KeyShell.Engine.Protocol;

/// <summary>The fixed reply texts of the protocol. Every error reply starts with "Error:".</summary>
public static class Replies
{
    /// <summary>The seed's reply to a key outside its map; kept word for word.</summary>
    public const string SeedUnknownKey = "Error: enter a number between 0 and 9";

    /// <summary>The reply to a key outside a user-supplied map.</summary>
    public const string UnknownKey = "Error: unknown key";

    public const string Malformed = "Error: malformed request, expected '<client> <key>'";

    public const string BadClient = "Error: client must be 1 to 64 visible ASCII characters";

    /// <summary>Sent before the connection is closed: the server never buffers more than the line limit.</summary>
    public const string TooLong = "Error: request too long";

    /// <summary>Sent, then the connection is closed, when the server is at its connection limit.</summary>
    public const string Busy = "Error: server busy";

    public const string ErrorPrefix = "Error:";

    /// <summary>Sent, then the connection is closed, to a plain-text client on a port that speaks TLS only.</summary>
    public const string TlsRequired = "Error: TLS required";

    /// <summary>A handler took longer than the server's handler timeout.</summary>
    public const string HandlerTimedOut = "Error: handler timed out";

    /// <summary>Upstream mode: the upstream server's port refused the connection (nothing listens there).</summary>
    public const string UpstreamRefused = "Error: upstream refused the connection";

    /// <summary>Upstream mode: the upstream did not answer within the server's handler timeout.</summary>
    public const string UpstreamTimedOut = "Error: upstream timed out";

    /// <summary>Upstream mode: the upstream closed the connection before it sent any of the reply.</summary>
    public const string UpstreamClosed = "Error: upstream closed the connection";

    /// <summary>Upstream mode: the upstream reset the connection (RST) before the reply.</summary>
    public const string UpstreamReset = "Error: upstream reset the connection";

    /// <summary>Upstream mode: the upstream's reply grew past the reply limit without ending.</summary>
    public const string UpstreamReplyTooLong = "Error: upstream reply too long";

    /// <summary>Upstream mode: the upstream closed the connection after part of a line-framed reply; the part
    /// that came is quoted (at most 80 characters), as a client would want to see it.</summary>
    public static string UpstreamClosedMidReply(string partial) =>
        "Error: upstream closed the connection mid-reply after '" + OneLine(partial.Length > 80 ? partial.Substring(0, 80) + "..." : partial) + "'";

    /// <summary>Upstream mode: the upstream could not be reached for another reason (no such host, no route).</summary>
    public static string UpstreamUnreachable(string why) => "Error: upstream unreachable: " + OneLine(why);

    /// <summary>A handler threw: the reply names the failure.</summary>
    public static string HandlerFailed(string message) => "Error: handler failed: " + OneLine(message);

    /// <summary>Makes text one reply line: line breaks become spaces.</summary>
    public static string OneLine(string text) => text.Replace("\r\n", " ").Replace('\r', ' ').Replace('\n', ' ');

    /// <summary>As <see cref="OneLine(string)"/>, for a reply's bytes as they came (upstream mode passes them through).</summary>
    public static byte[] OneLine(ReadOnlySpan<byte> text)
    {
        if (text.IndexOfAny((byte)'\r', (byte)'\n') < 0)
        {
            return text.ToArray();
        }

        var line = new byte[text.Length];
        var length = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var b = text[i];
            if (b == (byte)'\r' && i + 1 < text.Length && text[i + 1] == (byte)'\n')
            {
                continue; // CRLF is one space, written for its LF
            }

            line[length++] = b is (byte)'\r' or (byte)'\n' ? (byte)' ' : b;
        }

        return line.AsSpan(0, length).ToArray();
    }

    /// <summary>The seed's reply form for a key found in the map.</summary>
    public static string ForKey(string key, string value) => "Response for the key " + key + " : " + value;
}
