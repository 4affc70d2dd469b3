using System;

namespace KeyShell.Engine.Server.Upstream;

/// <summary>The upstream could not answer one request; <see cref="Reply"/> is the <c>Error:</c> reply that says how.</summary>
internal sealed class UpstreamFailedException : Exception
{
    public UpstreamFailedException(string reply, bool beforeAnyReply, Exception? inner = null)
        : base(reply, inner)
    {
        Reply = reply;
        BeforeAnyReply = beforeAnyReply;
    }

    /// <summary>The Error: reply the client gets.</summary>
    public string Reply { get; }

    /// <summary>The connection ended (closed or reset) before any byte of the reply: on a persistent connection
    /// that had been idle, the upstream may simply have dropped it, and one retry on a new one is safe.</summary>
    public bool BeforeAnyReply { get; }
}
