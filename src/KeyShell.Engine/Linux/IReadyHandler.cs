#if NET
namespace KeyShell.Engine.Linux;

/// <summary>What an <see cref="EventLoop"/> calls, on its thread, when a registered socket is ready.</summary>
internal interface IReadyHandler
{
    /// <summary>Reads, writes or closes as the handler's state requires. Must not throw.</summary>
    void OnReady();
}
#endif
