using System;
using System.Net.Sockets;

namespace KeyShell.Engine.Transport;

/// <summary>The socket under a stream driver's connection: what other threads, and the drain, need of it.</summary>
internal interface IStreamSocket : IDisposable
{
    /// <summary>Ends the connection from any thread: pending reads and writes fail.</summary>
    void Abort();

    /// <summary>Stops sending (the peer reads the end), while reading goes on.</summary>
    void ShutdownSend();

    /// <summary>Closes with a reset (RST): what is unsent is discarded.</summary>
    void Reset();
}

/// <summary>A .NET <see cref="Socket"/> as a stream driver's socket: aborted by closing it under its calls.</summary>
internal sealed class DotNetSocket : IStreamSocket
{
    public DotNetSocket(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    public void Abort() => Socket.Dispose();

    public void ShutdownSend() => Socket.Shutdown(SocketShutdown.Send);

    public void Reset()
    {
        try
        {
            Socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            // Closed already: there is nothing left to reset.
        }

        Socket.Dispose();
    }

    public void Dispose() => Socket.Dispose();
}
