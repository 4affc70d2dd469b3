using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// The event-loop driver: runs one session over a raw, non-blocking socket on a loop's thread, for
/// every role. It reads into the loop's buffer, lets the session answer into the loop's scratch buffers,
/// and sends at once; only what the socket cannot take yet is copied and kept, and no more is read until
/// it has gone, so a peer that does not read cannot make it buffer without end. Other threads end a
/// connection with shutdown(2) (<see cref="Abort"/>), which the loop sees as an event, or by posting to
/// the loop (<see cref="CloseWhenIdle"/>); only the loop's thread closes the descriptor.
/// </summary>
internal sealed class PolledConnection : IPollable, IConnection
{
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromMilliseconds(10);
    private const int DrainLimit = 4 * 1024 * 1024;

    private readonly EventLoop _loop;
    private readonly ISession _session;
    private readonly IPEndPoint? _remote; // where client roles (re)connect; null for an accepted connection
    private SocketDescriptor? _socket;
    private ulong _token;
    private State _state;
    private Interest _interest;
    private ByteBuffer? _unsent;
    private Step _afterSend;
    private bool _peerEnded;
    private int _drained;
    private int _abortRequested;
    private int _blockedSince;

    private PolledConnection(EventLoop loop, ISession session, IPEndPoint? remote)
    {
        _loop = loop;
        _session = session;
        _remote = remote;
    }

    private enum State
    {
        Closed,
        Connecting,
        Open,
        Sending,
        Handling,
        Draining,
    }

    public int BlockedSince => Volatile.Read(ref _blockedSince);

    /// <summary>Serves an accepted descriptor; on the loop's thread. A request that came with the connect
    /// is answered at once, without waiting for another event.</summary>
    public static void Accept(EventLoop loop, ISession session, int descriptor)
    {
        var connection = new PolledConnection(loop, session, null);
        try
        {
            connection.Open(descriptor, Interest.Read);
        }
        catch (Exception e)
        {
            connection.Finish(e); // the kernel refused the registration (out of memory): this connection only
            return;
        }

        if (connection._state == State.Open)
        {
            connection.OnReady();
        }
    }

    /// <summary>Runs a client session: connects to <paramref name="remote"/> on the loop's thread.</summary>
    public static void Connect(EventLoop loop, ISession session, IPEndPoint remote) =>
        loop.Post(new PolledConnection(loop, session, remote).StartConnecting);

    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        Volatile.Read(ref _socket)?.Shutdown(); // the loop sees the hang-up; with no socket, the next one sees the flag
    }

    public void CloseWhenIdle(Action? closing = null) => _loop.Post(() =>
    {
        if (_state == State.Open)
        {
            closing?.Invoke();
            Do(Step.Close);
        }
    });

    public void OnReady()
    {
        try
        {
            if (Volatile.Read(ref _abortRequested) == 1 && _state != State.Closed)
            {
                Fail(new SocketException((int)SocketError.OperationAborted));
                return;
            }

            switch (_state)
            {
                case State.Connecting:
                    var error = Libc.PendingError(_socket!.Value);
                    if (error < 0)
                    {
                        CloseSocket();
                        Apply(_session.Failed(new ConnectFailedException(Libc.ToException(-error))));
                        return;
                    }

                    _state = State.Open;
                    Apply(_session.Opened(this, _loop.Scratch));
                    break;
                case State.Open:
                    Receive();
                    break;
                case State.Sending:
                    SendUnsent();
                    break;
                case State.Draining:
                    Drain();
                    break;
                case State.Handling:
                    // Registered for nothing while the handler runs: only a hang-up or error wakes us.
                    _peerEnded = true;
                    Fail(new SocketException((int)SocketError.ConnectionReset));
                    break;
            }
        }
        catch (Exception e)
        {
            // The session's own code failed (or the kernel refused a registration): this connection only.
            Fail(e);
        }
    }

    public void OnLoopEnded(Exception? error) => Finish(error ?? new ObjectDisposedException("The event loop has stopped."));

    private void StartConnecting()
    {
        Interlocked.Exchange(ref _abortRequested, 0);
        if (_loop.HasEnded)
        {
            Finish(new ObjectDisposedException("The event loop has stopped."));
            return;
        }

        var result = Libc.Connect(_remote!, out var descriptor);
        if (descriptor < 0)
        {
            Apply(_session.Failed(new ConnectFailedException(Libc.ToException(-result))));
            return;
        }

        try
        {
            Open(descriptor, Interest.Write); // writable once connected, or failed
            _state = State.Connecting;
        }
        catch (Exception e)
        {
            Apply(_session.Failed(new ConnectFailedException(e)));
        }
    }

    private void Open(int descriptor, Interest interest)
    {
        var socket = new SocketDescriptor(descriptor);
        try
        {
            _token = _loop.Register(descriptor, interest, this);
        }
        catch
        {
            socket.Close(shutdownFirst: false);
            throw;
        }

        _interest = interest;
        _peerEnded = false;
        Interlocked.Exchange(ref _socket, socket);
        _state = State.Open;
        if (_remote is null)
        {
            Apply(_session.Opened(this, _loop.Scratch));
        }
    }

    private void Receive()
    {
        var received = Libc.Receive(_socket!.Value, _loop.ReceiveBuffer);
        if (received == -Libc.EAGAIN)
        {
            return; // woken for nothing (another reader took it, or a stale event)
        }

        if (received < 0)
        {
            _peerEnded = true;
            Fail(Libc.ToException(-received));
            return;
        }

        if (received == 0)
        {
            _peerEnded = true;
            Apply(_session.Ended(_loop.Scratch));
            return;
        }

        Apply(_session.Received(_loop.ReceiveBuffer.AsSpan(0, received), _loop.Scratch));
    }

    /// <summary>Sends what the session wrote into <paramref name="output"/>, then does <paramref name="step"/>
    /// (at once, or once the socket has taken the rest).</summary>
    private void Apply(Step step, ByteBuffer? output = null)
    {
        output ??= _loop.Scratch.Output;
        if (output.Length > 0 && _socket is { } socket && _state != State.Closed)
        {
            var sent = SendSome(socket.Value, output.Span);
            if (sent < 0)
            {
                output.Clear();
                _peerEnded = true;
                Fail(Libc.ToException(-sent));
                return;
            }

            if (sent < output.Length)
            {
                (_unsent ??= new ByteBuffer(0)).Write(output.Span.Slice(sent));
                output.Clear();
                _afterSend = step;
                _state = State.Sending;
                Interlocked.Exchange(ref _blockedSince, Environment.TickCount | 1);
                Watch(Interest.Write);
                return;
            }
        }

        output.Clear();
        Do(step);
    }

    private void SendUnsent()
    {
        var sent = SendSome(_socket!.Value, _unsent!.Span);
        if (sent < 0)
        {
            _peerEnded = true;
            Fail(Libc.ToException(-sent));
            return;
        }

        _unsent.Consume(sent);
        if (_unsent.Length == 0)
        {
            _unsent.Release();
            Interlocked.Exchange(ref _blockedSince, 0);
            Do(_afterSend);
        }
    }

    /// <summary>Sends until done or the socket is full: the bytes taken, or a negative errno.</summary>
    private static int SendSome(int descriptor, ReadOnlySpan<byte> bytes)
    {
        var total = 0;
        while (total < bytes.Length)
        {
            var sent = Libc.Send(descriptor, bytes.Slice(total));
            if (sent == -Libc.EAGAIN)
            {
                break;
            }

            if (sent < 0)
            {
                return sent;
            }

            total += sent;
        }

        return total;
    }

    private void Do(Step step)
    {
        switch (step)
        {
            case Step.Receive:
                _state = State.Open;
                Watch(Interest.Read);
                break;
            case Step.Handle:
                Handle();
                break;
            case Step.DrainThenClose:
                _socket!.Shutdown(SocketShutdown.Send);
                _state = State.Draining;
                _drained = 0;
                Watch(Interest.Read);
                _loop.Schedule(DrainTime, () =>
                {
                    if (_state == State.Draining)
                    {
                        Do(Step.Close);
                    }
                });
                break;
            case Step.Reconnect when _remote is not null:
                CloseSocket();
                StartConnecting();
                break;
            case Step.ReconnectSoon when _remote is not null:
                CloseSocket();
                _loop.Schedule(ReconnectPause, StartConnecting);
                break;
            default:
                CloseSocket();
                _session.Closed();
                break;
        }
    }

    /// <summary>Runs the session's asynchronous work (a request handler) off the loop, then resumes here.
    /// The socket stays registered for nothing, so a hang-up meanwhile still reaches the loop.</summary>
    private void Handle()
    {
        _state = State.Handling;
        Watch(Interest.None);
        var scratch = new Scratch(); // the loop's own buffers serve its other connections meanwhile
        _session.HandleAsync(scratch).ContinueWith(
            done => _loop.Post(() => Resume(done, scratch)),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void Resume(Task<Step> done, Scratch scratch)
    {
        try
        {
            if (_state != State.Handling)
            {
                return; // closed meanwhile (aborted, or the peer hung up): the replies have nowhere to go
            }

            if (Volatile.Read(ref _abortRequested) == 1 || done.IsFaulted || done.IsCanceled)
            {
                Fail(done.Exception?.InnerException ?? new SocketException((int)SocketError.OperationAborted));
                return;
            }

            _state = State.Open;
            Apply(done.Result, scratch.Output);
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            scratch.Release();
        }
    }

    private void Drain()
    {
        var received = Libc.Receive(_socket!.Value, _loop.ReceiveBuffer);
        if (received == -Libc.EAGAIN)
        {
            return;
        }

        _drained += Math.Max(0, received);
        if (received <= 0 || _drained >= DrainLimit)
        {
            _peerEnded = received <= 0;
            Do(Step.Close);
        }
    }

    private void Fail(Exception error)
    {
        CloseSocket();
        Do(_session.Failed(error));
    }

    /// <summary>Ends the session for good: the loop has stopped.</summary>
    private void Finish(Exception error)
    {
        CloseSocket();
        try
        {
            _ = _session.Failed(error);
        }
        finally
        {
            _session.Closed();
        }
    }

    private void Watch(Interest interest)
    {
        if (interest != _interest && _socket is { } socket)
        {
            _loop.Change(socket.Value, interest, _token);
            _interest = interest;
        }
    }

    private void CloseSocket()
    {
        var socket = Interlocked.Exchange(ref _socket, null);
        if (socket is not null)
        {
            _loop.Unregister(socket.Value, _token);
            socket.Close(shutdownFirst: !_peerEnded);
        }

        _state = State.Closed;
        _unsent?.Release();
        Interlocked.Exchange(ref _blockedSince, 0);
    }
}
