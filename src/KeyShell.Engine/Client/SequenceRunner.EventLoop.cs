using System;
using System.Diagnostics;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
#if NET
using KeyShell.Engine.Linux;
#endif

namespace KeyShell.Engine.Client;

/// <summary>
/// A sequence run from a Linux event loop, as the server's connections are: the loop's thread connects,
/// sends each request and reads its reply without waiting, with no thread-pool hop per reply (the hop was
/// most of the async client's cost). The same steps, failures and timeouts as <see cref="RunAsync"/>:
/// other threads stop the run with <see cref="Abort"/>, which shuts the socket down, and the loop's
/// thread then sees the failure and reports it.
/// </summary>
#if NET
internal sealed partial class SequenceRunner : IReadyHandler
{
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private EventLoop? _loop;
    private EventLoop.Registration? _registration;
    private volatile SocketDescriptor? _connection; // null between per-message connections
    private int _index;
    private byte[] _request = Array.Empty<byte>();
    private int _requestSent;
    private long _started;
    private Step _step;
    private bool _finishing;

    private enum Step
    {
        Connecting,
        Sending,
        Receiving,
    }

    /// <summary>Runs the sequence on <paramref name="loop"/>; the task ends with the sequence.</summary>
    public Task RunOnEventLoop(EventLoop loop)
    {
        _loop = loop;
        try
        {
            // On the caller's thread: its last act registers the socket, after which only the loop acts.
            NextRequest();
        }
        catch (Exception e)
        {
            Finish(e);
        }

        return _finished.Task;
    }

    /// <summary>Called on the loop's thread when the socket is ready. Never throws.</summary>
    public void OnReady()
    {
        try
        {
            switch (_step)
            {
                case Step.Connecting:
                    var error = LinuxSockets.PendingError(_connection!.Value);
                    if (error < 0)
                    {
                        throw new ConnectException(LinuxSockets.ToException(-error));
                    }

                    ThrowIfAborted();
                    _client.NotifySending(Sequence.ClientId, Sequence.Keys[_index]);
                    SendRequest();
                    break;
                case Step.Sending:
                    SendRequest();
                    break;
                default:
                    Receive();
                    break;
            }
        }
        catch (Exception e)
        {
            Finish(e);
        }
    }

    /// <summary>True on the thread of the loop this sequence runs on.</summary>
    public bool IsOnCurrentEventLoop => _loop is { IsCurrentThread: true };

    /// <summary>On the loop's thread, when the loop itself failed: the sequence cannot go on.</summary>
    public void FailOnEventLoop(Exception error)
    {
        if (!IsDone)
        {
            Finish(error);
        }
    }

    /// <summary>Starts request <see cref="_index"/>: on a new connection, or on the open one.</summary>
    private void NextRequest()
    {
        ThrowIfAborted();
        _request = BeginRequest(Sequence.Keys[_index]);
        _requestSent = 0;
        _started = Stopwatch.GetTimestamp();
        if (_connection is not null)
        {
            _client.NotifySending(Sequence.ClientId, Sequence.Keys[_index]);
            SendRequest();
            return;
        }

        var result = LinuxSockets.Connect(_client.EndPoint, out var descriptor);
        if (descriptor < 0)
        {
            throw new ConnectException(LinuxSockets.ToException(-result));
        }

        _connection = new SocketDescriptor(descriptor);

        ThrowIfAborted(); // an abort between the first check and the descriptor's assignment would be missed
        _buffered = 0;
        _step = Step.Connecting;
        _registration = _loop!.CreateRegistration(this, descriptor);
        _registration.Start(forWrites: true); // writable once connected (or failed): OnReady
    }

    private void SendRequest()
    {
        while (_requestSent < _request.Length)
        {
            var sent = LinuxSockets.Send(_connection!.Value, _request.AsSpan(_requestSent));
            if (sent == -LinuxSockets.EAGAIN)
            {
                if (_step != Step.Sending)
                {
                    _step = Step.Sending;
                    _registration!.WaitForWrites();
                }

                return;
            }

            if (sent < 0)
            {
                throw LinuxSockets.ToException(-sent);
            }

            _requestSent += sent;
        }

        if (_step != Step.Receiving)
        {
            _step = Step.Receiving;
            _registration!.WaitForReads();
        }

        if (_buffered > 0 && _client.Options.Framing == Framing.Line)
        {
            TakeLineReply(); // the server sent more than one line last time: the next reply may be here
        }
    }

    private void Receive()
    {
        var received = LinuxSockets.Receive(_connection!.Value, _buffer.AsSpan(_buffered));
        if (received == -LinuxSockets.EAGAIN)
        {
            return;
        }

        if (received < 0)
        {
            throw LinuxSockets.ToException(-received);
        }

        if (received == 0)
        {
            throw new ConnectionClosedException();
        }

        _buffered += received;
        if (_client.Options.Framing == Framing.Legacy)
        {
            // The seed's framing: what one read returns is the reply.
            var reply = Encoding.UTF8.GetString(_buffer, 0, _buffered);
            _buffered = 0;
            Answered(reply);
        }
        else
        {
            TakeLineReply();
        }
    }

    private void TakeLineReply()
    {
        if (TryTakeLine(out var reply))
        {
            Answered(reply);
        }
    }

    private void Answered(string reply)
    {
        var latency = Since(_started);
        InRequest = false;
        var request = _request;
        var index = _index;
        if (_client.Options.Connection == ConnectionMode.PerMessage)
        {
            CloseConnection();
        }

        _client.Deliver(new KeyReply(Sequence.ClientId, index, Sequence.Keys[index], reply, latency), request);
        if (++_index == Sequence.Keys.Count)
        {
            Finish(null);
            return;
        }

        NextRequest();
    }

    private void Finish(Exception? error)
    {
        if (_finishing)
        {
            return;
        }

        _finishing = true;
        if (error is not null && _index < Sequence.Keys.Count)
        {
            InRequest = false;
            _client.Fail(Classify(_index, error));
        }

        InRequest = false;
        IsDone = true;
        CloseConnection();
        _finished.TrySetResult(true);
    }

    private void CloseConnection()
    {
        _registration?.Unregister();
        _registration = null;
        _connection?.Close();
        _connection = null;
    }

    // The loop sees the hang-up and reports the abort.
    private void AbortOnEventLoop() => _connection?.Shutdown();
}
#else
internal sealed partial class SequenceRunner
{
    private static void AbortOnEventLoop()
    {
        // Event loops exist only in the .NET 8 build.
    }
}
#endif
