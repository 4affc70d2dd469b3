using System;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Server;

/// <summary>
/// A listener as one event loop watches it; its state belongs to that loop's thread. Out of descriptors,
/// the loop stops watching for 10 ms, on a loop timer (a pending connection it cannot accept would
/// otherwise be reported again at once, in a busy loop); a stop meanwhile is final: the listener is
/// never watched again, so the number, closed and perhaps reused by then, is never touched.
/// </summary>
internal sealed class EventLoopListener : IPollable
{
    private const int AcceptsPerWakeUp = 32; // so a burst of connects cannot starve the loop's connections
    private static readonly TimeSpan ShortagePause = TimeSpan.FromMilliseconds(10);

    private readonly EventLoop _loop;
    private readonly int _descriptor;
    private readonly Action<EventLoop, int, IPEndPoint?> _serve;
    private readonly Action<SocketException> _reportFailure;
    private readonly TaskCompletionSource<bool> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ulong _token;
    private bool _watching;
    private bool _stopping;

    /// <param name="loop">The loop that watches the listener and serves what it accepts.</param>
    /// <param name="descriptor">The listening socket (non-blocking), shared by every loop of the server.</param>
    /// <param name="serve">Takes each accepted descriptor and its peer, on the loop's thread.</param>
    /// <param name="reportFailure">Hears of accepts that failed for lack of descriptors or memory.</param>
    public EventLoopListener(EventLoop loop, int descriptor, Action<EventLoop, int, IPEndPoint?> serve, Action<SocketException> reportFailure)
    {
        _loop = loop;
        _descriptor = descriptor;
        _serve = serve;
        _reportFailure = reportFailure;
    }

    public EventLoop Loop => _loop;

    /// <summary>Starts (or resumes) watching the listener; on the loop's thread.</summary>
    public void Listen()
    {
        if (_stopping || _watching)
        {
            return;
        }

        try
        {
            _token = _loop.Register(_descriptor, Interest.Read | Interest.Exclusive, this);
            _watching = true;
        }
        catch (SocketException e)
        {
            _reportFailure(e); // out of memory: try again after a pause
            _loop.Schedule(ShortagePause, Listen);
        }
    }

    /// <summary>Stops watching for good; completes once the loop has let go of the listener.</summary>
    public Task StopAsync()
    {
        _loop.Post(() =>
        {
            _stopping = true;
            StopWatching();
            _stopped.TrySetResult(true);
        });
        return _stopped.Task;
    }

    public void OnReady()
    {
        for (var i = 0; i < AcceptsPerWakeUp && !_stopping; i++)
        {
            var descriptor = Libc.Accept(_descriptor, out var peer);
            if (descriptor == -Libc.EAGAIN)
            {
                return; // none left, or another loop took it
            }

            if (descriptor < 0)
            {
                if (descriptor is -Libc.EMFILE or -Libc.ENFILE or -Libc.ENOBUFS or -Libc.ENOMEM)
                {
                    // Out of descriptors or memory: keep serving, try accepting again shortly.
                    _reportFailure(Libc.ToException(-descriptor, "accept4"));
                    PauseForShortage();
                    return;
                }

                continue; // reset before it was accepted (ECONNABORTED)
            }

            _serve(_loop, descriptor, peer);
        }
    }

    public void OnLoopEnded(Exception? error) => _watching = false;

    /// <summary>Stops watching for a moment; on the loop's thread.</summary>
    internal void PauseForShortage()
    {
        StopWatching();
        _loop.Schedule(ShortagePause, Listen);
    }

    private void StopWatching()
    {
        if (_watching)
        {
            _loop.Unregister(_descriptor, _token);
            _watching = false;
        }
    }
}
