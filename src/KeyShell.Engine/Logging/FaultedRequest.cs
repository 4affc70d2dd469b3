namespace KeyShell.Engine.Logging;

/// <summary>A request a fault took, as Test-KeyConversation -Detailed lists it.</summary>
public sealed class FaultedRequest
{
    internal FaultedRequest(ConversationExchange exchange)
    {
        ClientId = exchange.ClientId;
        Key = exchange.Key;
        Fault = exchange.Fault!.Fault;
        RequestLine = exchange.Request.LineNumber;
        FaultLine = exchange.Fault.LineNumber;
        Exchange = exchange;
    }

    public string ClientId { get; }

    public string Key { get; }

    /// <summary>The fault's word: reset, delay, ...</summary>
    public string Fault { get; }

    public int RequestLine { get; }

    public int FaultLine { get; }

    /// <summary>A Delay's or a Slice's reply, once the log has it; null for faults that deliver none.</summary>
    public int? ReplyLine => Exchange.Reply?.LineNumber;

    private ConversationExchange Exchange { get; }

    public override string ToString() =>
        $"Line {FaultLine}: client {ClientId}'s key {Key} (line {RequestLine}) got fault {Fault}" +
        (Exchange.Fault!.Delivers ? (ReplyLine is { } reply ? $", then its reply (line {reply})." : ", and no reply followed.") : ".");
}
