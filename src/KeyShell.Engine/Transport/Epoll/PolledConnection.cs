using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// The event-loop driver: runs a session over one raw, non-blocking socket on a loop's thread, whatever
/// the session's role. It reads into the loop's buffer, lets the session answer into the loop's scratch
/// buffers, and sends at once; only what the socket cannot take yet is copied and kept, and no more is
/// read until it has gone, so a peer that does not read cannot make it buffer without end. Other threads
/// end a connection with shutdown(2) (<see cref="Abort"/>), which the loop sees as an event, or by posting
/// to the loop; only the loop's thread closes the descriptor. When the connection is over, the owner that
/// started it hears the last step.
/// </summary>
internal sealed partial class PolledConnection : IPollable, IConnection, IDeferredSend
{
    private const int Busy = 0;
    private const int Waiting = 1; // for the peer's next bytes: an idle close may claim it
    private const int Claimed = 2;

    private readonly EventLoop _loop;
    private readonly ISession _session;
    private readonly IConnectionOwner _owner;
    private SocketDescriptor? _socket;
    private ulong _token;
    private bool _registered;
    private State _state;
    private Interest _interest;
    private Task<Step>? _handled; // the session's asynchronous work, while the connection waits for it
    private Scratch? _handlerScratch; // its buffers, kept between waits (their arrays go back to the pool after each)
    private Action? _resume, _posted;
    private ByteBuffer? _unsent;
    private Step _afterSend;
    private bool _peerEnded;
    private bool _ended;
    private int _drained;
    private int _phase;
    private int _abortRequested;
    private int _closeWhenIdle;
    private int _blockedSince;
    private Action? _wake;
    private Action? _abortWait;

    private PolledConnection(EventLoop loop, ISession session, IConnectionOwner owner)
    {
        _loop = loop;
        _session = session;
        _owner = owner;
    }

    private enum State
    {
        Closed,
        Open,
        Sending,
        Handling,
        Sleeping,
        Draining,
    }

    public int BlockedSince => Volatile.Read(ref _blockedSince);

    /// <summary>Serves an accepted descriptor; on the loop's thread. A request that came with the connect
    /// is answered at once, without waiting for another event.</summary>
    public static void Accept(EventLoop loop, int descriptor, ISession session, IConnectionOwner owner)
    {
        var connection = new PolledConnection(loop, session, owner);
        try
        {
            connection.Register(new SocketDescriptor(descriptor), Interest.Read);
        }
        catch (Exception e)
        {
            connection.Fail(e); // the kernel refused the registration (out of memory): this connection only
            return;
        }

        connection.Start();
        if (connection._state == State.Open)
        {
            connection.OnReady();
        }
    }

    /// <summary>Takes over a connected socket and its registration (watched for writing) from its dial; on
    /// the loop's thread.</summary>
    public static PolledConnection Adopt(EventLoop loop, SocketDescriptor socket, ulong token, ISession session, IConnectionOwner owner)
    {
        var connection = new PolledConnection(loop, session, owner)
        {
            _socket = socket,
            _token = token,
            _registered = true,
            _interest = Interest.Write,
        };
        loop.Rebind(token, connection);
        connection.Start();
        return connection;
    }

    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        Volatile.Read(ref _socket)?.Shutdown(); // the loop sees the hang-up
        _loop.Post(_abortWait ??= AbortWait);
    }

    public void CloseWhenIdle()
    {
        Interlocked.Exchange(ref _closeWhenIdle, 1); // sticky: a busy connection closes when it is idle again
        if (TryClaimIdle())
        {
            CloseClaimed();
        }
    }

    public bool TryClaimIdle() => Interlocked.CompareExchange(ref _phase, Claimed, Waiting) == Waiting;

    public void CloseClaimed() => _loop.Post(() =>
    {
        if (_state == State.Open)
        {
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
                case State.Open:
                    if (Interlocked.CompareExchange(ref _phase, Busy, Waiting) != Waiting)
                    {
                        Do(Step.Close); // claimed by an idle close: its bytes are not read
                        return;
                    }

                    Receive();
                    break;
                case State.Sending:
                    _ = SendUnsent();
                    break;
                case State.Draining:
                    Drain();
                    break;
                case State.Handling:
                case State.Sleeping:
                    if (_interest != Interest.None)
                    {
                        // The peer sent more (or left) during the wait: nothing is read until it ends, so watch for
                        // nothing, or level-triggered epoll would report the same bytes on every wait.
                        Watch(Interest.None);
                        break;
                    }

                    // Registered for nothing, so only a hang-up wakes us. Level-triggered, it would wake us again
                    // at once: stop watching, and let the end of the wait close it.
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
        if (_ended)
        {
            return;
        }

        CloseSocket();
        try
        {
            _ = _session.Failed(error ?? new ObjectDisposedException("The event loop has stopped."));
        }
        catch (Exception e)
        {
            _loop.Report(e);
        }

        End(Step.Close); // no new connection on a loop that has ended
    }

    private void Register(SocketDescriptor socket, Interest interest)
    {
        try
        {
            _token = _loop.Register(socket.Value, interest, this);
        }
        catch
        {
            socket.Close(shutdownFirst: false);
            throw;
        }

        _registered = true;
        _interest = interest;
        Interlocked.Exchange(ref _socket, socket);
    }

    private void Start()
    {
        try
        {
            _state = State.Open;
            Apply(_session.Opened(this, _loop.Scratch));
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Receive()
    {
        var received = Libc.Receive(_socket!.Value, _loop.ReceiveBuffer);
        if (received == -Libc.EAGAIN)
        {
            WaitForPeer(); // woken for nothing (a stale event): still waiting, unless a stop asked meanwhile
            return;
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
        if (output.Length > 0 && step != Step.Reset && _socket is { } socket)
        {
            if (_loop.LogPending)
            {
                // The lines of this reply are not in the file yet: it leaves at the end of the pass, after them.
                (_unsent ??= new ByteBuffer(0)).Write(output.Span);
                output.Clear();
                _afterSend = step;
                _state = State.Sending;
                _loop.SendAfterLog(this);
                return;
            }

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

    /// <summary>The end of the pass: the reply whose lines are now in the file goes out.</summary>
    public void SendDeferred()
    {
        if (_state != State.Sending || _socket is null)
        {
            return; // failed or closed meanwhile
        }

        try
        {
            if (!SendUnsent())
            {
                // The socket did not take it all: the rest goes when it is writable, as for any reply.
                Volatile.Write(ref _blockedSince, Environment.TickCount | 1);
                Watch(Interest.Write);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    /// <summary>Sends what is left; false when the socket could not take it all (it still waits).</summary>
    private bool SendUnsent()
    {
        var sent = Libc.SendUntilFull(_socket!.Value, _unsent!.Span);
        if (sent < 0)
        {
            _peerEnded = true;
            Fail(Libc.ToException(-sent));
            return true;
        }

        _unsent.Consume(sent);
        if (_unsent.Length > 0)
        {
            return false;
        }

        _unsent.Release();
        Volatile.Write(ref _blockedSince, 0);
        Do(_afterSend);
        return true;
    }

    private void Do(Step step)
    {
        switch (step)
        {
            case Step.Receive:
                WaitForPeer();
                break;
            case Step.Handle:
                Handle();
                break;
            case Step.Sleep:
                Sleep();
                break;
            case Step.DrainThenClose:
                _loop.WriteLogNow(); // a FIN the peer may see before the end of the pass: its lines go first
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
            case Step.Reset:
                _loop.WriteLogNow(); // likewise for a reset
                CloseSocket(reset: true);
                End(Step.Close);
                break;
            default:
                End(step); // Close, or a client's Reconnect: its connector opens the next connection
                break;
        }
    }

    /// <summary>Back to waiting for the peer, unless a stop asked for this connection's close meanwhile.</summary>
    private void WaitForPeer()
    {
        _state = State.Open;
        Interlocked.Exchange(ref _phase, Waiting); // a full fence: CloseWhenIdle sees Waiting, or this sees its flag
        if (Volatile.Read(ref _closeWhenIdle) == 1 && Interlocked.CompareExchange(ref _phase, Busy, Waiting) == Waiting)
        {
            Do(Step.Close);
            return;
        }

        Watch(Interest.Read);
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

        End(next is Step.Reconnect or Step.ReconnectSoon ? next : Step.Close);
    }

    /// <summary>The connection is over, once: its socket closes and its owner hears the last step.</summary>
    private void End(Step last)
    {
        CloseSocket();
        if (_ended)
        {
            return;
        }

        _ended = true;
        try
        {
            _owner.ConnectionEnded(last);
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

    private void CloseSocket(bool reset = false)
    {
        var socket = Interlocked.Exchange(ref _socket, null);
        if (socket is not null)
        {
            if (_registered)
            {
                _loop.Unregister(socket.Value, _token);
                _registered = false;
            }

            socket.Close(shutdownFirst: !_peerEnded, reset);
        }

        _state = State.Closed;
        _unsent?.Release();
        Volatile.Write(ref _blockedSince, 0);
    }
}
