namespace KeyShell.Engine.Logging;

/// <summary>
/// One request of one client in two logs, as Compare-KeyConversation lists it. SideIndicator, as Compare-Object
/// has it: <c>==</c> the same key and outcome in both, <c>&lt;&gt;</c> in both but different, <c>&lt;=</c> only in
/// the reference log, <c>=&gt;</c> only in the difference log.
/// </summary>
public sealed class ConversationDifference
{
    public const string Equal = "==", Different = "<>", ReferenceOnly = "<=", DifferenceOnly = "=>";

    internal ConversationDifference(string clientId, long position, ConversationExchange? reference, ConversationExchange? difference)
    {
        ClientId = clientId;
        Request = position;
        ReferenceKey = reference?.Key;
        DifferenceKey = difference?.Key;
        ReferenceReply = reference?.Reply?.Reply;
        DifferenceReply = difference?.Reply?.Reply;
        ReferenceFault = reference?.Fault?.Fault;
        DifferenceFault = difference?.Fault?.Fault;
        ReferenceOutcome = reference?.Outcome;
        DifferenceOutcome = difference?.Outcome;
        ReferenceLine = reference?.Request.LineNumber;
        DifferenceLine = difference?.Request.LineNumber;
        SideIndicator = reference is null ? DifferenceOnly
            : difference is null ? ReferenceOnly
            : IsSame(reference, difference) ? Equal
            : Different;
    }

    public string ClientId { get; }

    /// <summary>The request's place among its client's requests (1-based).</summary>
    public long Request { get; }

    public string? ReferenceKey { get; }

    public string? DifferenceKey { get; }

    /// <summary>The reply the reference log has; null when it has none (a fault took it, or nothing came).</summary>
    public string? ReferenceReply { get; }

    public string? DifferenceReply { get; }

    /// <summary>The fault applied to the request in the reference log (reset, delay, ...), or null.</summary>
    public string? ReferenceFault { get; }

    public string? DifferenceFault { get; }

    /// <summary>What the client got: the reply, <c>Fault reset</c> for a fault that took it, or null for nothing.</summary>
    public string? ReferenceOutcome { get; }

    public string? DifferenceOutcome { get; }

    /// <summary>The request's line in the reference log.</summary>
    public int? ReferenceLine { get; }

    public int? DifferenceLine { get; }

    public string SideIndicator { get; }

    public bool IsEqual => SideIndicator == Equal;

    public override string ToString() =>
        $"{SideIndicator} client {ClientId} request {Request}: {ReferenceKey ?? "-"} '{ReferenceOutcome}' / {DifferenceKey ?? "-"} '{DifferenceOutcome}'";

    private static bool IsSame(ConversationExchange reference, ConversationExchange difference) =>
        reference.Key == difference.Key && reference.Outcome == difference.Outcome;
}
