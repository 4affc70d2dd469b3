using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

/// <summary>
/// Behaves as the seed's C++ server does on the wire (a thread per client; one recv() is one request; the
/// reply, the seed's text, has no terminator; the connection stays open until the peer closes it), so that
/// upstream mode can be tested in front of a server of the seed's kind, which keeps no checkable log. Requests
/// are kept as received, to show what went out on the wire. The tests load it with Add-Type.
/// </summary>
public sealed class KeyShellSeedStandIn : IDisposable
{
    private static readonly int[] Values = { 12, 45, 78, 23, 56, 89, 34, 67, 90, 10 };
    private readonly TcpListener _listener = new TcpListener(IPAddress.Loopback, 0);
    private readonly List<Socket> _clients = new List<Socket>();
    private readonly List<string> _received = new List<string>();
    private int _connections;

    public KeyShellSeedStandIn()
    {
        _listener.Start(64);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        new Thread(Accept) { IsBackground = true }.Start();
    }

    public int Port { get; }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Each read's bytes as text, in the order they came.</summary>
    public string[] Received
    {
        get { lock (_received) { return _received.ToArray(); } }
    }

    public void Dispose()
    {
        _listener.Stop();
        lock (_clients)
        {
            foreach (var client in _clients) { client.Dispose(); }
        }
    }

    private void Accept()
    {
        try
        {
            while (true)
            {
                var client = _listener.AcceptSocket();
                Interlocked.Increment(ref _connections);
                lock (_clients) { _clients.Add(client); }
                new Thread(() => Serve(client)) { IsBackground = true }.Start();
            }
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
        {
            // Stopped.
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
                lock (_received) { _received.Add(message); }
                var parts = message.Split(' ');
                int key;
                var reply = parts.Length == 2 && int.TryParse(parts[1], out key) && key >= 0 && key <= 9
                    ? "Response for the key " + key + " : " + Values[key]
                    : "Error: enter a number between 0 and 9";
                client.Send(Encoding.ASCII.GetBytes(reply));
            }
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            // The peer went away, or the stand-in stopped.
        }
        finally
        {
            client.Dispose();
        }
    }
}
