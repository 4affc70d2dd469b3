using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// A non-blocking connect on an event loop: the socket is watched for writing until the handshake ends,
/// then it and its registration pass to a <see cref="PolledConnection"/> running the session (no system call
/// for the hand-over).
/// Abortable from any thread while it runs, like a connection.
/// </summary>
internal sealed class PolledDial : IPollable, IConnection
{
    private readonly EventLoop _loop;
    private readonly IPEndPoint _remote;
    private readonly ISession _session;
    private readonly IDialOwner _owner;
    private SocketDescriptor? _socket;
    private ulong _token;
    private int _abortRequested;
    private bool _done;

    private PolledDial(EventLoop loop, IPEndPoint remote, ISession session, IDialOwner owner)
    {
        _loop = loop;
        _remote = remote;
        _session = session;
        _owner = owner;
    }

    public int BlockedSince => 0;

    /// <summary>Connects to <paramref name="remote"/> on <paramref name="loop"/>'s thread, then runs
    /// <paramref name="session"/> on the connection; <paramref name="owner"/> hears how it went, there.</summary>
    public static PolledDial Start(EventLoop loop, IPEndPoint remote, ISession session, IDialOwner owner)
    {
        var dial = new PolledDial(loop, remote, session, owner);
        loop.Post(dial.Connect);
        return dial;
    }

    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        Volatile.Read(ref _socket)?.Shutdown(); // the loop sees the hang-up
    }

    public void CloseWhenIdle() => Abort();

    public bool TryClaimIdle() => false;

    public void CloseClaimed()
    {
    }

    public void OnReady()
    {
        if (_done)
        {
            return;
        }

        var error = Volatile.Read(ref _abortRequested) == 1 ? -(int)SocketError.OperationAborted : Libc.PendingError(_socket!.Value);
        if (error < 0)
        {
            Fail(Volatile.Read(ref _abortRequested) == 1 ? new SocketException((int)SocketError.OperationAborted) : Libc.ToException(-error));
            return;
        }

        _done = true;
        _owner.Connected(PolledConnection.Adopt(_loop, _socket!, _token, _session, _owner));
    }

    public void OnLoopEnded(Exception? error) => Fail(error ?? new ObjectDisposedException("The event loop has stopped."), registered: false);

    private void Connect()
    {
        if (_loop.HasEnded)
        {
            Fail(new ObjectDisposedException("The event loop has stopped."), registered: false);
            return;
        }

        var result = Libc.Connect(_remote, out var descriptor);
        if (descriptor < 0)
        {
            Fail(Libc.ToException(-result), registered: false);
            return;
        }

        var socket = new SocketDescriptor(descriptor);
        try
        {
            _token = _loop.Register(descriptor, Interest.Write, this); // writable once connected, or failed
        }
        catch (Exception e)
        {
            socket.Close(shutdownFirst: false);
            Fail(e, registered: false);
            return;
        }

        Interlocked.Exchange(ref _socket, socket);
        if (Volatile.Read(ref _abortRequested) == 1)
        {
            socket.Shutdown(); // aborted before there was a socket to shut down: the loop sees it now
        }
    }

    private void Fail(Exception error, bool registered = true)
    {
        if (_done)
        {
            return;
        }

        _done = true;
        if (Interlocked.Exchange(ref _socket, null) is { } socket)
        {
            if (registered)
            {
                _loop.Unregister(socket.Value, _token);
            }

            socket.Close(shutdownFirst: false);
        }

        _owner.DialFailed(error);
    }
}
