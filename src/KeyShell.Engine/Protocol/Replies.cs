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

    /// <summary>A handler threw: the reply names the failure.</summary>
    public static string HandlerFailed(string message) => "Error: handler failed: " + OneLine(message);

    /// <summary>Makes text one reply line: line breaks become spaces.</summary>
    public static string OneLine(string text) => text.Replace("\r\n", " ").Replace('\r', ' ').Replace('\n', ' ');

    /// <summary>The seed's reply form for a key found in the map.</summary>
    public static string ForKey(string key, string value) => "Response for the key " + key + " : " + value;
}
