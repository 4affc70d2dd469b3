using System;
using System.Text;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Server;

/// <summary>Takes a server's connections from its listener and hands each to a driver.</summary>
internal interface IAcceptor : IDisposable
{
    /// <summary>True when Linux event loops serve the connections.</summary>
    bool UsesEventLoops { get; }

    void Start();

    /// <summary>Stops accepting and closes the listener; the connections already served go on.</summary>
    Task StopAsync();
}

/// <summary>What a client turned away at the connection limit reads before the server closes.</summary>
internal static class BusyReply
{
    public static readonly byte[] Bytes = Encoding.ASCII.GetBytes(Replies.Busy + "\n");
}
