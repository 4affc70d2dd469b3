using System;
using System.Globalization;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Logging;

/// <summary>
/// A fault line read back: <c>SYSTEM: Fault reset (3 7)</c> (a fault applied to client 3's request for key 7)
/// or <c>SYSTEM: Fault refuse (connection 5)</c> (the 5th accepted connection closed at accept). Source is
/// SYSTEM, as the line says; ClientId and Key are the request's.
/// </summary>
public sealed class ConversationFault : ConversationEntry
{
    private ConversationFault(int lineNumber, string line, DateTime? time, string text, string fault, FaultType? type, string? clientId, string? key, long? connection)
        : base(lineNumber, line, time, ConversationLine.System, text, clientId, key, null)
    {
        Fault = fault;
        FaultType = type;
        Connection = connection;
    }

    /// <summary>The type's word, as logged: delay, stall, reset, close, truncate, garbage, slice or refuse.</summary>
    public string Fault { get; }

    /// <summary>The type; null for a word this version does not know.</summary>
    public FaultType? FaultType { get; }

    /// <summary>Refuse: the accepted connection's number; null for a fault on a request.</summary>
    public long? Connection { get; }

    /// <summary>True for Delay and Slice: the reply still comes, and its Server line follows the fault line.</summary>
    public bool Delivers => FaultType is Faults.FaultType.Delay or Faults.FaultType.Slice;

    /// <summary>Reads the text of a SYSTEM line as a fault line; null when it is not one.</summary>
    internal static ConversationFault? TryParse(int lineNumber, string line, DateTime? time, string text)
    {
        const string Prefix = ConversationLine.FaultWord + " ";
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !text.EndsWith(")", StringComparison.Ordinal))
        {
            return null;
        }

        var open = text.IndexOf(" (", Prefix.Length, StringComparison.Ordinal);
        if (open <= Prefix.Length)
        {
            return null;
        }

        var word = text.Substring(Prefix.Length, open - Prefix.Length);
        if (word.Length == 0 || word.IndexOf(' ') >= 0)
        {
            return null;
        }

        var inside = text.Substring(open + 2, text.Length - open - 3);
        var type = TypeOf(word);
        if (type == Faults.FaultType.Refuse)
        {
            const string Connection = "connection ";
            return inside.StartsWith(Connection, StringComparison.Ordinal) &&
                long.TryParse(inside.Substring(Connection.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                ? new ConversationFault(lineNumber, line, time, text, word, type, null, null, number)
                : null;
        }

        // The request as received, escaped as a Client line's: read by the same grammar.
        var request = ConversationLine.Unescape(inside);
        if (RequestParser.Parse(request, out var clientLength) != ParseStatus.Ok)
        {
            return null;
        }

        return new ConversationFault(lineNumber, line, time, text, word, type,
            Ascii(request, 0, clientLength), Ascii(request, clientLength + 1, request.Length - clientLength - 1), null);
    }

    private static FaultType? TypeOf(string word)
    {
        foreach (FaultType type in Enum.GetValues(typeof(FaultType)))
        {
            if (KeyFault.WordOf(type) == word)
            {
                return type;
            }
        }

        return null;
    }
}
