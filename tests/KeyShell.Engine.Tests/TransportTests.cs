using KeyShell.Engine.Server;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Tests that run on both server transports: Linux event loops where they run, and, through a derived
/// class that overrides <see cref="UseEventLoops"/>, the portable async path (handlers and other
/// platforms use it).
/// </summary>
public abstract class TransportTests
{
    protected virtual bool UseEventLoops => true;

    /// <summary>Hides <see cref="TestSupport.StartServer"/>: the same server, on this class's transport.</summary>
    private protected KeyServer StartServer(Action<KeyServerOptions>? configure = null) => TestSupport.StartServer(o =>
    {
        o.UseEventLoops = UseEventLoops;
        configure?.Invoke(o);
    });
}
