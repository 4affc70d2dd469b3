using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Logging;

/// <summary>The event ids of what a server hands its conversation log through ILogger.</summary>
internal static class ConversationEvents
{
    /// <summary>A batch of whole Client/Server lines (<see cref="ConversationBatch"/>).</summary>
    public static readonly EventId Conversation = new(1, nameof(Conversation));

    /// <summary>One text that becomes a <c>SYSTEM:</c> line.</summary>
    public static readonly EventId System = new(2, nameof(System));
}
