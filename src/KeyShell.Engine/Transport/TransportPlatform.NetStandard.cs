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

    /// <summary>No loop serves any thread here.</summary>
    public static IStreamConnector? CurrentLoop => null;

    /// <summary>Reads into <paramref name="buffer"/> (netstandard2.0's Stream has only the Task overloads).</summary>
    public static ValueTask<int> ReadAsync(Stream stream, byte[] buffer) => new(stream.ReadAsync(buffer, 0, buffer.Length));

    /// <summary>Writes <paramref name="count"/> bytes of <paramref name="buffer"/>.</summary>
    public static ValueTask WriteAsync(Stream stream, byte[] buffer, int count) => new(stream.WriteAsync(buffer, 0, count));

    /// <summary>Completes at once: the read that follows waits, with its buffer.</summary>
    public static ValueTask<int> WaitForBytesAsync(Stream stream) => new(0);
}
