using System;

namespace KeyShell.Engine.Logging;

/// <summary>
/// The log state a connection passes to <c>ILogger.Log</c>: the whole lines of one read, already
/// formatted. A struct, so passing it through the generic logging call neither boxes nor allocates.
/// </summary>
public readonly struct ConversationBatch
{
    public ConversationBatch(ArraySegment<byte> lines) => Lines = lines;

    public ArraySegment<byte> Lines { get; }

    /// <summary>For providers other than the conversation log: the lines as text.</summary>
    public static string Format(ConversationBatch batch, Exception? exception) =>
        System.Text.Encoding.UTF8.GetString(batch.Lines.Array!, batch.Lines.Offset, batch.Lines.Count).TrimEnd('\n');

    public override string ToString() => Format(this, null);
}
