using System;
using System.IO;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Server;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Transport;

/// <summary>What the transports can do on netstandard2.0 (Windows PowerShell 5.1): no event loops, and a
/// stream cannot wait for bytes without a buffer. Its .NET 8 twin has both.</summary>
internal static class TransportPlatform
{
    public static bool HasEventLoops => false;

    public static IAcceptor? CreateEventLoopAcceptor(Admission admission, ServerEvents events, Socket listener, int port) => null;

    public static ClientTransport? CreateEventLoopTransport(int loops, string name, Action<Exception> onError) => null;

    /// <summary>Completes at once: the read that follows waits, with its buffer.</summary>
    public static Task WaitForBytesAsync(Stream stream) => Task.CompletedTask;
}
