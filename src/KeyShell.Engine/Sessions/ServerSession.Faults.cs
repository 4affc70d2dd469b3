using System;
using System.Diagnostics;
using System.Threading;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// Faults on the wire. A faulted request's lines (the request, then the fault in its place) are handed to the
/// log before the fault acts, as every reply's are. Holds (a Delay, a Slice's pauses) are the driver's sleeps,
/// never a blocked thread: the replies before the hold in the same read go out first, the requests after it
/// wait, copied out, in the list a handler's requests wait in (<c>_waiting</c>), and are answered on waking.
/// </summary>
internal sealed partial class ServerSession
{
    private int _next; // the next request of _waiting to answer
    private bool _holdsRequest; // _waiting[_next] has waited out a Request-direction Delay: answered on waking, not drawn again
    private byte[]? _heldClient; // a Delay's held reply, with its client id for the log line
    private byte[]? _heldReply;
    private bool _heldLegacy;
    private FaultAction? _slicing; // a Slice under way: _sliced (the reply as framed) goes out piece by piece
    private byte[]? _sliced;
    private int _piecesSent;
    private bool _resetAfterSend; // a Reset behind replies of the same read: they go out, then the reset
    private bool _stalled; // a Stall: nothing more on this connection is answered
    private long _wakeAt;

    public long WakeAt => _wakeAt;

    /// <summary>A hold is over: the held reply, or the Slice's next piece, goes out, then the waiting requests are answered.</summary>
    public Step Woken(Scratch scratch)
    {
        if (_resetAfterSend)
        {
            return Step.Reset;
        }

        var timestamp = BeginBatch(scratch.Log);
        if (_slicing is not null)
        {
            if (SendNextPiece(scratch) is { } pause)
            {
                return pause;
            }
        }
        else if (_heldReply is not null)
        {
            LogReply(_heldClient, _heldReply, scratch.Log, timestamp);
            WriteFramed(scratch.Output, _heldReply, _heldLegacy);
            _heldReply = null;
            _heldClient = null;
        }

        EndBatch(scratch.Log, 0, 0); // the reply's line reaches the log before the reply leaves
        Volatile.Write(ref _lastActivity, Environment.TickCount); // a hold is not the client's idleness
        if (_context.Handler is not null)
        {
            Volatile.Write(ref _handling, 1);
            return Step.Handle;
        }

        return AnswerWaiting(scratch);
    }

    /// <summary>Logs a faulted request (its line, then the fault's line in its place) and counts the fault.</summary>
    private void RecordFault(FaultAction fault, ReadOnlySpan<byte> request, int clientLength, ByteBuffer log, string timestamp)
    {
        _context.Events.Faulted(Id, RemoteEndPoint, fault);
        if (_context.Log is not null)
        {
            ConversationLine.WriteRequest(log, timestamp, request);
            ConversationLine.WriteFault(log, timestamp, fault.Type, request.Slice(0, clientLength), request.Slice(clientLength + 1));
        }
    }

    /// <summary>
    /// True when the fault acts before the request is answered, so the key map or the handler never sees it:
    /// the Request direction, except for the faults that deliver the reply or part of it (Slice, Truncate),
    /// which need one. A Request-direction Delay holds the request; it is answered after the hold.
    /// </summary>
    private static bool ActsBeforeAnswer(FaultAction fault) =>
        fault.Direction == FaultDirection.Request && fault.Type is not (FaultType.Slice or FaultType.Truncate);

    /// <summary>A fault that acts before the request is answered (see <see cref="ActsBeforeAnswer"/>).</summary>
    private Step ActBeforeAnswer(FaultAction fault, Scratch scratch, string timestamp)
    {
        if (fault.Type == FaultType.Delay)
        {
            _holdsRequest = true;
            return Hold(fault.DelayMilliseconds);
        }

        return Deliver(fault, default, null, false, scratch, timestamp)!.Value;
    }

    /// <summary>A request of the key map's answered under a fault: null when the read's next request is
    /// answered, else the step that holds or ends the connection.</summary>
    private Step? AnswerFaulted(FaultAction fault, ReadOnlySpan<byte> request, int clientLength, bool legacy, KeyMap map, Scratch scratch, string timestamp, ref int errors)
    {
        RecordFault(fault, request, clientLength, scratch.Log, timestamp);
        if (ActsBeforeAnswer(fault))
        {
            return ActBeforeAnswer(fault, scratch, timestamp);
        }

        var reply = map.ReplyFor(request.Slice(clientLength + 1), out var found);
        errors += found ? 0 : 1;
        return Deliver(fault, request.Slice(0, clientLength), reply, legacy, scratch, timestamp);
    }

    /// <summary>
    /// Carries a fault out on the request's reply (null when the fault took the request before it was
    /// answered). Null: the read's next request is answered; else the step that holds or ends the connection.
    /// The ends that send (Close, Truncate, Garbage) shut sending down and drain, so the peer reads what was
    /// sent and then the end (FIN), not a reset caused by bytes it sent meanwhile.
    /// </summary>
    private Step? Deliver(FaultAction fault, ReadOnlySpan<byte> client, byte[]? reply, bool legacy, Scratch scratch, string timestamp)
    {
        switch (fault.Type)
        {
            case FaultType.Delay:
                _heldClient = client.ToArray();
                _heldReply = reply;
                _heldLegacy = legacy;
                return Hold(fault.DelayMilliseconds);
            case FaultType.Slice:
                LogReply(client.ToArray(), reply!, scratch.Log, timestamp); // in the log before the first piece leaves
                _slicing = fault;
                _sliced = Framed(reply!, legacy);
                _piecesSent = 0;
                return SendNextPiece(scratch);
            case FaultType.Truncate:
                var framed = Framed(reply!, legacy);
                scratch.Output.Write(framed.AsSpan(0, fault.TruncatedLength(framed.Length)));
                DropWaiting();
                return Step.DrainThenClose;
            case FaultType.Garbage:
                scratch.Output.Write(fault.GarbageBytes());
                DropWaiting();
                return Step.DrainThenClose;
            case FaultType.Close:
                DropWaiting();
                return Step.DrainThenClose;
            case FaultType.Reset:
                DropWaiting();
                if (scratch.Output.Length == 0)
                {
                    return Step.Reset;
                }

                _resetAfterSend = true; // a reset discards what is unsent: the replies before it leave first
                return Hold(0);
            default:
                _stalled = true;
                DropWaiting();
                return Step.Receive; // open, unanswered: what comes is discarded (see Received)
        }
    }

    /// <summary>The Slice's next piece; then a pause (Sleep) before the one after it, or null when the reply is out.</summary>
    private Step? SendNextPiece(Scratch scratch)
    {
        var fault = _slicing!;
        var reply = _sliced!;
        var start = _piecesSent * fault.SliceBytes;
        scratch.Output.Write(reply.AsSpan(start, Math.Min(fault.SliceBytes, reply.Length - start)));
        _piecesSent++;
        if (_piecesSent < fault.PieceCount(reply.Length))
        {
            return Hold(fault.PauseMilliseconds(_piecesSent));
        }

        _slicing = null;
        _sliced = null;
        return null;
    }

    private Step Hold(int milliseconds)
    {
        _wakeAt = Stopwatch.GetTimestamp() + (milliseconds * Stopwatch.Frequency / 1000);
        return Step.Sleep;
    }

    /// <summary>The map's answers to the requests that waited out a hold (the handler's: <see cref="HandleAsync"/>).</summary>
    private Step AnswerWaiting(Scratch scratch)
    {
        var timestamp = BeginBatch(scratch.Log);
        var map = _context.KeyMap;
        var faults = _context.RequestFaults;
        int requests = 0, errors = 0;
        var waiting = _waiting!;
        while (_next < waiting.Count)
        {
            var (request, legacy) = waiting[_next];
            var held = _holdsRequest;
            _holdsRequest = false;
            requests += held ? 0 : 1; // a held request was counted when it came
            var status = RequestParser.Parse(request, out var clientLength);
            if (!held && faults is not null && status == ParseStatus.Ok && faults.Select(request.AsSpan(0, clientLength), request.AsSpan(clientLength + 1)) is { } fault)
            {
                if (AnswerFaulted(fault, request, clientLength, legacy, map, scratch, timestamp, ref errors) is { } stop)
                {
                    return Suspend(stop, scratch, requests, errors, late: false);
                }
            }
            else
            {
                errors += AnswerFromMap(request, status, clientLength, legacy, map, scratch, timestamp, logRequest: !held) ? 0 : 1;
            }

            _next++;
        }

        var tooLong = _tooLong is not null;
        if (tooLong)
        {
            requests++;
            errors++;
            AnswerTooLong(_tooLong, scratch, timestamp);
        }

        EndBatch(scratch.Log, requests, errors);
        DropWaiting();
        return NextStep(_endAfterHandling, tooLong);
    }

    /// <summary>A fault held or ended the waiting requests' batch at <c>_waiting[_next]</c>: its lines go to the log, and the step to the driver.</summary>
    private Step Suspend(Step stop, Scratch scratch, int requests, int errors, bool late)
    {
        if (stop == Step.Sleep && !_holdsRequest && !_resetAfterSend)
        {
            _next++; // answered (its reply held or sliced): the next one waits
        }

        EndBatch(scratch.Log, requests, errors, late);
        return stop == Step.Receive && _endAfterHandling ? Step.Close : stop;
    }

    /// <summary>A hold in the middle of a read: the requests after it (and a held request itself) are copied
    /// out, since the read's bytes are valid only during Received, to be answered when the hold ends.</summary>
    private void KeepRest(ref RequestFramer.Frames frames, ReadOnlySpan<byte> request, bool legacy, bool ended)
    {
        _waiting ??= new();
        _next = 0;
        if (_holdsRequest)
        {
            _waiting.Add((request.ToArray(), legacy));
        }

        TakeFrames(ref frames);
        _endAfterHandling = ended;
    }

    /// <summary>The waiting requests are not answered: done, or dropped by a fault that ends the connection.</summary>
    private void DropWaiting()
    {
        _waiting?.Clear();
        _next = 0;
        _tooLong = null;
        _holdsRequest = false;
    }

    private void LogReply(byte[]? client, byte[] reply, ByteBuffer log, string timestamp)
    {
        if (_context.Log is not null)
        {
            ConversationLine.WriteReply(log, timestamp, client, reply);
        }
    }

    private static byte[] Framed(byte[] reply, bool legacy)
    {
        if (legacy)
        {
            return reply;
        }

        var framed = new byte[reply.Length + 1];
        reply.CopyTo(framed, 0);
        framed[reply.Length] = (byte)'\n';
        return framed;
    }

    private static void WriteFramed(ByteBuffer output, byte[] reply, bool legacy)
    {
        output.Write(reply);
        if (!legacy)
        {
            output.WriteByte((byte)'\n');
        }
    }
}
