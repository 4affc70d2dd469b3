using System;
using System.Globalization;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Client;

/// <summary>One reply to one key of a sequence.</summary>
public sealed class KeyReply
{
    public KeyReply(string clientId, int index, string key, string reply, TimeSpan latency)
    {
        ClientId = clientId;
        Index = index;
        Key = key;
        Reply = reply;
        Latency = latency;
        IsError = reply.StartsWith(Replies.ErrorPrefix, StringComparison.Ordinal);
        Value = IsError ? null : ParseValue(reply);
    }

    public string ClientId { get; }

    /// <summary>The key's 0-based position in its sequence.</summary>
    public int Index { get; }

    public string Key { get; }

    /// <summary>The reply as the server sent it, without its terminator.</summary>
    public string Reply { get; }

    /// <summary>The number at the end of <c>"Response for the key 7 : 67"</c>, when the reply has one.</summary>
    public long? Value { get; }

    public bool IsError { get; }

    /// <summary>From sending the request to the whole reply, connecting included in PerMessage mode.</summary>
    public TimeSpan Latency { get; }

    public override string ToString() => $"{ClientId} {Key} -> {Reply}";

    private static long? ParseValue(string reply)
    {
        var separator = reply.LastIndexOf(" : ", StringComparison.Ordinal);
        return separator >= 0 && long.TryParse(reply.Substring(separator + 3), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;
    }
}
