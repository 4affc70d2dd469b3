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
/// One load worker's protocol: send a batch (one request, or a pipelined burst), count its replies and
/// the errors among them, again, until its share of the requests is done or the run's time is up. Replies
/// are counted, never kept. A batch that fails or times out counts as errors; after a refused or broken
/// connection the worker pauses a moment before reconnecting, so a server that is down is not hammered.
/// </summary>
internal sealed class LoadSession : ISession
{
    private readonly ILoadOwner _owner;
    private readonly long _quota;
    private readonly long _runDeadline;
    private readonly long _timeout;
    private readonly LatencyHistogram _latency;
    private readonly byte[][] _requests;
    private readonly ReplyReader _replies;
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _done;
    private int _count;
    private int _answered;
    private int _errors;
    private long _started;
    private long _deadline; // Stopwatch timestamp by which the batch in flight must be answered; 0: none
    private int _timedOut;
    private volatile bool _cancelled;

    public LoadSession(ILoadOwner owner, int id, long quota, long runDeadline, LatencyHistogram latency)
    {
        _owner = owner;
        _quota = quota;
        _runDeadline = runDeadline;
        _latency = latency;
        _requests = owner.RequestsOf(id);
        _timeout = (long)(owner.Options.Timeout.TotalSeconds * Stopwatch.Frequency);
        _replies = new ReplyReader(owner.Options.Framing == Framing.Line);
        BeginBatch();
    }

    /// <summary>What carries this session's connections, set by its owner before the first one opens.</summary>
    public ILink? Link { get; set; }

    public Task Completion => _finished.Task;

    private LoadOptions Options => _owner.Options;

    private bool Over => _done >= _quota || _cancelled || Stopwatch.GetTimestamp() >= _runDeadline;

    /// <summary>The watchdog: a batch past its timeout counts as errors and the worker reconnects. Any thread.</summary>
    public void TimeOutIfLate(long now)
    {
        var deadline = Interlocked.Read(ref _deadline);
        if (deadline != 0 && now - deadline > 0 && Interlocked.Exchange(ref _timedOut, 1) == 0)
        {
            Link?.Abort();
        }
    }

    public void Cancel()
    {
        _cancelled = true;
        Link?.Abort();
    }

    public Step Opened(IConnection connection, Scratch scratch)
    {
        if (_cancelled)
        {
            return Failed(new OperationCanceledException());
        }

        WriteBatch(scratch);
        return Step.Receive;
    }

    public Step Received(ReadOnlySpan<byte> data, Scratch scratch)
    {
        var replies = _replies.Read(data);
        while (replies.Next(out var reply))
        {
            _answered++;
            _errors += reply.Length > 0 && reply[0] == (byte)'E' ? 1 : 0; // every error reply starts with "Error:"
        }

        if (_answered < _count)
        {
            return Step.Receive;
        }

        Record(_errors);
        if (Over)
        {
            return Step.Close;
        }

        BeginBatch();
        if (Options.Connection == ConnectionMode.PerMessage)
        {
            return Step.Reconnect; // the next batch's time includes its connect
        }

        WriteBatch(scratch);
        return Step.Receive;
    }

    public Step Ended(Scratch scratch) => Failed(new InvalidOperationException("The server closed the connection."));

    public Step Failed(Exception error)
    {
        _replies.Reset();
        if (error is ConnectFailedException { InnerException: TlsCertificateUntrustedException untrusted })
        {
            _owner.Fail(untrusted); // a configuration error, the same for every worker: the run ends with it
        }

        var timedOut = Interlocked.Exchange(ref _timedOut, 0) == 1;
        Record(_count);
        if (Over)
        {
            return Step.Close;
        }

        BeginBatch();
        return timedOut ? Step.Reconnect : Step.ReconnectSoon; // a late server is tried again at once
    }

    public Task<Step> HandleAsync(Scratch scratch) => throw new NotSupportedException("A load worker has no asynchronous work.");

    public long WakeAt => 0;

    public Step Woken(Scratch scratch) => throw new NotSupportedException("A load worker never asks to sleep.");

    public void Closed()
    {
        Interlocked.Exchange(ref _deadline, 0);
        _replies.Dispose();
        _finished.TrySetResult(true);
    }

    /// <summary>Decides the next batch and starts its clock (before the connect, on a new connection).</summary>
    private void BeginBatch()
    {
        _count = (int)Math.Min(Options.Pipeline, _quota - _done);
        _answered = 0;
        _errors = 0;
        _started = Stopwatch.GetTimestamp();
        Interlocked.Exchange(ref _deadline, _started + _timeout);
    }

    private void WriteBatch(Scratch scratch)
    {
        for (var i = 0; i < _count; i++)
        {
            scratch.Output.Write(_requests[(_done + i) % _requests.Length]);
        }
    }

    private void Record(int errors)
    {
        Interlocked.Exchange(ref _deadline, 0);
        _owner.Record(_latency, _started, _count, errors);
        _done += _count;
    }
}
