using System;
using System.Globalization;

namespace KeyShell.Engine.Logging;

/// <summary>One line of a conversation log, read back: <c>[&lt;timestamp&gt; ]&lt;Source&gt;: &lt;payload&gt;</c>.
/// A fault line (<c>SYSTEM: Fault reset (3 7)</c>) is read as a <see cref="ConversationFault"/>.</summary>
public class ConversationEntry
{
    private protected ConversationEntry(int lineNumber, string line, DateTime? time, string source, string text, string? clientId, string? key, string? reply)
    {
        LineNumber = lineNumber;
        Line = line;
        Time = time;
        Source = source;
        Text = text;
        ClientId = clientId;
        Key = key;
        Reply = reply;
    }

    /// <summary>1-based, as editors count.</summary>
    public int LineNumber { get; }

    public string Line { get; }

    /// <summary>The UTC timestamp, when the log has them.</summary>
    public DateTime? Time { get; }

    /// <summary>SYSTEM, Client or Server; null for a line that is not a conversation line.</summary>
    public string Source { get; }

    /// <summary>Everything after "Source: ".</summary>
    public string Text { get; }

    public string? ClientId { get; }

    /// <summary>A Client line's key.</summary>
    public string? Key { get; }

    /// <summary>A Server line's reply.</summary>
    public string? Reply { get; }

    /// <summary>Reads one line; returns null for a line that is not of the log's form.</summary>
    public static ConversationEntry? Parse(string line, int lineNumber)
    {
        DateTime? time = null;
        var rest = line;
        var space = line.IndexOf(' ');
        if (space > 0 && line[space - 1] != ':' &&
            DateTime.TryParse(line.Substring(0, space), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var stamp))
        {
            time = stamp.Kind == DateTimeKind.Utc ? stamp : stamp.ToUniversalTime();
            rest = line.Substring(space + 1);
        }

        var colon = rest.IndexOf(": ", StringComparison.Ordinal);
        if (colon <= 0)
        {
            return null;
        }

        var source = rest.Substring(0, colon);
        var text = rest.Substring(colon + 2);
        switch (source)
        {
            case ConversationLine.System:
                return ConversationFault.TryParse(lineNumber, line, time, text) ??
                    new ConversationEntry(lineNumber, line, time, source, text, null, null, null);
            case ConversationLine.Client:
                // A request the server could not parse is logged as received, and answered for client "?":
                // judge it by the same grammar, on the bytes it stands for.
                var request = ConversationLine.Unescape(text);
                if (Protocol.RequestParser.Parse(request, out var clientLength) != Protocol.ParseStatus.Ok)
                {
                    return new ConversationEntry(lineNumber, line, time, source, text, null, text, null);
                }

                return new ConversationEntry(lineNumber, line, time, source, text, Ascii(request, 0, clientLength), Ascii(request, clientLength + 1, request.Length - clientLength - 1), null);
            case ConversationLine.Server:
                var split = text.IndexOf(' ');
                var client = split > 0 ? text.Substring(0, split) : null;
                var reply = split > 0 ? text.Substring(split + 1) : text;
                var clientId = client is null || client == ConversationLine.NoClient ? null : Ascii(ConversationLine.Unescape(client));
                return new ConversationEntry(lineNumber, line, time, source, text, clientId, null, reply);
            default:
                return null;
        }
    }

    public override string ToString() => Line;

    private protected static string Ascii(byte[] bytes) => Ascii(bytes, 0, bytes.Length);

    private protected static string Ascii(byte[] bytes, int offset, int count) => System.Text.Encoding.ASCII.GetString(bytes, offset, count);
}
