using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Client;

/// <summary>
/// Sends one sequence's keys in order, one request in flight, and reads each reply before the next key
/// goes out (FIFO). Timeouts and cancellation are enforced from outside, by <see cref="Abort"/>, which
/// closes the socket under the pending call: no per-request timer or token is allocated.
/// </summary>
internal sealed partial class SequenceRunner
{
    private const int MaxReplyLength = 64 * 1024;

    private readonly KeyClient _client;
    private readonly byte[] _buffer = new byte[4096];
    private byte[] _reply = new byte[4096];
    private volatile Socket? _socket;
    private int _abortReason = -1; // a FailureKind, once aborted
    private int _buffered;
    private int _replyLength; // bytes of a line reply gathered in _reply so far

    public SequenceRunner(KeyClient client, ClientSequence sequence)
    {
        _client = client;
        Sequence = sequence;
    }

    public ClientSequence Sequence { get; }

    /// <summary>Environment.TickCount by which the request in flight must be answered; valid while <see cref="InRequest"/>.</summary>
    public int Deadline { get; private set; }

    public bool InRequest { get; private set; }

    public bool IsDone { get; private set; }

    /// <summary>Stops the sequence: the pending call fails and is reported as <paramref name="reason"/>.</summary>
    public void Abort(FailureKind reason)
    {
        Interlocked.CompareExchange(ref _abortReason, (int)reason, -1);
        _socket?.Dispose();
        AbortOnEventLoop();
    }

    public async Task RunAsync()
    {
        var options = _client.Options;
        var index = 0;
        try
        {
            for (; index < Sequence.Keys.Count; index++)
            {
                ThrowIfAborted();
                var key = Sequence.Keys[index];
                var request = BeginRequest(key);
                var started = Stopwatch.GetTimestamp();
                var socket = _socket ?? await ConnectAsync().ConfigureAwait(false);
                _client.NotifySending(Sequence.ClientId, key);
                await SocketIo.SendAsync(socket, request, 0, request.Length).ConfigureAwait(false);
                var reply = await ReadReplyAsync(socket).ConfigureAwait(false);
                var latency = Since(started);
                InRequest = false;
                if (options.Connection == ConnectionMode.PerMessage)
                {
                    CloseSocket();
                }

                _client.Deliver(new KeyReply(Sequence.ClientId, index, key, reply, latency), request);
            }
        }
        catch (Exception e) when (index < Sequence.Keys.Count)
        {
            InRequest = false;
            _client.Fail(Classify(index, e));
        }
        finally
        {
            InRequest = false;
            IsDone = true;
            CloseSocket();
        }
    }

    /// <summary>The request for <paramref name="key"/>, in the options' framing; starts its timeout.</summary>
    private byte[] BeginRequest(string key)
    {
        var request = Encoding.ASCII.GetBytes(_client.Options.Framing == Framing.Line
            ? Sequence.ClientId + " " + key + "\n"
            : Sequence.ClientId + " " + key);
        Deadline = Environment.TickCount + (int)_client.Options.Timeout.TotalMilliseconds;
        InRequest = true;
        return request;
    }

    private static TimeSpan Since(long started) =>
        TimeSpan.FromTicks((long)((Stopwatch.GetTimestamp() - started) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(_client.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        ThrowIfAborted(); // an abort between the check and _socket's assignment would be missed otherwise
        try
        {
            await socket.ConnectAsync(_client.EndPoint).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
        {
            throw new ConnectException(e);
        }

        _buffered = 0;
        return socket;
    }

    private async Task<string> ReadReplyAsync(Socket socket)
    {
        if (_client.Options.Framing == Framing.Legacy)
        {
            var count = await SocketIo.ReceiveAsync(socket, _buffer, 0, _buffer.Length).ConfigureAwait(false);
            if (count == 0)
            {
                throw new ConnectionClosedException();
            }

            return Encoding.UTF8.GetString(_buffer, 0, count);
        }

        _replyLength = 0;
        string reply;
        while (!TryTakeLine(out reply))
        {
            var count = await SocketIo.ReceiveAsync(socket, _buffer, 0, _buffer.Length).ConfigureAwait(false);
            if (count == 0)
            {
                throw new ConnectionClosedException();
            }

            _buffered = count;
        }

        return reply;
    }

    /// <summary>
    /// Takes one reply line out of what was received, keeping what follows it; until its LF arrives, keeps
    /// the part received so far (up to <see cref="MaxReplyLength"/>) and returns false.
    /// </summary>
    private bool TryTakeLine(out string reply)
    {
        var lf = Array.IndexOf(_buffer, (byte)'\n', 0, _buffered);
        if (lf < 0)
        {
            Append(_buffered);
            _buffered = 0;
            reply = string.Empty;
            return false;
        }

        Append(lf);
        var end = _replyLength > 0 && _reply[_replyLength - 1] == (byte)'\r' ? _replyLength - 1 : _replyLength;
        _buffered -= lf + 1;
        Buffer.BlockCopy(_buffer, lf + 1, _buffer, 0, _buffered);
        reply = Encoding.UTF8.GetString(_reply, 0, end);
        _replyLength = 0;
        return true;
    }

    private void Append(int count)
    {
        if (_replyLength + count > MaxReplyLength)
        {
            throw new ProtocolException($"The reply is longer than {MaxReplyLength} bytes.");
        }

        if (_replyLength + count > _reply.Length)
        {
            Array.Resize(ref _reply, Math.Max(_reply.Length * 2, _replyLength + count));
        }

        Buffer.BlockCopy(_buffer, 0, _reply, _replyLength, count);
        _replyLength += count;
    }

    private void ThrowIfAborted()
    {
        if (Volatile.Read(ref _abortReason) >= 0)
        {
            throw new OperationCanceledException();
        }
    }

    private void CloseSocket()
    {
        var socket = _socket;
        _socket = null;
        socket?.Dispose();
    }

    private KeyClientFailure Classify(int index, Exception e)
    {
        var endPoint = _client.DisplayEndPoint;
        var key = Sequence.Keys[index];
        var progress = $"sequence '{Sequence.ClientId}' stopped at key {key} (index {index}), {index} of {Sequence.Keys.Count} keys answered";
        var aborted = Volatile.Read(ref _abortReason);
        if (aborted >= 0)
        {
            var kind = (FailureKind)aborted;
            var why = kind switch
            {
                FailureKind.Timeout => $"No reply from {endPoint} within {_client.Options.Timeout.TotalSeconds:0.###} s",
                FailureKind.ServerGone => $"The server at {endPoint} went away",
                _ => "The run was stopped",
            };
            return new KeyClientFailure(Sequence, index, kind, $"{why}: {progress}.", e);
        }

        return e switch
        {
            ConnectException c => new KeyClientFailure(Sequence, index, FailureKind.ConnectFailed,
                $"Cannot connect to {endPoint} ({Describe(c.InnerException!)}): {progress}.", c.InnerException),
            ProtocolException p => new KeyClientFailure(Sequence, index, FailureKind.ProtocolError,
                $"{p.Message} From {endPoint}: {progress}.", p),
            _ => new KeyClientFailure(Sequence, index, FailureKind.ConnectionLost,
                $"The connection to {endPoint} was lost before the reply ({Describe(e)}): {progress}.", e),
        };
    }

    private static string Describe(Exception e) => e switch
    {
        SocketException s when s.SocketErrorCode == SocketError.ConnectionRefused => "connection refused",
        SocketException s when s.SocketErrorCode == SocketError.ConnectionReset => "connection reset",
        SocketException s => s.SocketErrorCode.ToString(),
        ConnectionClosedException => "closed by the server",
        _ => e.Message,
    };

    private sealed class ConnectException : Exception
    {
        public ConnectException(Exception inner)
            : base(inner.Message, inner)
        {
        }
    }

    private sealed class ConnectionClosedException : Exception
    {
        public ConnectionClosedException()
            : base("The server closed the connection.")
        {
        }
    }

    private sealed class ProtocolException : Exception
    {
        public ProtocolException(string message)
            : base(message)
        {
        }
    }
}
