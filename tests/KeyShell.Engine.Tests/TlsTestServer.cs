using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Tests;

/// <summary>
/// A minimal TLS server for client-side tests (the probe) until KeyServer's transport speaks TLS: it shakes
/// hands through <see cref="TlsHandshake"/>, then answers each line with the seed's reply to key 0.
/// Handshake failures are kept for the tests to read.
/// </summary>
internal sealed class TlsTestServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly TlsServerSettings _settings;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TlsTestServer(TlsServerSettings settings)
    {
        _settings = settings;
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public BlockingCollection<TlsHandshakeException> Failures { get; } = new();

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _accepting.Wait(TestSupport.Bound);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException || e is SocketException || e is ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            using var tls = await TlsHandshake.AuthenticateAsServerAsync(stream, _settings, _stop.Token);
            var reply = Encoding.ASCII.GetBytes("Response for the key 0 : 12\n");
            var buffer = new byte[1024];
            while (await tls.ReadAsync(buffer, _stop.Token) is var read && read > 0)
            {
                for (var i = 0; i < read; i++)
                {
                    if (buffer[i] == (byte)'\n')
                    {
                        await tls.WriteAsync(reply, _stop.Token);
                    }
                }
            }
        }
        catch (TlsHandshakeException e)
        {
            Failures.Add(e);
        }
        catch (Exception e) when (e is IOException || e is OperationCanceledException || e is ObjectDisposedException)
        {
            // The client left, or the server stops.
        }
        finally
        {
            stream.Dispose();
        }
    }
}
