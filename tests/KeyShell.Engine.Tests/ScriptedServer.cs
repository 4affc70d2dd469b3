using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KeyShell.Engine.Tests;

/// <summary>
/// A server that is not KeyShell's: each read a client sends is handed to a script, which returns what to
/// send back and whether to close then. For the replies a client must not take as the protocol's: an HTTP
/// server's, an answer to another key, a reply cut off by a close.
/// </summary>
internal sealed class ScriptedServer : IDisposable
{
    /// <summary>What a local web server answers a line that is not HTTP.</summary>
    public const string HttpBadRequest = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request";

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<string, (byte[] Reply, bool Close)> _script;
    private readonly List<Socket> _clients = new();
    private int _reads;

    public ScriptedServer(Func<string, (string Reply, bool Close)> script)
        : this(read =>
        {
            var (reply, close) = script(read);
            return (Encoding.UTF8.GetBytes(reply), close);
        })
    {
    }

    /// <summary>With the reply's bytes as they are sent (one that is not UTF-8, say).</summary>
    public ScriptedServer(Func<string, (byte[] Reply, bool Close)> script)
    {
        _script = script;
        _listener.Start(64);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        new Thread(AcceptLoop) { IsBackground = true }.Start();
    }

    /// <summary>An HTTP server: one 400 reply to whatever comes, then a close.</summary>
    public static ScriptedServer Http() => new(_ => (HttpBadRequest, true));

    public int Port { get; }

    /// <summary>Reads received so far, from all clients.</summary>
    public int Reads => Volatile.Read(ref _reads);

    public void Dispose()
    {
        _listener.Stop();
        lock (_clients)
        {
            _clients.ForEach(c => c.Dispose());
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
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
        {
            // Stopped.
        }
    }

    private void Serve(Socket client)
    {
        var buffer = new byte[4096];
        try
        {
            int count;
            while ((count = client.Receive(buffer)) > 0)
            {
                Interlocked.Increment(ref _reads);
                var (reply, close) = _script(Encoding.ASCII.GetString(buffer, 0, count));
                client.Send(reply);
                if (close)
                {
                    // Ends its side, then reads what the client still sends until it closes: a close with unread
                    // bytes would be a reset, which can throw away the reply before the client reads it.
                    client.Shutdown(SocketShutdown.Send);
                    while (client.Receive(buffer) > 0)
                    {
                    }

                    break;
                }
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
