using System;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>What a registered socket waits for.</summary>
[Flags]
internal enum Interest
{
    None = 0,
    Read = 1,
    Write = 2,
    /// <summary>For a listener every loop watches: wake only one loop per connection.</summary>
    Exclusive = 4,
}

/// <summary>
/// The kernel's readiness API behind an <see cref="EventLoop"/>: epoll on Linux; kqueue would slot in
/// here without touching the loop, the connections or their sessions. One thread calls everything but
/// <see cref="Wake"/>.
/// </summary>
internal interface IPoller : IDisposable
{
    void Add(int descriptor, Interest interest, ulong token);

    void Change(int descriptor, Interest interest, ulong token);

    void Remove(int descriptor);

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: no limit) for ready sockets; writes the
    /// tokens they were registered with and returns how many, or a negative errno. A <see cref="Wake"/>
    /// ends the wait and is not reported.</summary>
    int Wait(Span<ulong> tokens, int timeoutMs);

    /// <summary>Ends a <see cref="Wait"/> in progress, or the next one; any thread.</summary>
    void Wake();
}
