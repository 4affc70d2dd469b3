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
/// again, until its share of the requests is done or the run's time is up. Replies are judged, never kept.
/// A batch that fails or times out counts its unanswered requests as errors of the failure's kind; after a
/// refused or broken connection the worker pauses a moment before reconnecting, so a server that is down is
/// not hammered; after a reply that is not the protocol's it reconnects, as nothing after it can be trusted.
/// </summary>
internal sealed class LoadSession : ISession
{
    private readonly LoadGenerator _generator;
    private readonly LoadRecorder.Stripe _recorder;
    private readonly long _quota;
    private readonly long _timeout;
    private readonly byte[] _client; // "<prefix><id> "
    private readonly byte[][] _keys;
    private readonly byte[] _terminator;
    private readonly bool _checkForm;
    private readonly ReplyReader _replies;
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IConnection? _connection;
    private long _done;     // measured requests finished (the quota counts these)
    private long _cursor;   // index of the batch's first key
    private int _count;
    private int _answered;
    private int _measured;  // of the batch's requests, those that ended inside the measured window
    private bool _outOfStep;
    private long _due;      // Stopwatch timestamp the batch was due: its latencies count from here
    private long _sent;     // when it was actually sent (connect included, per message)
    private long _deadline; // Stopwatch timestamp by which the batch in flight must be answered; 0: none
    private int _timedOut;
    private volatile bool _cancelled;

    public LoadSession(LoadGenerator generator, int id, long quota, LoadRecorder.Stripe recorder)
    {
        _generator = generator;
        _quota = quota;
        _recorder = recorder;
        var options = generator.Options;
        _client = System.Text.Encoding.ASCII.GetBytes(options.ClientIdPrefix + id.ToString(System.Globalization.CultureInfo.InvariantCulture) + " ");
        _keys = generator.KeyBytes;
        _cursor = id % _keys.Length;
        _terminator = options.Framing == Framing.Line ? new[] { (byte)'\n' } : Array.Empty<byte>();
        _checkForm = !options.SkipReplyCheck;
        _timeout = (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
        _replies = new ReplyReader(options.Framing == Framing.Line);
        BeginBatch(Stopwatch.GetTimestamp());
    }

    public Task Completion => _finished.Task;

    private LoadOptions Options => _generator.Options;

    private bool Over => _done >= _quota || _cancelled || Stopwatch.GetTimestamp() >= _generator.RunDeadline;

    /// <summary>The watchdog: a batch past its timeout counts as errors and the worker reconnects. Any thread.</summary>
    public void TimeOutIfLate(long now)
    {
        var deadline = Interlocked.Read(ref _deadline);
        if (deadline != 0 && now - deadline > 0 && Interlocked.Exchange(ref _timedOut, 1) == 0)
        {
            Volatile.Read(ref _connection)?.Abort();
        }
    }

    /// <summary>Stops the worker (a cancel, or the run failing): requests in flight count nowhere.</summary>
    public void Cancel()
    {
        _cancelled = true;
        Volatile.Read(ref _connection)?.Abort();
    }

    public Step Opened(IConnection connection, Scratch scratch)
    {
        Volatile.Write(ref _connection, connection);
        if (_cancelled)
        {
            return Failed(new OperationCanceledException());
        }

        WriteBatch(scratch);
        return Step.Receive;
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
        if (Options.Connection == ConnectionMode.PerMessage || outOfStep)
        {
            _replies.Reset();
            return Step.Reconnect; // per message, the next batch's time includes its connect
        }

        WriteBatch(scratch);
        return Step.Receive;
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
            _generator.Fail(untrusted); // a configuration error, the same for every worker: the run ends with it
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
        return timedOut ? Step.Reconnect : Step.ReconnectSoon; // a late server is tried again at once
    }

    public Task<Step> HandleAsync(Scratch scratch) => throw new NotSupportedException("A load worker has no asynchronous work.");

    public void Closed()
    {
        Interlocked.Exchange(ref _deadline, 0);
        _replies.Dispose();
        _finished.TrySetResult(true);
    }

    /// <summary>Decides the next batch and starts its clock (before the connect, on a new connection).</summary>
    private void BeginBatch(long now)
    {
        _count = (int)Math.Min(Options.Pipeline, _quota - _done);
        _answered = 0;
        _measured = 0;
        _outOfStep = false;
        _due = now;
        _sent = now;
        Interlocked.Exchange(ref _deadline, now + _timeout);
    }

    private void EndBatch()
    {
        Interlocked.Exchange(ref _deadline, 0);
        _generator.Finished(_measured);
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
        _generator.Metrics.Done(ok, errors + unexpected, _sent, now);
        if (now < _generator.MeasureFrom)
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
        _generator.Metrics.Done(0, count, _sent, now);
        if (now < _generator.MeasureFrom || count <= 0)
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
