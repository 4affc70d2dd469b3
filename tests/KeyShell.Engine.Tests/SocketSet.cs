using System.Net.Sockets;

namespace KeyShell.Engine.Tests;

/// <summary>Client sockets a test opens together; disposing the set closes every one, also when the test fails.</summary>
internal sealed class SocketSet : List<Socket>, IDisposable
{
    public void Dispose()
    {
        foreach (var socket in this)
        {
            socket.Dispose();
        }
    }
}
