using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
#if NET
using KeyShell.Engine.Linux;
#endif

namespace KeyShell.Engine.Server;

/// <summary>
/// Serving a connection from a Linux event loop: the loop's thread calls <c>OnReady</c> when the
/// socket is ready, and it reads once, answers and sends without waiting. Only that thread touches the
/// descriptor or closes the socket; other threads end a connection with shutdown(2), which the loop
/// then sees as an event. A reply the socket cannot take at once waits for EPOLLOUT, and no more is
/// read meanwhile, so a client that does not read its replies cannot make the server buffer without end.
/// The loop serves the raw descriptor: a .NET Socket is made only if the connection is handed to the
/// async path (a protocol error's drain), because its constructor costs eight system calls.
/// </summary>
#if NET
internal sealed partial class ServerConnection : IReadyHandler
#else
internal sealed partial class ServerConnection
#endif
{
#if NET
    private readonly SocketDescriptor? _descriptor; // null on the async path
    private volatile bool _leftEventLoop; // handed to the async path to drain, or closed
    private volatile bool _abortRequested;
    private EventLoop.Registration? _registration;
    private int _sendOffset;      // bytes of _output already sent while the socket was full
    private After _afterSend;     // what to do once a blocked reply is sent

    private enum After
    {
        Read,
        Close,
        DrainThenClose,
    }

    private enum Flush
    {
        Sent,
        Blocked,
        Failed,
    }

    /// <summary>A connection an event loop will serve (<see cref="StartOnEventLoop"/>), from accept4's results.</summary>
    public ServerConnection(KeyServer server, int descriptor, IPEndPoint? peer, long id)
        : this(server, id)
    {
        _descriptor = new SocketDescriptor(descriptor);
        Peer = peer;
    }

    /// <summary>The peer's address as accept4 gave it (event loop connections only).</summary>
    private IPEndPoint? Peer { get; }

    private bool HasPendingOutput => _sendOffset < _output.Length;

    /// <summary>Registers the connection with <paramref name="loop"/>; from now on its thread serves it.</summary>
    public void StartOnEventLoop(EventLoop loop)
    {
        // An Abort before this point only shut the socket down: the first event then closes it.
        _registration = loop.CreateRegistration(this, _descriptor!.Value);
        _registration.Start();
    }

    /// <summary>Called on the loop's thread when the socket is ready. Never throws.</summary>
    public void OnReady()
    {
        Volatile.Write(ref _busy, 1);
        try
        {
            if (_abortRequested || (_server.IsStopping && !HasPendingOutput))
            {
                CloseOnEventLoop();
            }
            else if (HasPendingOutput)
            {
                ContinueSending();
            }
            else
            {
                ReceiveAndAnswer();
            }
        }
        catch (Exception e)
        {
            _server.ReportError(this, e);
            CloseOnEventLoop();
        }
    }

    private void ReceiveAndAnswer()
    {
        _framer.Compact();
        var received = LinuxSockets.Receive(_registration!.Descriptor, _framer.ReceiveBuffer.AsSpan(_framer.ReceiveOffset, _framer.ReceiveCount));
        if (received == -LinuxSockets.EAGAIN)
        {
            Volatile.Write(ref _busy, 0); // woken for nothing (another reader took it, or a stale event)
            return;
        }

        if (received < 0 || (received == 0 && _framer.PendingCount == 0))
        {
            CloseOnEventLoop(peerEnded: true); // reset, or closed between requests
            return;
        }

        if (received == 0)
        {
            _framer.EndOfStream(); // half-closed after a request without terminator: answer it, then close
        }
        else
        {
            _framer.Commit(received);
        }

        var close = Answer();
        _sendOffset = 0;
        _afterSend = received == 0 ? After.Close : close ? After.DrainThenClose : After.Read;
        SendAnswers(); // Answer handed the log its lines first: a reply the client sees is always logged
    }

    /// <summary>Sends the replies of the last read. Never throws.</summary>
    private void SendAnswers()
    {
        try
        {
            switch (SendOutput())
            {
                case Flush.Blocked:
                    _registration!.WaitForWrites();
                    break;
                case Flush.Failed:
                    CloseOnEventLoop(peerEnded: true);
                    break;
                default:
                    Continue(_afterSend);
                    break;
            }
        }
        catch (Exception e)
        {
            _server.ReportError(this, e);
            CloseOnEventLoop();
        }
    }

    private void ContinueSending()
    {
        switch (SendOutput())
        {
            case Flush.Blocked:
                break; // still full: the next EPOLLOUT brings us back
            case Flush.Failed:
                CloseOnEventLoop(peerEnded: true);
                break;
            default:
                _registration!.WaitForReads();
                Continue(_afterSend);
                break;
        }
    }

    private Flush SendOutput()
    {
        while (_sendOffset < _output.Length)
        {
            var sent = LinuxSockets.Send(_registration!.Descriptor, _output.Array.AsSpan(_sendOffset, _output.Length - _sendOffset));
            if (sent == -LinuxSockets.EAGAIN)
            {
                return Flush.Blocked;
            }

            if (sent < 0)
            {
                return Flush.Failed; // the peer is gone (EPIPE, ECONNRESET)
            }

            _sendOffset += sent;
        }

        _output.Clear();
        _sendOffset = 0;
        return Flush.Sent;
    }

    private void Continue(After after)
    {
        switch (after)
        {
            case After.Read when _server.IsStopping:
                CloseOnEventLoop(); // a stop waits for busy connections: this one is done
                break;
            case After.Read:
                Volatile.Write(ref _busy, 0);
                break;
            case After.Close:
                CloseOnEventLoop(peerEnded: true); // it half-closed after its last request
                break;
            default:
                // Rare (a protocol error ends the connection): the async path's drain does the rest.
                LeaveEventLoop(toAsyncPath: true);
                _ = DrainThenCloseAsync();
                break;
        }
    }

    private async Task DrainThenCloseAsync()
    {
        try
        {
            await DrainAndCloseAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            // Reset by the peer, or aborted by a stop.
        }
        finally
        {
            Close();
        }
    }

    /// <summary>Closes on the loop's thread, or on the stopping thread once the loops have ended.</summary>
    /// <param name="peerEnded">
    /// The peer closed or reset the connection: close(2) alone ends it, no shutdown(2) first (a system call
    /// less per connection, on the connection-per-message path).
    /// </param>
    internal void CloseOnEventLoop(bool peerEnded = false)
    {
        LeaveEventLoop();
        Close(shutdownFirst: !peerEnded);
    }

    private void LeaveEventLoop(bool toAsyncPath = false)
    {
        _registration?.Unregister();
        if (toAsyncPath)
        {
            // The Socket first, then the hand-over: an abort in between still finds one of the two.
            _socket = new Socket(new SafeSocketHandle((IntPtr)_descriptor!.Value, ownsHandle: true));
            _descriptor.HandOver();
        }

        _leftEventLoop = true;
    }

    /// <summary>Closes the raw descriptor, once, never while another thread shuts it down.</summary>
    private void CloseDescriptor(bool shutdownFirst) => _descriptor?.Close(shutdownFirst);

    private bool AbortOnEventLoop()
    {
        _abortRequested = true;
        if (_descriptor is null || _leftEventLoop)
        {
            return false;
        }

        // The loop sees the hang-up and closes on its own thread. A shutdown of the raw descriptor does
        // nothing once it was handed to a Socket for the drain, and that Socket is set by then.
        _descriptor.Shutdown();
        if (_socket is { } handedOff)
        {
            try
            {
                handedOff.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Already closed.
            }
        }

        return true;
    }
#else
    private static System.Net.IPEndPoint? Peer => null; // event loops exist only in the .NET 8 build

    private bool AbortOnEventLoop() => false;

    private void CloseDescriptor(bool shutdownFirst)
    {
    }
#endif
}
