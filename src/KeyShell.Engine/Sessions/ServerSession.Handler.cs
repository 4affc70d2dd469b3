using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Sessions;

/// <summary>
/// Answering through the server's handler (a script block, in the module): the read's requests are
/// copied out (they are awaited one by one, and spans cannot cross an await), then handed over one at
/// a time, so replies keep request order, while the driver waits.
/// </summary>
internal sealed partial class ServerSession
{
    private List<(byte[] Request, bool Legacy)>? _waiting; // made on a handler server's first request
    private byte[]? _tooLong; // a too-long request after the others: logged by its head, answered last
    private bool _endAfterHandling;
    private int _handling;

    private Step TakeForHandler(RequestFramer.Frames frames, bool ended)
    {
        _waiting ??= new List<(byte[] Request, bool Legacy)>();
        TakeFrames(ref frames);
        if (_waiting.Count == 0 && _tooLong is null)
        {
            return ended ? Step.Close : Step.Receive;
        }

        _endAfterHandling = ended;
        Volatile.Write(ref _handling, 1);
        return Step.Handle;
    }

    /// <summary>Copies the read's remaining requests into <c>_waiting</c> (a too-long one into <c>_tooLong</c>).</summary>
    private void TakeFrames(ref RequestFramer.Frames frames)
    {
        FrameKind kind;
        while ((kind = frames.Next(out var request)) != FrameKind.None)
        {
            if (kind == FrameKind.TooLong)
            {
                _tooLong = request.ToArray();
                break;
            }

            _waiting!.Add((request.ToArray(), kind == FrameKind.Legacy));
        }
    }

    /// <summary>
    /// Answers the waiting requests through the handler, in order, from <c>_next</c>. A fault that holds
    /// (a Delay, a Slice's pauses) returns the driver's sleep; the rest are answered on waking (Woken hands
    /// back here). A Request-direction fault takes the request before the handler sees it (a Delay's after
    /// its hold); a Reply-direction one takes the handler's reply.
    /// </summary>
    public async Task<Step> HandleAsync(Scratch scratch)
    {
        try
        {
            var timestamp = BeginBatch(scratch.Log);
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
                var fault = !held && faults is not null && status == ParseStatus.Ok
                    ? faults.Select(request.AsSpan(0, clientLength), request.AsSpan(clientLength + 1))
                    : null;
                Step? stop;
                if (fault is not null)
                {
                    RecordFault(fault, request, clientLength, scratch.Log, timestamp);
                }

                if (fault is not null && ActsBeforeAnswer(fault))
                {
                    stop = ActBeforeAnswer(fault, scratch, timestamp);
                }
                else
                {
                    byte[] reply;
                    if (status == ParseStatus.Ok && _context.Handler is IRequestForwarder forwarder)
                    {
                        bool failed;
                        (reply, failed) = await forwarder.ForwardAsync(Id, request, _context.HandlerTimeout, CancellationToken.None).ConfigureAwait(false);
                        errors += failed ? 1 : 0;
                        if (fault is null && _context.Events.HasRequestListeners)
                        {
                            _context.Events.Served(this, ToKeyRequest(request, clientLength), Encoding.UTF8.GetString(reply));
                        }
                    }
                    else if (status == ParseStatus.Ok)
                    {
                        var keyRequest = ToKeyRequest(request, clientLength);
                        var (text, failed) = await HandleOneAsync(keyRequest).ConfigureAwait(false);
                        errors += failed ? 1 : 0;
                        reply = Encoding.UTF8.GetBytes(text);
                        if (fault is null && _context.Events.HasRequestListeners)
                        {
                            _context.Events.Served(this, keyRequest, text);
                        }
                    }
                    else
                    {
                        errors++;
                        reply = status == ParseStatus.BadClient ? BadClientReply : MalformedReply;
                    }

                    if (fault is null)
                    {
                        WriteAnswer(request, status, clientLength, reply, legacy, scratch, timestamp, logRequest: !held);
                        stop = null;
                    }
                    else
                    {
                        stop = Deliver(fault, request.AsSpan(0, clientLength), reply, legacy, scratch, timestamp);
                    }
                }

                if (stop is { } step)
                {
                    return Suspend(step, scratch, requests, errors, late: true);
                }

                _next++;
            }

            if (_tooLong is not null)
            {
                requests++;
                errors++;
                AnswerTooLong(_tooLong, scratch, timestamp);
            }

            EndBatch(scratch.Log, requests, errors, late: true);
            var tooLong = _tooLong is not null;
            DropWaiting();
            return NextStep(_endAfterHandling, tooLong);
        }
        finally
        {
            Volatile.Write(ref _handling, 0);
        }
    }

    private KeyRequest ToKeyRequest(byte[] request, int clientLength) =>
        new(
            Encoding.ASCII.GetString(request, 0, clientLength),
            Encoding.ASCII.GetString(request, clientLength + 1, request.Length - clientLength - 1),
            Id,
            RemoteEndPoint);

    /// <summary>Runs the handler with the server's timeout; the reply is one line, and errors are replies.</summary>
    private async Task<(string Reply, bool Failed)> HandleOneAsync(KeyRequest request)
    {
        // Two tokens: the handler's is cancelled only on a timeout (it stops the run); the timer's ends the
        // timer. Cancelling the handler's after a success could stop whatever the handler does next.
        using var stopHandler = new CancellationTokenSource();
        using var stopTimer = new CancellationTokenSource();
        Task<string> work;
        try
        {
            work = _context.Handler!.HandleAsync(request, stopHandler.Token);
        }
        catch (Exception e)
        {
            return (Replies.HandlerFailed(e.Message), true);
        }

        var timeout = Task.Delay(_context.HandlerTimeout, stopTimer.Token);
        if (await Task.WhenAny(work, timeout).ConfigureAwait(false) != work)
        {
            stopHandler.Cancel();
            _ = work.ContinueWith(static t => t.Exception, TaskScheduler.Default); // observed: a late failure is not news
            return ((_context.Handler as IConnectionAwareHandler)?.TimedOutReply ?? Replies.HandlerTimedOut, true);
        }

        stopTimer.Cancel();
        try
        {
            var reply = Replies.OneLine(await work.ConfigureAwait(false) ?? string.Empty);
            return (reply, reply.StartsWith(Replies.ErrorPrefix, StringComparison.Ordinal));
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerException: { } first } ? first : e;
            return (Replies.HandlerFailed(inner.Message), true);
        }
    }
}
