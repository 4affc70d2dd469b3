using System;
using System.Net.Sockets;
using System.Threading.Tasks;

namespace KeyShell.Engine.Server;

/// <summary>
/// The socket calls the engine makes, in the cheapest form each framework has: on .NET 8 the
/// ValueTask overloads complete without allocating; on .NET Standard 2.0 the Task ones.
/// </summary>
internal static class SocketIo
{
    /// <summary>A receive as a Task, for the rare paths that race it against a timer.</summary>
    public static Task<int> ReceiveTask(Socket socket, byte[] buffer) =>
        socket.ReceiveAsync(new System.ArraySegment<byte>(buffer), SocketFlags.None);

#if NET
    public static ValueTask<int> ReceiveAsync(Socket socket, byte[] buffer, int offset, int count) =>
        socket.ReceiveAsync(buffer.AsMemory(offset, count), SocketFlags.None);

    public static async ValueTask SendAsync(Socket socket, byte[] buffer, int offset, int count)
    {
        while (count > 0)
        {
            var sent = await socket.SendAsync(buffer.AsMemory(offset, count), SocketFlags.None).ConfigureAwait(false);
            offset += sent;
            count -= sent;
        }
    }

    public static ValueTask<Socket> AcceptAsync(Socket listener) => listener.AcceptAsync(System.Threading.CancellationToken.None);
#else
    public static Task<int> ReceiveAsync(Socket socket, byte[] buffer, int offset, int count) =>
        socket.ReceiveAsync(new System.ArraySegment<byte>(buffer, offset, count), SocketFlags.None);

    public static async Task SendAsync(Socket socket, byte[] buffer, int offset, int count)
    {
        while (count > 0)
        {
            var sent = await socket.SendAsync(new System.ArraySegment<byte>(buffer, offset, count), SocketFlags.None).ConfigureAwait(false);
            offset += sent;
            count -= sent;
        }
    }

    public static Task<Socket> AcceptAsync(Socket listener) => listener.AcceptAsync();
#endif
}
