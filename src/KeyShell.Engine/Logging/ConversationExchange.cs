namespace KeyShell.Engine.Logging;

/// <summary>One request of a client, as a log tells it: its key, and its reply, its fault, or neither.</summary>
public sealed class ConversationExchange
{
    internal ConversationExchange(string clientId, long position, ConversationEntry request)
    {
        ClientId = clientId;
        Position = position;
        Request = request;
    }

    public string ClientId { get; }

    /// <summary>The request's place among its client's requests in the log (1-based).</summary>
    public long Position { get; }

    public string Key => Request.Key!;

    public ConversationEntry Request { get; }

    /// <summary>The Server line that answered it; null when none did.</summary>
    public ConversationEntry? Reply { get; internal set; }

    /// <summary>The fault line in its place; null when no fault was applied.</summary>
    public ConversationFault? Fault { get; internal set; }

    /// <summary>What the client got, in words: the reply, the fault that took it (<c>Fault reset</c>), or null
    /// (no reply). A Delay or Slice that delivered the reply is the reply: it changes when, not what.</summary>
    public string? Outcome => Reply?.Reply ?? (Fault is null ? null : ConversationLine.FaultWord + " " + Fault.Fault);
}
