using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport;

/// <summary>
/// The buffers a driver lends a session for one call: what to send, and the log lines of what was
/// answered. An event loop lends all its connections one pair (they are served one at a time on its
/// thread); the stream driver lends each connection its own, released while the connection is idle.
/// </summary>
internal sealed class Scratch
{
    public ByteBuffer Output { get; } = new(0);

    public ByteBuffer Log { get; } = new(0);

    /// <summary>Gives both arrays back to the pool.</summary>
    public void Release()
    {
        Output.Release();
        Log.Release();
    }
}
