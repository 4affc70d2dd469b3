using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Behaves as the seed's server does on the wire: one recv() is one request, the reply has no
/// terminator, the connection stays open until the peer closes it. A stand-in to test the client's
/// legacy framing against, since the seed itself is C++.
/// </summary>
internal sealed class SeedStandInServer : IDisposable
{
    private static readonly int[] Values = { 12, 45, 78, 23, 56, 89, 34, 67, 90, 10 };
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _clients = new();
    private readonly Thread _thread;

    public SeedStandInServer()
    {
        _listener.Start(64);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _thread = new Thread(AcceptLoop) { IsBackground = true };
        _thread.Start();
    }

    public int Port { get; }

    public List<string> Received { get; } = new();

    public void Dispose()
    {
        _listener.Stop();
        lock (_clients)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
        }
    }

    private void AcceptLoop()
    {
        try
        {
            while (true)
            {
                var client = _listener.AcceptSocket();
                lock (_clients)
                {
                    _clients.Add(client);
                }

                new Thread(() => Serve(client)) { IsBackground = true }.Start();
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (InvalidOperationException)
        {
            // Stopped between two accepts: "not listening".
        }
    }

    private void Serve(Socket client)
    {
        var buffer = new byte[1024];
        try
        {
            int count;
            while ((count = client.Receive(buffer)) > 0)
            {
                var message = Encoding.ASCII.GetString(buffer, 0, count);
                lock (Received)
                {
                    Received.Add(message);
                }

                var parts = message.Split(' ');
                var reply = parts.Length == 2 && int.TryParse(parts[1], out var key) && key >= 0 && key <= 9
                    ? $"Response for the key {key} : {Values[key]}"
                    : "Error: enter a number between 0 and 9";
                client.Send(Encoding.ASCII.GetBytes(reply));
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }
}
