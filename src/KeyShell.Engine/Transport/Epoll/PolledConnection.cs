using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// The event-loop driver: runs one session over a raw, non-blocking socket on a loop's thread, for
/// every role. It reads into the loop's buffer, lets the session answer into the loop's scratch buffers,
/// and sends at once; only what the socket cannot take yet is copied and kept, and no more is read until
/// it has gone, so a peer that does not read cannot make it buffer without end. Other threads end a
/// connection with shutdown(2) (<see cref="Abort"/>), which the loop sees as an event, or by posting to
/// the loop; only the loop's thread closes the descriptor.
/// </summary>
internal sealed partial class PolledConnection : IPollable, IConnection
{
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromMilliseconds(10);

    private readonly EventLoop _loop;
    private readonly ISession _session;
    private readonly IPEndPoint? _remote; // where client roles (re)connect; null for an accepted connection
    private SocketDescriptor? _socket;
    private ulong _token;
    private bool _registered;
    private State _state;
    private Interest _interest;
    private ByteBuffer? _unsent;
    private Step _afterSend;
    private bool _peerEnded;
    private bool _ended;
    private int _drained;
    private int _abortRequested;
    private int _closeWhenIdle;
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
            connection._state = State.Open;
            connection.Apply(session.Opened(connection, loop.Scratch));
        }
        catch (Exception e)
        {
            connection.Fail(e); // the kernel refused the registration (out of memory): this connection only
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

    public void CloseWhenIdle()
    {
        Interlocked.Exchange(ref _closeWhenIdle, 1); // sticky: a busy connection closes when it is idle again
        _loop.Post(() =>
        {
            if (_state == State.Open)
            {
                Do(Step.Close);
            }
        });
    }

    public void CloseIfIdle(Func<bool> stillIdle, Action closing) => _loop.Post(() =>
    {
        if (_state == State.Open && stillIdle())
        {
            closing();
            Do(Step.Close);
        }
    });

    public void OnReady()
    {
        try
        {
            if (Volatile.Read(ref _abortRequested) == 1 && _state is not (State.Closed or State.Handling))
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
                        Fail(new ConnectFailedException(Libc.ToException(-error)));
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
                    // Registered for nothing while the handler runs, so only a hang-up wakes us. Level-triggered,
                    // it would wake us again at once: stop watching, and let the handler's return close it.
                    _peerEnded = true;
                    Unwatch();
                    break;
            }
        }
        catch (Exception e)
        {
            Fail(e); // the session's own code failed, or the kernel refused a registration: this connection only
        }
    }

    public void OnLoopEnded(Exception? error)
    {
        _registered = false; // the loop has let go of every registration
        End(error ?? new ObjectDisposedException("The event loop has stopped."));
    }

    private void StartConnecting()
    {
        Interlocked.Exchange(ref _abortRequested, 0);
        if (_loop.HasEnded)
        {
            End(new ObjectDisposedException("The event loop has stopped."));
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
            Fail(new ConnectFailedException(e));
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

        _registered = true;
        _interest = interest;
        _peerEnded = false;
        Interlocked.Exchange(ref _socket, socket);
        if (Volatile.Read(ref _abortRequested) == 1)
        {
            socket.Shutdown(); // aborted while there was no socket to shut down: the loop sees it now
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
        if (output.Length > 0 && _socket is { } socket)
        {
            var sent = Libc.SendUntilFull(socket.Value, output.Span);
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
                Volatile.Write(ref _blockedSince, Environment.TickCount | 1);
                Watch(Interest.Write);
                return;
            }
        }

        output.Clear();
        Do(step);
    }

    private void SendUnsent()
    {
        var sent = Libc.SendUntilFull(_socket!.Value, _unsent!.Span);
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
            Volatile.Write(ref _blockedSince, 0);
            Do(_afterSend);
        }
    }

    private void Do(Step step)
    {
        switch (step)
        {
            case Step.Receive when Volatile.Read(ref _closeWhenIdle) == 1:
                Do(Step.Close); // a stop asked for this connection's close while it was busy
                break;
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
                _loop.Schedule(Transport.Drain.Time, () =>
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
                End(null);
                break;
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
        if (received <= 0 || _drained >= Transport.Drain.Limit)
        {
            _peerEnded = received <= 0;
            Do(Step.Close);
        }
    }

    /// <summary>The connection failed: what the session wrote is dropped, and it decides what comes next.</summary>
    private void Fail(Exception error)
    {
        _loop.Scratch.Clear(); // never sent to this peer, never left for the next connection of this loop
        CloseSocket();
        if (_ended)
        {
            return;
        }

        Step next;
        try
        {
            next = _session.Failed(error);
        }
        catch (Exception e)
        {
            _loop.Report(e);
            next = Step.Close;
        }

        Do(next);
    }

    /// <summary>Ends the session for good, once: its socket closes and it hears <see cref="ISession.Closed"/>.</summary>
    private void End(Exception? error)
    {
        CloseSocket();
        if (_ended)
        {
            return;
        }

        _ended = true;
        try
        {
            if (error is not null)
            {
                _ = _session.Failed(error);
            }

            _session.Closed();
        }
        catch (Exception e)
        {
            _loop.Report(e);
        }
    }

    private void Watch(Interest interest)
    {
        if (interest != _interest && _registered)
        {
            _loop.Change(_socket!.Value, interest, _token);
            _interest = interest;
        }
    }

    private void Unwatch()
    {
        if (_registered)
        {
            _loop.Unregister(_socket!.Value, _token);
            _registered = false;
        }
    }

    private void CloseSocket()
    {
        var socket = Interlocked.Exchange(ref _socket, null);
        if (socket is not null)
        {
            if (_registered)
            {
                _loop.Unregister(socket.Value, _token);
                _registered = false;
            }

            socket.Close(shutdownFirst: !_peerEnded);
        }

        _state = State.Closed;
        _unsent?.Release();
        Volatile.Write(ref _blockedSince, 0);
    }
}
