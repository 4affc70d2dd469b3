using System;
using System.Buffers;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport.Stream;

/// <summary>
/// The async driver: runs one session over a <see cref="System.IO.Stream"/> (a socket's, or the
/// SslStream over it), for every role, on any platform. A server connection waits for its next request
/// with a zero-byte read and only then rents a buffer, so on .NET 8 an idle connection holds none (as
/// Kestrel does; .NET Framework's streams cannot wait without a buffer). It awaits each send before
/// reading more, so a peer that does not read cannot make it buffer without end. Other threads end the
/// connection by disposing its socket (<see cref="Abort"/>).
/// </summary>
internal sealed class StreamConnection : IConnection
{
    private const int ReceiveBufferSize = 16 * 1024;

    private const int Busy = 0;
    private const int Idle = 1;
    private const int Closing = 2;

    private readonly ISession _session;
    private readonly IPEndPoint? _remote;
    private readonly Func<System.IO.Stream, Task<System.IO.Stream>>? _secure;
    private IStreamSocket? _socket;
    private System.IO.Stream? _stream;
    private int _state;
    private int _abortRequested;
    private int _closeWhenIdle;
    private int _blockedSince;

    private StreamConnection(ISession session, IPEndPoint? remote, Func<System.IO.Stream, Task<System.IO.Stream>>? secure)
    {
        _session = session;
        _remote = remote;
        _secure = secure;
    }

    public int BlockedSince => Volatile.Read(ref _blockedSince);

    /// <summary>Serves an accepted connection: <paramref name="stream"/> reads and writes <paramref name="socket"/>
    /// (directly, or through TLS). The task ends with the session.</summary>
    public static Task Serve(ISession session, IStreamSocket socket, System.IO.Stream stream)
    {
        var connection = new StreamConnection(session, null, null);
        connection.Adopt(socket, stream);
        return connection.RunAsync();
    }

    /// <summary>Runs a client session against <paramref name="remote"/>; <paramref name="secure"/> (TLS)
    /// wraps each new connection's stream. The task ends with the session.</summary>
    public static Task Connect(ISession session, IPEndPoint remote, Func<System.IO.Stream, Task<System.IO.Stream>>? secure) =>
        new StreamConnection(session, remote, secure).RunAsync();

    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        Volatile.Read(ref _socket)?.Abort(); // pending calls fail; the loop below reports it
    }

    public void CloseWhenIdle()
    {
        // Sticky, and fenced against ReceiveAsync's entry to Idle: either it sees the flag there, or this sees Idle.
        Interlocked.Exchange(ref _closeWhenIdle, 1);
        if (Interlocked.CompareExchange(ref _state, Closing, Idle) == Idle)
        {
            EndWhileReading();
        }
    }

    public void CloseIfIdle(Func<bool> stillIdle, Action closing)
    {
        // A request that arrives after the check moves the state on, and the exchange below fails.
        if (Volatile.Read(ref _state) == Idle && stillIdle() && Interlocked.CompareExchange(ref _state, Closing, Idle) == Idle)
        {
            closing();
            EndWhileReading();
        }
    }

    /// <summary>Ends an idle connection under its pending read. Sending is shut down first: the last replies
    /// may still be in the kernel's buffer, and .NET closes a socket with a call under way by a reset, which
    /// would discard them, unless sending was shut down.</summary>
    private void EndWhileReading()
    {
        EndSending();
        Volatile.Read(ref _socket)?.Abort();
    }

    private async Task RunAsync()
    {
        var scratch = new Scratch();
        var step = _remote is null ? Step.Receive : Step.Reconnect;
        var opened = _remote is not null; // a client opens by connecting; a server's connection is open already
        while (true)
        {
            try
            {
                if (!opened)
                {
                    opened = true;
                    step = _session.Opened(this, scratch);
                }

                if (scratch.Output.Length > 0)
                {
                    await SendAsync(scratch.Output).ConfigureAwait(false);
                }

                if (step == Step.Receive)
                {
                    step = await ReceiveAsync(scratch).ConfigureAwait(false);
                }
                else if (step == Step.Handle)
                {
                    step = await _session.HandleAsync(scratch).ConfigureAwait(false);
                }
                else if (step is Step.Reconnect or Step.ReconnectSoon && _remote is not null)
                {
                    CloseSocket();
                    if (step == Step.ReconnectSoon)
                    {
                        await Task.Delay(10).ConfigureAwait(false);
                    }

                    step = await ConnectAsync(scratch).ConfigureAwait(false);
                }
                else
                {
                    if (step == Step.DrainThenClose)
                    {
                        await DrainAsync().ConfigureAwait(false);
                    }

                    break;
                }
            }
            catch (Exception e)
            {
                CloseSocket();
                scratch.Clear(); // what a failed call wrote never reaches the peer
                step = Failed(e);
            }
        }

        EndSending();
        CloseSocket();
        scratch.Release();
        _session.Closed();
    }

    /// <summary>Ends sending: the peer reads every reply, then the end (see <see cref="EndWhileReading"/>).</summary>
    private void EndSending()
    {
        try
        {
            Volatile.Read(ref _socket)?.ShutdownSend();
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is IOException)
        {
            // Aborted, or the peer has gone: nothing is left to deliver.
        }
    }

    /// <summary>The session's verdict on a failure; a session that throws here is closed.</summary>
    private Step Failed(Exception error)
    {
        try
        {
            return _session.Failed(error);
        }
        catch (Exception)
        {
            return Step.Close;
        }
    }

    private async Task<Step> ConnectAsync(Scratch scratch)
    {
        Interlocked.Exchange(ref _abortRequested, 0);
        try
        {
            var socket = new Socket(_remote!.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Adopt(new DotNetSocket(socket), null); // before connecting: an abort (a timeout) closes it under the connect
            await socket.ConnectAsync(_remote).ConfigureAwait(false);
            System.IO.Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (_secure is not null)
            {
                stream = await _secure(stream).ConfigureAwait(false);
            }

            Volatile.Write(ref _stream, stream);
        }
        catch (Exception e)
        {
            CloseSocket();
            return Failed(new ConnectFailedException(e)); // out of descriptors, refused, or no TLS agreement
        }

        return _session.Opened(this, scratch);
    }

    private void Adopt(IStreamSocket socket, System.IO.Stream? stream)
    {
        _stream = stream;
        Interlocked.Exchange(ref _socket, socket);
        Volatile.Write(ref _state, Busy);
        if (Volatile.Read(ref _abortRequested) == 1)
        {
            socket.Abort(); // aborted before the socket was there to close
        }
    }

    private async Task<Step> ReceiveAsync(Scratch scratch)
    {
        scratch.Release(); // a server waits for a request here: it holds no buffer meanwhile
        Interlocked.Exchange(ref _state, Idle); // a full fence: a stop's CloseWhenIdle sees Idle, or this sees its flag
        if (Volatile.Read(ref _closeWhenIdle) == 1 && Interlocked.CompareExchange(ref _state, Closing, Idle) == Idle)
        {
            return Step.Close;
        }

        var stream = _stream!;
#if NET
        if (_remote is null)
        {
            await stream.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false); // returns once data is there
        }
#endif
        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        try
        {
            var count = await stream.ReadAsync(buffer, 0, buffer.Length).ConfigureAwait(false);
            if (Interlocked.CompareExchange(ref _state, Busy, Idle) != Idle)
            {
                return Step.Close; // a stop closed it meanwhile: the request goes unanswered, and unlogged
            }

            return count == 0 ? _session.Ended(scratch) : _session.Received(buffer.AsSpan(0, count), scratch);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task SendAsync(ByteBuffer output)
    {
        Volatile.Write(ref _blockedSince, Environment.TickCount | 1);
        await _stream!.WriteAsync(output.Array, 0, output.Length).ConfigureAwait(false);
        Volatile.Write(ref _blockedSince, 0);
        output.Clear();
    }

    /// <summary>After an error that ends the connection: stop sending, then read and discard what the peer
    /// is still sending for a moment, so closing does not reset the connection before the reply is read.</summary>
    private async Task DrainAsync()
    {
        _socket!.ShutdownSend();
        var sink = new byte[4096]; // not pooled: a read may still be pending when we give up
        var deadline = Environment.TickCount + (int)Drain.Time.TotalMilliseconds;
        for (var discarded = 0; discarded < Drain.Limit;)
        {
            var remaining = deadline - Environment.TickCount;
            var read = _stream!.ReadAsync(sink, 0, sink.Length);
            if (remaining <= 0 || await Task.WhenAny(read, Task.Delay(remaining)).ConfigureAwait(false) != read)
            {
                _ = read.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted); // fails when closed below
                return;
            }

            var count = await read.ConfigureAwait(false);
            if (count == 0)
            {
                return;
            }

            discarded += count;
        }
    }

    private void CloseSocket()
    {
        var stream = Interlocked.Exchange(ref _stream, null);
        var socket = Interlocked.Exchange(ref _socket, null);
        try
        {
            stream?.Dispose();
        }
        catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
        {
            // A TLS stream's close_notify could not be sent: the peer is gone already.
        }

        socket?.Dispose();
        Volatile.Write(ref _blockedSince, 0);
    }
}
