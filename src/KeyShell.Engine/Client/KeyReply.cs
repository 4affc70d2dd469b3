using System;
using System.Globalization;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Client;

/// <summary>One reply to one key of a sequence.</summary>
public sealed class KeyReply
{
    /// <summary>A reply judged by the protocol's check (<see cref="ReplyCheck"/>).</summary>
    public KeyReply(string clientId, int index, string key, string reply, TimeSpan latency)
        : this(clientId, index, key, reply, latency, ReplyCheck.Classify(reply, key))
    {
    }

    public KeyReply(string clientId, int index, string key, string reply, TimeSpan latency, ReplyKind kind)
    {
        ClientId = clientId;
        Index = index;
        Key = key;
        Reply = reply;
        Latency = latency;
        Kind = kind;
        IsError = kind != ReplyKind.Response;
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

    /// <summary>Response (the protocol's answer to the key), ErrorReply (<c>Error: ...</c>), or UnexpectedReply
    /// (not the protocol's reply to this key: another protocol, another key's answer, a reply cut off).</summary>
    public ReplyKind Kind { get; }

    /// <summary>True for an error reply and for a reply that is not the protocol's.</summary>
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
