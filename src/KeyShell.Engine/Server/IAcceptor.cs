using System;
using System.Threading.Tasks;

namespace KeyShell.Engine.Server;

/// <summary>Takes a server's connections from its listener and hands each to a driver.</summary>
internal interface IAcceptor : IDisposable
{
    /// <summary>True when Linux event loops serve the connections.</summary>
    bool UsesEventLoops { get; }

    void Start();

    /// <summary>Stops accepting and closes the listener (a bounded wait for its accept loops to end); the
    /// connections already served go on, on their loops, until <see cref="IDisposable.Dispose"/>.</summary>
    Task StopAsync();
}
