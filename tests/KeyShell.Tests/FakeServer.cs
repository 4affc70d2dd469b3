using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

/// <summary>
/// A server on 127.0.0.1 that is not a key server, for the reply check: <c>Http</c> answers whatever comes
/// with an HTTP 400 and closes, as a local web server does; <c>Silent</c> takes connections and never answers.
/// The tests load it with Add-Type.
/// </summary>
public sealed class KeyShellFakeServer : IDisposable
{
    private const string BadRequest = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request";
    private readonly TcpListener _listener = new TcpListener(IPAddress.Loopback, 0);
    private readonly bool _answer;
    private readonly System.Collections.Generic.List<Socket> _held = new System.Collections.Generic.List<Socket>();
    private int _connections;

    private KeyShellFakeServer(bool answer)
    {
        _answer = answer;
        _listener.Start(128);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        new Thread(Accept) { IsBackground = true }.Start();
    }

    public static KeyShellFakeServer Http() => new KeyShellFakeServer(true);

    public static KeyShellFakeServer Silent() => new KeyShellFakeServer(false);

    public int Port { get; }

    public int Connections => Volatile.Read(ref _connections);

    public void Dispose()
    {
        _listener.Stop();
        lock (_held)
        {
            _held.ForEach(s => s.Dispose());
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
                if (_answer)
                {
                    new Thread(() => Serve(client)) { IsBackground = true }.Start();
                }
                else
                {
                    lock (_held)
                    {
                        _held.Add(client); // open, and never answered
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
        {
            // Stopped.
        }
    }

    private static void Serve(Socket client)
    {
        var buffer = new byte[4096];
        try
        {
            if (client.Receive(buffer) > 0)
            {
                client.Send(Encoding.ASCII.GetBytes(BadRequest));
            }

            // Its side closed, it reads what the client still sends until the client closes: a close with
            // unread bytes would be a reset, which can throw away the reply before the client reads it.
            client.Shutdown(SocketShutdown.Send);
            client.ReceiveTimeout = 10000;
            while (client.Receive(buffer) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }
}
