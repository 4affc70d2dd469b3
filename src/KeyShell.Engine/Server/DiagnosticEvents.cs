using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Server;

/// <summary>The event ids of the engine's own diagnostics (the host's ILogger), distinct from the conversation log.</summary>
public static class DiagnosticEvents
{
    public static readonly EventId InternalError = new(100, nameof(InternalError));
    public static readonly EventId AcceptFailed = new(101, nameof(AcceptFailed));
    public static readonly EventId Rejected = new(102, nameof(Rejected));
    public static readonly EventId IdleClosed = new(103, nameof(IdleClosed));
    public static readonly EventId LogFailed = new(104, nameof(LogFailed));
}
