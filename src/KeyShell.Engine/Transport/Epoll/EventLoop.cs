using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>What sends once the log lines of the loop's pass are in their files (see <see cref="EventLoop.SendAfterLog"/>).</summary>
internal interface IDeferredSend
{
    /// <summary>The pass's log lines are written: send what waited for them. On the loop's thread.</summary>
    void SendDeferred();
}

/// <summary>A socket registered with an <see cref="EventLoop"/>, served on the loop's thread.</summary>
internal interface IPollable
{
    /// <summary>The socket is ready (or hung up): read, write or close as its state requires.</summary>
    void OnReady();

    /// <summary>The loop is ending (stopped, or its wait failed with <paramref name="error"/>): close now,
    /// on the calling thread.</summary>
    void OnLoopEnded(Exception? error);
}

/// <summary>
/// One thread serving many sockets, as memcached's workers do: the poller says which are ready, and this
/// thread reads, answers and sends for each of them inline, with no hop to the thread pool (on a busy
/// 2-core machine that hop cost more than the answer itself). Level-triggered, one read per ready event,
/// so one busy connection cannot starve the others.
/// A registration's token is an index into this loop's table and a generation (Tmds.LinuxAsync keys its
/// sockets by descriptor; the generation also tells a socket closed meanwhile from a new one that got its
/// number): an event for a socket closed meanwhile finds another generation and is ignored. The
/// table, the timers and every registration belong to this thread; other threads hand it work with
/// <see cref="Post"/>.
/// </summary>
internal sealed class EventLoop : IDisposable, IStreamConnector
{
    private const int MaxEvents = 256;

    [ThreadStatic]
    private static EventLoop? _current;

    private readonly IPoller _poller;
    private readonly Thread _thread;
    private readonly Action<Exception> _onError;
    private readonly ConcurrentQueue<Action> _posted = new();
    private readonly PriorityQueue<Action, long> _timers = new();
    private readonly Stack<int> _free = new();
    private List<IDeferredSend> _deferred = new();
    private List<IDeferredSend> _sending = new();
    private DeferredLogWrites? _log;
    private Entry[] _entries = new Entry[64];
    private int _used;
    private int _wakeRequested;
    private volatile bool _stopping;
    private bool _ending; // End has begun: nothing new may register
    private bool _ended; // End is over: the loop's thread runs nothing more, so posted work runs on its poster

    public EventLoop(string name, Action<Exception> onError, IPoller? poller = null)
    {
        _onError = onError;
        _poller = poller ?? new EpollPoller(MaxEvents);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.UnsafeStart(); // no ExecutionContext: a loop does not carry its starter's AsyncLocals
    }

    /// <summary>Where this loop's connections read (one at a time, on its thread).</summary>
    public byte[] ReceiveBuffer { get; } = new byte[64 * 1024];

    /// <summary>The buffers this loop's connections answer into (one at a time, on its thread).</summary>
    public Scratch Scratch { get; } = new();

    public bool IsCurrentThread => Thread.CurrentThread == _thread;

    /// <summary>The loop whose thread is calling, or null on any other thread.</summary>
    public static EventLoop? Current => _current;

    /// <summary>A connection served on this loop, as a stream (see <see cref="PolledStream.ConnectAsync"/>).</summary>
    public Task<System.IO.Stream> ConnectAsync(System.Net.IPEndPoint remote, CancellationToken cancellationToken) =>
        PolledStream.ConnectAsync(this, remote, cancellationToken);

    /// <summary>True while log lines handed over on this loop's thread in this pass are not yet written:
    /// nothing may be sent until they are (<see cref="SendAfterLog"/>). On the loop's thread.</summary>
    public bool LogPending => _log?.HasPending == true;

    /// <summary>Has <paramref name="sender"/> send at the end of this pass, once the pass's log lines are in
    /// their files: a reply never leaves before its lines, and a pass costs one log write, not one per
    /// connection. On the loop's thread.</summary>
    public void SendAfterLog(IDeferredSend sender) => _deferred.Add(sender);

    /// <summary>Writes the pass's pending log lines now, when called on the loop's thread: before an end that
    /// cannot wait for the end of the pass (a reset, a FIN), whose lines must be in the file first.</summary>
    public void WriteLogNow()
    {
        if (IsCurrentThread)
        {
            _log?.Flush();
        }
    }

    /// <summary>True until the loop's thread has ended.</summary>
    public bool IsRunning => _thread.IsAlive;

    /// <summary>True once the loop is ending: registering then would leave a socket nobody serves.</summary>
    public bool HasEnded => Volatile.Read(ref _ending);

    /// <summary>Starts delivering <paramref name="descriptor"/>'s readiness to <paramref name="handler"/>;
    /// returns the registration's token. On the loop's thread.</summary>
    public ulong Register(int descriptor, Interest interest, IPollable handler)
    {
        var index = _free.Count > 0 ? _free.Pop() : _used++;
        if (index == _entries.Length)
        {
            Array.Resize(ref _entries, _entries.Length * 2);
        }

        _entries[index].Handler = handler;
        var token = ((ulong)_entries[index].Generation << 32) | (uint)index;
        try
        {
            _poller.Add(descriptor, interest, token);
        }
        catch
        {
            Forget(index);
            throw;
        }

        return token;
    }

    /// <summary>Hands a registration to another handler (a connected socket passing from its dial to its
    /// connection) without a system call. On the loop's thread.</summary>
    public void Rebind(ulong token, IPollable handler)
    {
        var index = (int)(uint)token;
        if (_entries[index].Generation == (uint)(token >> 32))
        {
            _entries[index].Handler = handler;
        }
    }

    /// <summary>Changes what a registered socket waits for. On the loop's thread.</summary>
    public void Change(int descriptor, Interest interest, ulong token) => _poller.Change(descriptor, interest, token);

    /// <summary>Stops the events of a registration; call before its socket is closed. On the loop's thread
    /// (or after the loop has ended, when nothing is watched any more).</summary>
    public void Unregister(int descriptor, ulong token)
    {
        if (!IsCurrentThread)
        {
            return; // work posted after the loop ended runs on its caller, while End forgets every entry itself
        }

        _poller.Remove(descriptor);
        var index = (int)(uint)token;
        if (_entries[index].Generation == (uint)(token >> 32))
        {
            Forget(index);
        }
    }

    /// <summary>Runs <paramref name="action"/> on the loop's thread, between events; any thread. Once the
    /// loop's thread is done it runs on the caller's thread instead (posted work checks <see cref="HasEnded"/>),
    /// so nothing posted is ever lost, and never beside the loop's own last work. Posted from the loop's own
    /// thread, it needs no wake: the loop looks at the queue before it waits again.</summary>
    public void Post(Action action)
    {
        _posted.Enqueue(action);
        if (Volatile.Read(ref _ended))
        {
            RunPosted();
        }
        else if (!IsCurrentThread && Interlocked.Exchange(ref _wakeRequested, 1) == 0)
        {
            _poller.Wake();
        }
    }

    /// <summary>Runs <paramref name="action"/> on the loop's thread after <paramref name="delay"/>. On the loop's thread.</summary>
    public void Schedule(TimeSpan delay, Action action) =>
        _timers.Enqueue(action, Environment.TickCount64 + (long)delay.TotalMilliseconds);

    /// <summary>Ends the loop's thread (a bounded wait); the sockets still registered close on it as it ends.</summary>
    public void Stop()
    {
        _stopping = true;
        _poller.Wake();
        if (!IsCurrentThread && !_thread.Join(TimeSpan.FromSeconds(10)))
        {
            Report(new TimeoutException($"The event loop '{_thread.Name}' did not end within 10 s."));
        }
    }

    /// <summary>Stops the loop, then closes the poller.</summary>
    public void Dispose()
    {
        Stop();
        if (!_thread.IsAlive)
        {
            // Only once the thread is gone: closing under a wait could hand the numbers to new sockets.
            _poller.Dispose();
        }
    }

    private void Run()
    {
        Span<ulong> ready = stackalloc ulong[MaxEvents];
        Exception? failure = null;
        _log = DeferredLogWrites.InstallOnThisThread();
        _current = this;
        try
        {
            while (!_stopping)
            {
                RunPosted();
                RunDueTimers();
                EndPass();
                var count = _poller.Wait(ready, WaitTimeout());
                if (count == -Libc.EINTR)
                {
                    continue;
                }

                if (count < 0)
                {
                    failure = Libc.ToException(-count, "epoll_wait");
                    Report(failure);
                    break;
                }

                for (var i = 0; i < count; i++)
                {
                    Dispatch(ready[i]);
                }

                EndPass();
            }
        }
        catch (Exception e)
        {
            failure = e;
            Report(e);
        }
        finally
        {
            End(failure);
        }
    }

    /// <summary>The end of a pass: the log lines it handed over are written (one write per file), then what
    /// waited for them is sent; what that sending handed over in turn is written and sent too, before the loop
    /// waits again.</summary>
    private void EndPass()
    {
        while (_log!.HasPending || _deferred.Count > 0)
        {
            _log.Flush();
            (_sending, _deferred) = (_deferred, _sending);
            foreach (var sender in _sending)
            {
                try
                {
                    sender.SendDeferred();
                }
                catch (Exception e)
                {
                    Report(e); // senders close their own connection on failure
                }
            }

            _sending.Clear();
        }
    }

    private void Dispatch(ulong token)
    {
        var index = (int)(uint)token;
        if (index >= _used || _entries[index].Generation != (uint)(token >> 32) || _entries[index].Handler is not { } handler)
        {
            return; // an event for a socket closed earlier in this batch
        }

        try
        {
            handler.OnReady();
        }
        catch (Exception e)
        {
            // Handlers close their own connection on failure; what escapes is a user's event handler,
            // and it must not end the thread every other connection of this loop depends on.
            Report(e);
        }
    }

    private void RunPosted()
    {
        // A full fence, not a plain store: the queue must be read after the flag is cleared, or a Post in
        // between would see the flag still set, skip the wake, and leave its work until the next event.
        Interlocked.Exchange(ref _wakeRequested, 0);
        while (_posted.TryDequeue(out var action))
        {
            Invoke(action);
        }
    }

    private void RunDueTimers()
    {
        var now = Environment.TickCount64;
        while (_timers.TryPeek(out var action, out var due) && due <= now)
        {
            _timers.Dequeue();
            Invoke(action);
        }
    }

    /// <summary>Milliseconds the wait may block: none while work is posted, else until the next timer.</summary>
    private int WaitTimeout()
    {
        if (!_posted.IsEmpty)
        {
            return 0;
        }

        if (!_timers.TryPeek(out _, out var due))
        {
            return -1;
        }

        return (int)Math.Clamp(due - Environment.TickCount64, 0, int.MaxValue);
    }

    /// <summary>On the loop's thread as it ends: work posted or scheduled meanwhile runs (it finds the loop
    /// ended, so a connection waiting to reconnect ends too), then every socket still registered closes.</summary>
    private void End(Exception? failure)
    {
        Volatile.Write(ref _ending, true);
        RunPosted();
        while (_timers.TryDequeue(out var action, out _))
        {
            Invoke(action);
        }

        EndPass();

        for (var index = 0; index < _used; index++)
        {
            if (_entries[index].Handler is { } handler)
            {
                Forget(index);
                try
                {
                    handler.OnLoopEnded(failure);
                }
                catch (Exception e)
                {
                    Report(e);
                }
            }
        }

        // From here a post runs on its poster. A full fence between the flag and the last look at the queue: work
        // posted before the flag was seen is run here, work posted after it by its poster, none of it twice.
        Volatile.Write(ref _ended, true);
        Interlocked.MemoryBarrier();
        RunPosted();
        EndPass();
        _log?.Flush(); // the disconnect lines of what closed as the loop ended
    }

    private void Forget(int index)
    {
        _entries[index].Handler = null;
        _entries[index].Generation++;
        _free.Push(index);
    }

    private void Invoke(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            Report(e);
        }
    }

    /// <summary>Hands an error no connection owns to the loop's error handler; never throws.</summary>
    internal void Report(Exception error)
    {
        try
        {
            _onError(error);
        }
        catch (Exception)
        {
            // The error handler itself failed: nothing is left to tell; the loop goes on.
        }
    }

    private struct Entry
    {
        public IPollable? Handler;
        public uint Generation;
    }
}
