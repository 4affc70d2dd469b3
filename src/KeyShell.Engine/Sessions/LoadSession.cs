using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// One load worker's protocol: send a batch (one request, or a pipelined burst), check each reply against
/// the key it answers (<see cref="ReplyCheck"/>), record the successes' latencies and the errors by kind,
/// again, until its share of the requests is done or the run's time is up. In a closed loop the next batch
/// goes as soon as the last is answered; in an open loop (-Rate) when it is due (<see cref="LoadSchedule"/>),
/// or at once when the last was answered later than that, and its latencies count from the time it was due. Replies are judged, never kept.
/// A batch that fails or times out counts its unanswered requests as errors of the failure's kind; after a
/// refused or broken connection the worker pauses a moment before reconnecting, so a server that is down is
/// not hammered; after a reply that is not the protocol's it reconnects, as nothing after it can be trusted.
/// </summary>
internal sealed class LoadSession : ISession
{
    private readonly ILoadOwner _owner;
    private readonly LoadRecorder.Stripe _recorder;
    private readonly long _quota;
    private readonly long _timeout;
    private readonly byte[] _client; // "<prefix><id> "
    private readonly byte[][] _keys;
    private readonly byte[] _terminator;
    private readonly bool _checkForm;
    private readonly ReplyReader _replies;
    private readonly LoadSchedule _schedule;
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _done;     // measured requests finished (the quota counts these)
    private long _cursor;   // index of the batch's first key
    private int _count;
    private int _answered;
    private int _measured;  // of the batch's requests, those that ended inside the measured window
    private bool _outOfStep;
    private long _due;      // Stopwatch timestamp the batch was due: its latencies count from here
    private long _sent;     // when it was actually sent (connect included, per message); 0: not yet
    private bool _fresh;    // this connection was opened for the batch in hand (per message, each batch has its own)
    private long _deadline; // Stopwatch timestamp by which the batch in flight must be answered; 0: none
    private int _timedOut;
    private volatile bool _cancelled;

    public LoadSession(ILoadOwner owner, int id, long quota, LoadRecorder.Stripe recorder)
    {
        _owner = owner;
        _quota = quota;
        _recorder = recorder;
        var options = owner.Options;
        _client = System.Text.Encoding.ASCII.GetBytes(options.ClientIdPrefix + id.ToString(System.Globalization.CultureInfo.InvariantCulture) + " ");
        _keys = owner.KeyBytes;
        _cursor = id % _keys.Length;
        _terminator = options.Framing == Framing.Line ? new[] { (byte)'\n' } : Array.Empty<byte>();
        _checkForm = !options.SkipReplyCheck;
        _timeout = (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
        _replies = new ReplyReader(options.Framing == Framing.Line);
        _schedule = new LoadSchedule(options, id, owner.RunStart);
        BeginBatch(Stopwatch.GetTimestamp());
    }

    public Task Completion => _finished.Task;

    /// <summary>What carries this session's connections, set by its owner before the first one opens.</summary>
    public ILink? Link { get; set; }

    /// <summary>Open loop: when the batch in hand is due (after <see cref="Step.Sleep"/>).</summary>
    public long WakeAt => _due;

    private LoadOptions Options => _owner.Options;

    /// <summary>The worker is done: its share sent, stopped, or its time up (open loop: the next batch would be due after the end).</summary>
    private bool Over => _done >= _quota || _cancelled || (_schedule.IsOpen ? _due : Stopwatch.GetTimestamp()) >= _owner.RunDeadline;

    /// <summary>The watchdog: a batch past its timeout counts as errors and the worker reconnects. Any thread.</summary>
    public void TimeOutIfLate(long now)
    {
        var deadline = Interlocked.Read(ref _deadline);
        if (deadline != 0 && now - deadline > 0 && Interlocked.Exchange(ref _timedOut, 1) == 0)
        {
            Link?.Abort();
        }
    }

    /// <summary>Stops the worker (a cancel, or the run failing): requests in flight count nowhere.</summary>
    public void Cancel()
    {
        _cancelled = true;
        Link?.Abort(); // a sleep too: the driver ends it, and the session hears Failed
    }

    public Step Opened(IConnection connection, Scratch scratch)
    {
        if (_cancelled)
        {
            return Failed(new OperationCanceledException());
        }

        _fresh = _sent != 0; // its batch had started: the connect is part of its time
        return Go(scratch);
    }

    public Step Received(ReadOnlySpan<byte> data, Scratch scratch)
    {
        var now = Stopwatch.GetTimestamp();
        var replies = _replies.Read(data);
        long ok = 0, errors = 0, unexpected = 0;
        var extra = false;
        while (replies.Next(out var reply))
        {
            if (_answered == _count)
            {
                extra = true; // a line nobody asked for
                break;
            }

            switch (ReplyCheck.Classify(reply, _keys[(_cursor + _answered) % _keys.Length], _checkForm))
            {
                case ReplyKind.Response:
                    ok++;
                    break;
                case ReplyKind.ErrorReply:
                    errors++;
                    break;
                default:
                    unexpected++;
                    break;
            }

            _answered++;
        }

        if (_answered == _count && _replies.PendingCount > 0)
        {
            extra = true; // the start of a line nobody asked for
        }

        if (extra && ok > 0)
        {
            ok--; // the reply followed by it was not the protocol's either
            unexpected++;
        }

        _outOfStep |= extra || unexpected > 0;
        Record(now, ok, errors, unexpected);
        if (_answered < _count)
        {
            return Step.Receive;
        }

        EndBatch();
        if (Over)
        {
            return Step.Close;
        }

        var outOfStep = _outOfStep;
        BeginBatch(Stopwatch.GetTimestamp());
        if (Over)
        {
            return Step.Close;
        }

        if (outOfStep)
        {
            _replies.Reset();
            return Step.Reconnect; // after a reply that is not the protocol's, nothing on this connection is trusted
        }

        return Go(scratch);
    }

    /// <summary>The server closed: a reply it left without its line end is not the protocol's; the rest were lost.</summary>
    public Step Ended(Scratch scratch)
    {
        if (_replies.PendingCount > 0 && _answered < _count)
        {
            Record(Stopwatch.GetTimestamp(), 0, 0, 1);
            _answered++;
        }

        return Failed(new ConnectionClosedException());
    }

    public Step Failed(Exception error)
    {
        _replies.Reset();
        if (error is ConnectFailedException { InnerException: TlsCertificateUntrustedException untrusted })
        {
            _owner.Fail(untrusted); // a configuration error, the same for every worker: the run ends with it
        }

        var timedOut = Interlocked.Exchange(ref _timedOut, 0) == 1;
        if (!_cancelled)
        {
            var kind = timedOut ? LoadErrorKind.Timeout
                : error is ConnectFailedException ? LoadErrorKind.ConnectFailed
                : error is ProtocolViolationException ? LoadErrorKind.UnexpectedReply
                : LoadErrorKind.ConnectionLost;
            RecordFailures(Stopwatch.GetTimestamp(), kind, _count - _answered);
        }

        EndBatch();
        if (Over)
        {
            return Step.Close;
        }

        BeginBatch(Stopwatch.GetTimestamp());
        if (Over)
        {
            return Step.Close;
        }

        return timedOut ? Step.Reconnect : Step.ReconnectSoon; // a late server is tried again at once
    }

    public Task<Step> HandleAsync(Scratch scratch) => throw new NotSupportedException("A load worker has no asynchronous work.");

    /// <summary>Open loop: the batch's time has come (the driver's timer, at it or just after; never before).</summary>
    public Step Woken(Scratch scratch) => _cancelled ? Failed(new OperationCanceledException()) : Start(scratch);

    public void Closed()
    {
        Interlocked.Exchange(ref _deadline, 0);
        _replies.Dispose();
        _finished.TrySetResult(true);
    }

    /// <summary>Decides the next batch and when it is due. A closed loop starts its clock now (before the
    /// connect, on a new connection); an open loop starts it when the batch goes (<see cref="Start"/>).</summary>
    private void BeginBatch(long now)
    {
        _count = (int)Math.Min(Options.Pipeline, _quota - _done);
        _answered = 0;
        _measured = 0;
        _outOfStep = false;
        Volatile.Write(ref _timedOut, 0); // a watchdog that fired for the batch before, too late to end it, does not name this one
        _due = _schedule.Next(now);
        _sent = 0;
        if (!_schedule.IsOpen)
        {
            MarkSent(now);
        }
    }

    /// <summary>Sends the batch now, or, in an open loop, when it is due: the driver reads nothing meanwhile.</summary>
    private Step Go(Scratch scratch) =>
        _sent == 0 && Stopwatch.GetTimestamp() < _due ? Step.Sleep : Start(scratch);

    /// <summary>
    /// The batch goes: its clock starts (once), then its requests are written; per message, on a connection
    /// of its own, so a connection that served the last batch, or was opened before this one was due, gives
    /// way to a new one and the batch's time includes its connect.
    /// </summary>
    private Step Start(Scratch scratch)
    {
        if (_sent == 0)
        {
            var now = Stopwatch.GetTimestamp();
            MarkSent(now);
            if (now - _due > _schedule.LateAfter && now >= _owner.MeasureFrom)
            {
                _recorder.Late(_count); // the last reply came after this batch was due: the rate was not held
            }
        }

        if (Options.Connection == ConnectionMode.PerMessage && !_fresh)
        {
            _replies.Reset();
            return Step.Reconnect;
        }

        _fresh = false;
        WriteBatch(scratch);
        return Step.Receive;
    }

    private void MarkSent(long now)
    {
        _sent = now;
        Interlocked.Exchange(ref _deadline, now + _timeout);
    }

    private void EndBatch()
    {
        Interlocked.Exchange(ref _deadline, 0);
        _owner.Finished(_measured);
        _done += _measured;
        _cursor += _count;
    }

    private void WriteBatch(Scratch scratch)
    {
        for (var i = 0; i < _count; i++)
        {
            scratch.Output.Write(_client);
            scratch.Output.Write(_keys[(_cursor + i) % _keys.Length]);
            scratch.Output.Write(_terminator);
        }
    }

    /// <summary>One read's replies: successes share its latency; nothing counts before the measured window.</summary>
    private void Record(long now, long ok, long errors, long unexpected)
    {
        _owner.Counted(ok, errors + unexpected, _sent, now);
        if (now < _owner.MeasureFrom)
        {
            return;
        }

        _measured += (int)(ok + errors + unexpected);
        _recorder.Succeeded(ok, LatencyHistograms.Microseconds(_due, now), LatencyHistograms.Microseconds(_sent, now));
        _recorder.Failed(LoadErrorKind.ErrorReply, errors);
        _recorder.Failed(LoadErrorKind.UnexpectedReply, unexpected);
    }

    private void RecordFailures(long now, LoadErrorKind kind, int count)
    {
        _owner.Counted(0, count, _sent, now);
        if (now < _owner.MeasureFrom || count <= 0)
        {
            return;
        }

        _measured += count;
        _recorder.Failed(kind, count);
    }

    private sealed class ConnectionClosedException : Exception
    {
        public ConnectionClosedException()
            : base("The server closed the connection.")
        {
        }
    }
}
