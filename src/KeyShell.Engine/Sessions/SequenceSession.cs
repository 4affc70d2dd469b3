using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// One client sequence's protocol: sends its keys in order, one request in flight, and reads each reply
/// before the next key goes out (FIFO); per message (a new connection for every key, as the seed's
/// client) or over one persistent connection. Timeouts and cancellation come from outside, through
/// <see cref="Abort"/>: no timer or token per request.
/// </summary>
internal sealed class SequenceSession : ISession
{
    private readonly ISequenceOwner _owner;
    private readonly ReplyReader _replies;
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _index;
    private byte[] _request = Array.Empty<byte>();
    private long _started;
    private int _deadline; // Environment.TickCount by which the request in flight must be answered; 0: none
    private int _abortReason = -1;
    private Exception? _observerFailure;

    public SequenceSession(ISequenceOwner owner, ClientSequence sequence)
    {
        _owner = owner;
        Sequence = sequence;
        _replies = new ReplyReader(owner.Framing == Framing.Line);
        BeginRequest();
    }

    public ClientSequence Sequence { get; }

    /// <summary>What carries this session's connections, set by its owner before the first one opens.</summary>
    public ILink? Link { get; set; }

    /// <summary>Completes when the sequence has ended (answered, failed or stopped); faults only when the
    /// observer threw.</summary>
    public Task Completion => _finished.Task;

    public bool IsDone => _finished.Task.IsCompleted;

    /// <summary>True when the request in flight is past its timeout; any thread.</summary>
    public bool IsLate(int now)
    {
        var deadline = Volatile.Read(ref _deadline);
        return deadline != 0 && unchecked(now - deadline) > 0;
    }

    /// <summary>Stops the sequence from any thread: the pending call fails and is reported as <paramref name="reason"/>.</summary>
    public void Abort(FailureKind reason)
    {
        Interlocked.CompareExchange(ref _abortReason, (int)reason, -1);
        Link?.Abort();
    }

    public Step Opened(IConnection connection, Scratch scratch)
    {
        if (Volatile.Read(ref _abortReason) >= 0)
        {
            return Failed(new OperationCanceledException()); // stopped while connecting
        }

        Observe(() => _owner.Sending(Sequence.ClientId, Sequence.Keys[_index]));
        scratch.Output.Write(_request);
        return Step.Receive;
    }

    public Step Received(ReadOnlySpan<byte> data, Scratch scratch)
    {
        var replies = _replies.Read(data);
        var answered = false;
        while (replies.Next(out var reply))
        {
            var text = Encoding.UTF8.GetString(reply.ToArray());
            if (answered)
            {
                return Unexpected(text, "it came before its request was sent"); // a line nobody asked for
            }

            var step = Answered(text, scratch);
            if (step != Step.Receive)
            {
                return step;
            }

            answered = true;
        }

        return Step.Receive;
    }

    /// <summary>The server closed: a reply it left without its line end is not the protocol's; else the connection was lost.</summary>
    public Step Ended(Scratch scratch) =>
        _replies.PendingCount > 0 && _index < Sequence.Keys.Count
            ? Unexpected(Encoding.UTF8.GetString(_replies.TakeUnfinished()), "the server closed the connection before the reply's line end")
            : Failed(new ConnectionClosedException());

    public Step Failed(Exception error)
    {
        Volatile.Write(ref _deadline, 0);
        _replies.Reset();
        if (_observerFailure is null && _index < Sequence.Keys.Count)
        {
            var failure = Classify(error);
            try
            {
                Observe(() => _owner.Fail(failure));
            }
            catch (ObserverFailedException)
            {
                // Kept in _observerFailure: the run ends with it.
            }
        }

        return Step.Close;
    }

    public Task<Step> HandleAsync(Scratch scratch) => throw new NotSupportedException("A client sequence has no asynchronous work.");

    public long WakeAt => 0;

    public Step Woken(Scratch scratch) => throw new NotSupportedException("A client sequence never asks to sleep.");

    public void Closed()
    {
        Volatile.Write(ref _deadline, 0);
        _replies.Dispose();
        if (_observerFailure is not null)
        {
            _finished.TrySetException(_observerFailure);
        }
        else
        {
            _finished.TrySetResult(true);
        }
    }

    /// <summary>The reply to the request in flight: delivered, then the next request, or the end. A reply
    /// that is not the protocol's ends the sequence: what follows it on the connection cannot be trusted.</summary>
    private Step Answered(string reply, Scratch scratch)
    {
        var kind = ReplyCheck.Classify(reply, Sequence.Keys[_index], !_owner.SkipReplyCheck);
        if (kind == ReplyKind.UnexpectedReply)
        {
            return Unexpected(reply, null);
        }

        var latency = TimeSpan.FromTicks((long)((Stopwatch.GetTimestamp() - _started) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
        Volatile.Write(ref _deadline, 0);
        var index = _index;
        var request = _request;
        Observe(() => _owner.Deliver(new KeyReply(Sequence.ClientId, index, Sequence.Keys[index], reply, latency, kind), request));
        if (++_index == Sequence.Keys.Count)
        {
            return Step.Close;
        }

        BeginRequest();
        if (_owner.Connection == ConnectionMode.PerMessage)
        {
            return Step.Reconnect; // the next request's time includes its connect, as the seed's client pays it
        }

        if (Volatile.Read(ref _abortReason) >= 0)
        {
            return Failed(new OperationCanceledException());
        }

        Observe(() => _owner.Sending(Sequence.ClientId, Sequence.Keys[_index]));
        scratch.Output.Write(_request);
        return Step.Receive;
    }

    /// <summary>
    /// A reply that is not the protocol's answer to key <see cref="_index"/> (<paramref name="why"/>, when the
    /// text alone does not say): delivered as such, so it can be seen, then the sequence fails with UnexpectedReply.
    /// </summary>
    private Step Unexpected(string reply, string? why)
    {
        var latency = TimeSpan.FromTicks((long)((Stopwatch.GetTimestamp() - _started) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
        Volatile.Write(ref _deadline, 0);
        _replies.Reset();
        var index = _index;
        var key = Sequence.Keys[index];
        try
        {
            Observe(() => _owner.Deliver(new KeyReply(Sequence.ClientId, index, key, reply, latency, ReplyKind.UnexpectedReply), _request));
            var shown = reply.Length > 80 ? reply.Substring(0, 80) + "..." : reply;
            var message = $"The reply to key {key} from {_owner.DisplayEndPoint} is not the protocol's ('{shown}'{(why is null ? string.Empty : "; " + why)}; {ReplyCheck.Expected(key)}): " +
                $"sequence '{Sequence.ClientId}' stopped at key {key} (index {index}), {index} of {Sequence.Keys.Count} keys answered.";
            Observe(() => _owner.Fail(new KeyClientFailure(Sequence, index, FailureKind.UnexpectedReply, message, null)));
        }
        catch (ObserverFailedException)
        {
            // Kept in _observerFailure: the run ends with it.
        }

        _index = Sequence.Keys.Count; // nothing more to report when the connection closes
        return Step.Close;
    }

    /// <summary>Starts request <see cref="_index"/>: its bytes in the options' framing, its clock and timeout.</summary>
    private void BeginRequest()
    {
        var key = Sequence.Keys[_index];
        _request = RequestEncoding.For(Sequence.ClientId, key, _owner.Framing);
        _started = Stopwatch.GetTimestamp();
        Volatile.Write(ref _deadline, (Environment.TickCount + (int)_owner.Timeout.TotalMilliseconds) | 1);
    }

    /// <summary>Calls the run's observer; if it throws, the sequence ends and the run fails with that exception.</summary>
    private void Observe(Action call)
    {
        if (_observerFailure is not null)
        {
            throw new ObserverFailedException(_observerFailure);
        }

        try
        {
            call();
        }
        catch (Exception e)
        {
            _observerFailure = e;
            throw new ObserverFailedException(e);
        }
    }

    private KeyClientFailure Classify(Exception e)
    {
        var endPoint = _owner.DisplayEndPoint;
        var key = Sequence.Keys[_index];
        var progress = $"sequence '{Sequence.ClientId}' stopped at key {key} (index {_index}), {_index} of {Sequence.Keys.Count} keys answered";
        var aborted = Volatile.Read(ref _abortReason);
        if (aborted >= 0)
        {
            var kind = (FailureKind)aborted;
            var why = kind switch
            {
                FailureKind.Timeout => $"No reply from {endPoint} within {_owner.Timeout.TotalSeconds:0.###} s",
                FailureKind.ServerGone => $"The server at {endPoint} went away",
                _ => "The run was stopped",
            };
            return new KeyClientFailure(Sequence, _index, kind, $"{why}: {progress}.", e);
        }

        return e switch
        {
            ConnectFailedException { InnerException: TlsCertificateUntrustedException untrusted } => new KeyClientFailure(Sequence, _index, FailureKind.TlsCertificateUntrusted,
                $"{untrusted.Message} ({endPoint}): {progress}.", untrusted),
            ConnectFailedException { InnerException: TlsHandshakeException handshake } => new KeyClientFailure(Sequence, _index, FailureKind.TlsHandshakeFailed,
                $"The TLS handshake with {endPoint} failed ({handshake.Message}): {progress}.", handshake),
            ConnectFailedException c => new KeyClientFailure(Sequence, _index, FailureKind.ConnectFailed,
                $"Cannot connect to {endPoint} ({Describe(c.InnerException!)}): {progress}.", c.InnerException),
            ProtocolViolationException p => new KeyClientFailure(Sequence, _index, FailureKind.ProtocolError,
                $"{p.Message} From {endPoint}: {progress}.", p),
            _ => new KeyClientFailure(Sequence, _index, FailureKind.ConnectionLost,
                $"The connection to {endPoint} was lost before the reply ({Describe(e)}): {progress}.", e),
        };
    }

    private static string Describe(Exception e) => e switch
    {
        SocketException s when s.SocketErrorCode == SocketError.ConnectionRefused => "connection refused",
        SocketException s when s.SocketErrorCode == SocketError.ConnectionReset => "connection reset",
        SocketException s => s.SocketErrorCode.ToString(),
        System.IO.IOException { InnerException: SocketException s } => Describe(s),
        ConnectionClosedException => "closed by the server",
        _ => e.Message,
    };

    private sealed class ConnectionClosedException : Exception
    {
        public ConnectionClosedException()
            : base("The server closed the connection.")
        {
        }
    }

    /// <summary>The run's observer threw: not the connection's fault, so not reported as a failure of it.</summary>
    private sealed class ObserverFailedException : Exception
    {
        public ObserverFailedException(Exception inner)
            : base(inner.Message, inner)
        {
        }
    }
}
