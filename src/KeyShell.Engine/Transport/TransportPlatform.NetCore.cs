using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Server;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Transport;

/// <summary>What the transports can do on .NET 8: the Linux event loops (where libc's epoll answers), and
/// streams that wait for bytes without a buffer. Its netstandard2.0 twin (TransportPlatform.NetStandard.cs) says no to both.</summary>
internal static class TransportPlatform
{
    public static bool HasEventLoops => Libc.IsSupported;

    /// <summary>The event-loop acceptor, or null where the loops do not run.</summary>
    public static IAcceptor? CreateEventLoopAcceptor(Admission admission, ServerEvents events, Socket listener, int port) =>
        Libc.IsSupported ? new EventLoopAcceptor(admission, events, listener, port) : null;

    /// <summary>The event-loop client transport (<paramref name="loops"/> loops), or null where the loops do not run.</summary>
    public static ClientTransport? CreateEventLoopTransport(int loops, string name, Action<Exception> onError) =>
        Libc.IsSupported ? new EventLoopTransport(loops, name, onError) : null;

    /// <summary>The event loop of the calling thread, to open connections on; null on any other thread.</summary>
    public static IStreamConnector? CurrentLoop => EventLoop.Current;

    /// <summary>Reads into <paramref name="buffer"/> through the Memory overload: no Task per read.</summary>
    public static ValueTask<int> ReadAsync(Stream stream, byte[] buffer) => stream.ReadAsync(buffer.AsMemory());

    /// <summary>Writes <paramref name="count"/> bytes of <paramref name="buffer"/> through the Memory overload: no Task per write.</summary>
    public static ValueTask WriteAsync(Stream stream, byte[] buffer, int count) => stream.WriteAsync(buffer.AsMemory(0, count));

    /// <summary>Completes once <paramref name="stream"/> has bytes to read (or has ended), holding no buffer meanwhile.</summary>
    public static ValueTask<int> WaitForBytesAsync(Stream stream) => stream.ReadAsync(Memory<byte>.Empty);
}
