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
        FrameKind kind;
        while ((kind = frames.Next(out var request)) != FrameKind.None)
        {
            if (kind == FrameKind.TooLong)
            {
                _tooLong = request.ToArray();
                break;
            }

            _waiting.Add((request.ToArray(), kind == FrameKind.Legacy));
        }

        if (_waiting.Count == 0 && _tooLong is null)
        {
            return ended ? Step.Close : Step.Receive;
        }

        _endAfterHandling = ended;
        Volatile.Write(ref _handling, 1);
        return Step.Handle;
    }

    public async Task<Step> HandleAsync(Scratch scratch)
    {
        try
        {
            var timestamp = BeginBatch(scratch.Log);
            int requests = 0, errors = 0;
            foreach (var (request, legacy) in _waiting!)
            {
                requests++;
                var status = RequestParser.Parse(request, out var clientLength);
                byte[] reply;
                if (status == ParseStatus.Ok)
                {
                    var keyRequest = new KeyRequest(
                        Encoding.ASCII.GetString(request, 0, clientLength),
                        Encoding.ASCII.GetString(request, clientLength + 1, request.Length - clientLength - 1),
                        Id,
                        RemoteEndPoint);
                    var (text, failed) = await HandleOneAsync(keyRequest).ConfigureAwait(false);
                    errors += failed ? 1 : 0;
                    reply = Encoding.UTF8.GetBytes(text);
                    if (_context.Events.HasRequestListeners)
                    {
                        _context.Events.Served(this, keyRequest, text);
                    }
                }
                else
                {
                    errors++;
                    reply = status == ParseStatus.BadClient ? BadClientReply : MalformedReply;
                }

                WriteAnswer(request, status, clientLength, reply, legacy, scratch, timestamp);
            }

            if (_tooLong is not null)
            {
                requests++;
                errors++;
                AnswerTooLong(_tooLong, scratch, timestamp);
            }

            EndBatch(scratch.Log, requests, errors, late: true);
            return NextStep(_endAfterHandling, _tooLong is not null);
        }
        finally
        {
            _waiting!.Clear();
            Volatile.Write(ref _handling, 0);
        }
    }

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
