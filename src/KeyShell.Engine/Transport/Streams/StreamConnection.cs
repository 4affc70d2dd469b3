using System;
using System.Buffers;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Transport.Streams;

/// <summary>
/// The async driver: runs a session over one <see cref="Stream"/> (a socket's, or the SslStream over it),
/// whatever the session's role, on any platform. It awaits each send before reading more, so a peer that
/// does not read cannot make it buffer without end. Other threads end the connection by aborting its
/// socket (<see cref="Abort"/>). When the connection is over, the owner that started it hears the last step.
/// </summary>
internal sealed class StreamConnection : IConnection
{
    private const int ReceiveBufferSize = 16 * 1024;

    private const int Busy = 0;
    private const int Idle = 1;
    private const int Closing = 2;

    private readonly ISession _session;
    private readonly IConnectionOwner _owner;
    private readonly bool _waitWithoutBuffer;
    private IStreamSocket? _socket;
    private Stream? _stream;
    private CancellationTokenSource? _sleep;
    private TaskCompletionSource<bool>? _aborted;
    private int _state;
    private int _abortRequested;
    private int _closeWhenIdle;
    private int _blockedSince;

    private StreamConnection(ISession session, IStreamSocket socket, Stream stream, IConnectionOwner owner, bool waitWithoutBuffer)
    {
        _session = session;
        _socket = socket;
        _stream = stream;
        _owner = owner;
        _waitWithoutBuffer = waitWithoutBuffer;
    }

    public int BlockedSince => Volatile.Read(ref _blockedSince);

    /// <summary>
    /// Runs <paramref name="session"/> over <paramref name="stream"/>, which reads and writes
    /// <paramref name="socket"/> (directly, or through TLS); <paramref name="owner"/> hears the last step.
    /// With <paramref name="waitWithoutBuffer"/> (servers, whose connections mostly wait), it waits for the
    /// peer's next bytes with a zero-byte read and only then rents a buffer, so on .NET 8 a waiting connection
    /// holds none (as Kestrel does; .NET Framework's streams cannot wait without a buffer). The task never faults.
    /// </summary>
    public static Task Run(ISession session, IStreamSocket socket, Stream stream, IConnectionOwner owner, bool waitWithoutBuffer) =>
        new StreamConnection(session, socket, stream, owner, waitWithoutBuffer).RunAsync();

    /// <summary>As <see cref="Run"/>, returning the running connection.</summary>
    public static StreamConnection Start(ISession session, IStreamSocket socket, Stream stream, IConnectionOwner owner, bool waitWithoutBuffer)
    {
        var connection = new StreamConnection(session, socket, stream, owner, waitWithoutBuffer);
        _ = connection.RunAsync();
        return connection;
    }

    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        Volatile.Read(ref _socket)?.Abort(); // pending calls fail; the loop below reports it
        CancelSleep();
        Volatile.Read(ref _aborted)?.TrySetResult(true);
    }

    public void CloseWhenIdle()
    {
        // Sticky, and fenced against ReceiveAsync's entry to Idle: either it sees the flag there, or this sees Idle.
        Interlocked.Exchange(ref _closeWhenIdle, 1);
        if (TryClaimIdle())
        {
            CloseClaimed();
        }
    }

    // A request that arrives after the claim finds the state moved on and goes unanswered.
    public bool TryClaimIdle() => Interlocked.CompareExchange(ref _state, Closing, Idle) == Idle;

    /// <summary>Ends a claimed connection under its pending read. Sending is shut down first: the last replies
    /// may still be in the kernel's buffer, and .NET closes a socket with a call under way by a reset, which
    /// would discard them, unless sending was shut down.</summary>
    public void CloseClaimed()
    {
        EndSending();
        Volatile.Read(ref _socket)?.Abort();
    }

    // One async method for the connection's life, with the sends and reads inline and through the Memory
    // overloads: its state machine is allocated once, and a request costs no Task.
    private async Task RunAsync()
    {
        var scratch = new Scratch();
        Step step;
        try
        {
            step = _session.Opened(this, scratch);
            while (true)
            {
                if (scratch.Output.Length > 0 && step != Step.Reset)
                {
                    Volatile.Write(ref _blockedSince, Environment.TickCount | 1);
                    await TransportPlatform.WriteAsync(_stream!, scratch.Output.Array, scratch.Output.Length).ConfigureAwait(false);
                    Volatile.Write(ref _blockedSince, 0);
                    scratch.Output.Clear();
                }

                if (step == Step.Receive)
                {
                    if (!EnterIdle(scratch))
                    {
                        step = Step.Close;
                        break;
                    }

                    if (_waitWithoutBuffer)
                    {
                        await TransportPlatform.WaitForBytesAsync(_stream!).ConfigureAwait(false);
                    }

                    var buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
                    try
                    {
                        var count = await TransportPlatform.ReadAsync(_stream!, buffer).ConfigureAwait(false);
                        step = !LeaveIdle() ? Step.Close // claimed meanwhile (a stop, an idle close): the request goes unanswered, and unlogged
                            : count == 0 ? _session.Ended(scratch)
                            : _session.Received(buffer.AsSpan(0, count), scratch);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }
                else if (step == Step.Handle)
                {
                    step = await HandleAsync(scratch).ConfigureAwait(false);
                }
                else if (step == Step.Sleep)
                {
                    await SleepAsync().ConfigureAwait(false);
                    step = _session.Woken(scratch);
                }
                else
                {
                    if (step == Step.DrainThenClose)
                    {
                        await DrainAsync().ConfigureAwait(false);
                    }

                    break;
                }
            }
        }
        catch (Exception e)
        {
            CloseSocket();
            scratch.Clear(); // what a failed call wrote never reaches the peer
            step = Failed(e);
        }

        if (step == Step.Reset)
        {
            Volatile.Read(ref _socket)?.Reset();
        }
        else
        {
            EndSending();
        }

        CloseSocket();
        scratch.Release();
        try
        {
            _owner.ConnectionEnded(step == Step.Reset ? Step.Close : step);
        }
        catch (Exception)
        {
            // The owner's own failure: it reports its errors itself.
        }
    }

    /// <summary>Ends sending: the peer reads every reply, then the end (see <see cref="CloseClaimed"/>).</summary>
    private void EndSending()
    {
        try
        {
            Volatile.Read(ref _socket)?.ShutdownSend();
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is IOException)
        {
            // Aborted, or the peer has gone: nothing is left to deliver.
        }
    }

    /// <summary>The session's verdict on a failure: only a reconnect or a close (a session that throws is closed).</summary>
    private Step Failed(Exception error)
    {
        try
        {
            var next = _session.Failed(error);
            return next is Step.Reconnect or Step.ReconnectSoon ? next : Step.Close;
        }
        catch (Exception)
        {
            return Step.Close;
        }
    }

    /// <summary>Waiting for the peer: no buffer held meanwhile, and a stop's close may claim it. False when a
    /// stop asked for its close already.</summary>
    private bool EnterIdle(Scratch scratch)
    {
        scratch.Release();
        Interlocked.Exchange(ref _state, Idle); // a full fence: a stop's CloseWhenIdle sees Idle, or this sees its flag
        return !(Volatile.Read(ref _closeWhenIdle) == 1 && Interlocked.CompareExchange(ref _state, Closing, Idle) == Idle);
    }

    /// <summary>Bytes came: busy again, unless a close claimed the connection meanwhile.</summary>
    private bool LeaveIdle() => Interlocked.CompareExchange(ref _state, Busy, Idle) == Idle;

    /// <summary>
    /// The session's asynchronous work, which an abort does not wait for: the work gets buffers of its own,
    /// so that when it ends after the connection (its reply never sent), it writes into nothing the
    /// connection still uses.
    /// </summary>
    private async Task<Step> HandleAsync(Scratch scratch)
    {
        var own = new Scratch();
        var work = _session.HandleAsync(own);
        if (!work.IsCompleted)
        {
            // Published with a full fence before the abort's flag is read: Abort sets its flag, then reads this.
            var aborted = Volatile.Read(ref _aborted) ?? Publish(ref _aborted, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
            if (Volatile.Read(ref _abortRequested) == 1)
            {
                aborted.TrySetResult(true); // aborted before there was a signal to set
            }

            if (await Task.WhenAny(work, aborted.Task).ConfigureAwait(false) != work)
            {
                _ = work.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                throw new SocketException((int)SocketError.OperationAborted);
            }
        }

        var step = await work.ConfigureAwait(false);
        scratch.Output.Write(own.Output.Span);
        own.Release();
        return step;
    }

    private async Task SleepAsync()
    {
        var remaining = _session.WakeAt - System.Diagnostics.Stopwatch.GetTimestamp();
        if (remaining <= 0)
        {
            return;
        }

        var sleep = Volatile.Read(ref _sleep) ?? Publish(ref _sleep, new CancellationTokenSource());
        if (Volatile.Read(ref _abortRequested) == 1)
        {
            sleep.Cancel(); // aborted before there was a sleep to cancel
        }

        var milliseconds = (int)Math.Min(int.MaxValue, Math.Ceiling(remaining * 1000.0 / System.Diagnostics.Stopwatch.Frequency));
        await Task.Delay(milliseconds, sleep.Token).ConfigureAwait(false); // an abort ends it: the session hears Failed
    }

    /// <summary>Sets <paramref name="field"/> (null until now, and only this thread sets it) with a full fence.</summary>
    private static T Publish<T>(ref T? field, T value)
        where T : class
    {
        Interlocked.Exchange(ref field, value);
        return value;
    }

    private void CancelSleep()
    {
        try
        {
            Volatile.Read(ref _sleep)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The connection has ended.
        }
    }

    /// <summary>After an error that ends the connection: stop sending, then read and discard what the peer
    /// is still sending for a moment, so closing does not reset the connection before the reply is read.</summary>
    private async Task DrainAsync()
    {
        _socket!.ShutdownSend();
        var sink = new byte[4096]; // not pooled: a read may still be pending when we give up
        var deadline = Environment.TickCount + (int)Drain.Time.TotalMilliseconds;
        for (var discarded = 0; discarded < Drain.Limit;)
        {
            var remaining = deadline - Environment.TickCount;
            var read = _stream!.ReadAsync(sink, 0, sink.Length);
            if (remaining <= 0 || await Task.WhenAny(read, Task.Delay(remaining)).ConfigureAwait(false) != read)
            {
                _ = read.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted); // fails when closed below
                return;
            }

            var count = await read.ConfigureAwait(false);
            if (count == 0)
            {
                return;
            }

            discarded += count;
        }
    }

    private void CloseSocket()
    {
        var stream = Interlocked.Exchange(ref _stream, null);
        var socket = Interlocked.Exchange(ref _socket, null);
        try
        {
            stream?.Dispose();
        }
        catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
        {
            // A TLS stream's close_notify could not be sent: the peer is gone already.
        }

        socket?.Dispose();
        Volatile.Write(ref _blockedSince, 0);
        Interlocked.Exchange(ref _sleep, null)?.Dispose();
    }
}
