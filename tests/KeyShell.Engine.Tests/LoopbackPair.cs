using System.Net;
using System.Net.Sockets;

namespace KeyShell.Engine.Tests;

/// <summary>Two connected loopback sockets, each wrapped in a NetworkStream that owns it (the TLS handshake tests).</summary>
internal sealed class LoopbackPair : IDisposable
{
    private LoopbackPair(Socket server, Socket client)
    {
        ServerSocket = server;
        ClientSocket = client;
        Server = new NetworkStream(server, ownsSocket: true);
        Client = new NetworkStream(client, ownsSocket: true);
    }

    public Socket ServerSocket { get; }

    public Socket ClientSocket { get; }

    public NetworkStream Server { get; }

    public NetworkStream Client { get; }

    public static async Task<LoopbackPair> ConnectAsync(IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        var listener = new TcpListener(address, 0);
        listener.Start();
        try
        {
            var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var accepted = listener.AcceptSocketAsync();
            await client.ConnectAsync(address, ((IPEndPoint)listener.LocalEndpoint).Port);
            return new LoopbackPair(await TlsHandshakeTests.Within(accepted), client);
        }
        finally
        {
            listener.Stop();
        }
    }

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
    }
}
