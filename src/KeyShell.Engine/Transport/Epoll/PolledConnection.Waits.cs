using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// The two waits a session can ask for, during which nothing is read: its asynchronous work (a request
/// handler, off the loop) and a sleep (a loop timer). The socket keeps what it was watched for until an
/// event comes during the wait (most waits see none, and a reply after them finds the socket watched for
/// the next request already, with no system call either way); from that event on it is registered for
/// nothing, so that only a hang-up still reaches the loop.
/// </summary>
internal sealed partial class PolledConnection
{
    private void Handle()
    {
        _state = State.Handling;
        var scratch = _handlerScratch ??= new Scratch(); // the loop's own buffers serve its other connections meanwhile
        var work = _session.HandleAsync(scratch);
        _handled = work;
        _resume ??= ResumeHandled;
        if (work.IsCompleted)
        {
            _loop.Post(_resume); // on the loop's thread, after this event, as a reply that comes later
            return;
        }

        // The awaiter holds the one cached delegate: nothing is made per request. It runs where the work ends:
        // on this loop's thread (an upstream's reply read here), or on the handler's, which hands it over.
        work.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_posted ??= () => _loop.Post(_resume));
    }

    private void ResumeHandled()
    {
        var done = _handled!;
        _handled = null;
        Resume(done, _handlerScratch!);
    }

    private void Resume(Task<Step> done, Scratch scratch)
    {
        try
        {
            if (_state != State.Handling)
            {
                return; // the loop ended meanwhile and closed the connection
            }

            if (_loop.HasEnded || _peerEnded || Volatile.Read(ref _abortRequested) == 1 || done.IsFaulted || done.IsCanceled)
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
            if (_handled is null)
            {
                scratch.Release(); // not when the reply led straight into the next wait, which writes into it now
            }
        }
    }

    /// <summary>An abort ends a wait at once, also one whose socket the loop no longer watches (its peer
    /// left meanwhile): the handler's reply, when it comes, finds the connection closed.</summary>
    private void AbortWait()
    {
        if (_state is State.Handling or State.Sleeping)
        {
            Fail(new SocketException((int)SocketError.OperationAborted));
        }
    }

    private void Sleep()
    {
        _state = State.Sleeping;
        _wake ??= Wake;
        WakeOrWait();
    }

    /// <summary>Wakes the session once its time has come; a loop timer, in whole milliseconds, may come a
    /// little early or be left from an earlier sleep, so each one looks at the clock.</summary>
    private void Wake()
    {
        if (_state != State.Sleeping)
        {
            return; // closed meanwhile, or a timer left from an earlier sleep
        }

        try
        {
            WakeOrWait();
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void WakeOrWait()
    {
        if (_loop.HasEnded)
        {
            // The loop runs its last timers as it ends: waiting again would have it run this one again, at once.
            Fail(new ObjectDisposedException("The event loop has stopped."));
            return;
        }

        var remaining = _session.WakeAt - Stopwatch.GetTimestamp();
        if (remaining > 0)
        {
            _loop.Schedule(TimeSpan.FromMilliseconds(Math.Ceiling(remaining * 1000.0 / Stopwatch.Frequency)), _wake!);
            return;
        }

        if (_peerEnded)
        {
            Fail(new SocketException((int)SocketError.ConnectionReset)); // the peer left while the session slept
            return;
        }

        _state = State.Open;
        Apply(_session.Woken(_loop.Scratch));
    }
}
