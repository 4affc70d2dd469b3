using System;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Client;

/// <summary>What a load run does (Measure-KeyServer's parameters).</summary>
public sealed partial class LoadOptions
{
    public string ComputerName { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 8080;

    /// <summary>Workers, each with its own connection (or its own stream of connections).</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>Requests in all; 0 runs for <see cref="Duration"/> instead.</summary>
    public long Count { get; set; } = 100_000;

    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(10);

    public ConnectionMode Connection { get; set; } = ConnectionMode.Persistent;

    /// <summary>Requests in flight per connection (Persistent, line framing).</summary>
    public int Pipeline { get; set; } = 1;

    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>How long a request (or a pipelined batch) may wait for its replies: past it, its requests
    /// count as errors and the worker reconnects.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>For tests: false runs the workers on the portable async path even where event loops run.</summary>
    internal bool UseEventLoops { get; set; } = true;
}

/// <summary>What a load run measured. Latencies are per request (per batch when pipelined).</summary>
public sealed class LoadResult
{
    internal LoadResult(LoadOptions options, long requests, long errors, TimeSpan elapsed, LatencyHistogram latency)
    {
        ComputerName = options.ComputerName;
        Port = options.Port;
        Concurrency = options.Concurrency;
        Connection = options.Connection;
        Pipeline = options.Pipeline;
        Requests = requests;
        Errors = errors;
        Elapsed = elapsed;
        RequestsPerSecond = elapsed.TotalSeconds > 0 ? (requests - errors) / elapsed.TotalSeconds : 0;
        P50 = Micro(latency.Percentile(50));
        P90 = Micro(latency.Percentile(90));
        P99 = Micro(latency.Percentile(99));
        Max = Micro(latency.Max);
    }

    public string ComputerName { get; }

    public int Port { get; }

    public int Concurrency { get; }

    public ConnectionMode Connection { get; }

    public int Pipeline { get; }

    /// <summary>Requests sent (answered or failed).</summary>
    public long Requests { get; }

    /// <summary>Requests that got an error reply, no reply, or no connection.</summary>
    public long Errors { get; }

    public TimeSpan Elapsed { get; }

    /// <summary>Successful requests per second.</summary>
    public double RequestsPerSecond { get; }

    public TimeSpan P50 { get; }

    public TimeSpan P90 { get; }

    public TimeSpan P99 { get; }

    public TimeSpan Max { get; }

    private static TimeSpan Micro(long microseconds) => TimeSpan.FromTicks(microseconds * 10);
}

/// <summary>
/// Loads any server that speaks KeyShell's protocol, as redis-benchmark does for Redis: workers send
/// <c>w&lt;n&gt; &lt;key&gt;</c> requests over persistent or per-request connections, optionally pipelined.
/// One timer enforces the request timeout, by closing the socket of a worker that waits too long (no
/// timer or token per request). On Linux the workers run on epoll event loops, as Invoke-KeyClient's
/// sequences do: a load generator that spends less of the machine leaves more of it to the server it
/// measures. Elsewhere each worker is an async task.
/// </summary>
public sealed partial class LoadGenerator
{
    private readonly LoadOptions _options;
    private long _completed;
    private long _errors;

    public LoadGenerator(LoadOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Concurrency < 1 || options.Pipeline < 1 || options.Count < 0 || options.Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Concurrency and Pipeline must be at least 1, Count at least 0, Timeout above 0.");
        }

        if (options.Pipeline > 1 && (options.Connection != ConnectionMode.Persistent || options.Framing != Framing.Line))
        {
            throw new ArgumentException("Pipelining needs persistent connections and line framing.", nameof(options));
        }
    }

    /// <summary>Requests finished so far (for progress).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    public async Task<LoadResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var endPoint = await KeyClient.ResolveAsync(_options.ComputerName, _options.Port).ConfigureAwait(false);
        var histograms = Enumerable.Range(0, _options.Concurrency).Select(_ => new LatencyHistogram()).ToArray();
        var deadline = _options.Count == 0 ? Stopwatch.GetTimestamp() + (long)(_options.Duration.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        var stopwatch = Stopwatch.StartNew();
#if NET
        if (_options.UseEventLoops && Linux.LinuxSockets.IsSupported)
        {
            await RunOnEventLoopsAsync(endPoint, deadline, histograms, cancellationToken).ConfigureAwait(false);
        }
        else
#endif
        {
            await RunOnTasksAsync(endPoint, deadline, histograms, cancellationToken).ConfigureAwait(false);
        }

        var elapsed = stopwatch.Elapsed;
        var all = new LatencyHistogram();
        foreach (var histogram in histograms)
        {
            all.Add(histogram);
        }

        return new LoadResult(_options, Completed, Interlocked.Read(ref _errors), elapsed, all);
    }

    /// <summary>Worker <paramref name="id"/>'s share of the requests (all it can send in a timed run).</summary>
    private long QuotaOf(int id) =>
        _options.Count == 0 ? long.MaxValue : (_options.Count / _options.Concurrency) + (id < _options.Count % _options.Concurrency ? 1 : 0);

    /// <summary>Worker <paramref name="id"/>'s ten requests, one per key, in the options' framing.</summary>
    private byte[][] RequestsOf(int id)
    {
        var terminator = _options.Framing == Framing.Line ? "\n" : string.Empty;
        return Enumerable.Range(0, 10).Select(k => Encoding.ASCII.GetBytes($"w{id} {(id + k) % 10}{terminator}")).ToArray();
    }

    /// <summary>Copies the requests <paramref name="done"/> onwards into <paramref name="batch"/>; returns the length.</summary>
    private static int FillBatch(byte[][] requests, long done, int count, byte[] batch)
    {
        var length = 0;
        for (var i = 0; i < count; i++)
        {
            var request = requests[(done + i) % 10];
            Buffer.BlockCopy(request, 0, batch, length, request.Length);
            length += request.Length;
        }

        return length;
    }

    /// <summary>Counts one batch's successes and failures into the result (and the latency, per request).</summary>
    private void Record(LatencyHistogram latency, long started, int count, int errors)
    {
        var micros = (Stopwatch.GetTimestamp() - started) * 1_000_000 / Stopwatch.Frequency;
        for (var i = 0; i < count; i++)
        {
            latency.Record(micros);
        }

        Interlocked.Add(ref _completed, count);
        if (errors > 0)
        {
            Interlocked.Add(ref _errors, errors);
        }
    }

    private async Task RunOnTasksAsync(IPEndPoint endPoint, long deadline, LatencyHistogram[] histograms, CancellationToken cancellationToken)
    {
        var states = Enumerable.Range(0, _options.Concurrency).Select(_ => new WorkerState()).ToArray();
        using var watchdog = new Timer(_ => TimeOutLateWorkers(states), null, 100, 100);
        var workers = Enumerable.Range(0, _options.Concurrency).Select(id =>
            Task.Run(() => WorkAsync(id, states[id], endPoint, QuotaOf(id), deadline, histograms[id], cancellationToken)));
        await Task.WhenAll(workers).ConfigureAwait(false);
    }

    private static void TimeOutLateWorkers(WorkerState[] states)
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var state in states)
        {
            state.TimeOutIfLate(now);
        }
    }

    private async Task WorkAsync(int id, WorkerState state, IPEndPoint endPoint, long quota, long deadline, LatencyHistogram latency, CancellationToken cancellationToken)
    {
        var requests = RequestsOf(id);
        var buffer = new byte[64 * 1024];
        var batch = new byte[requests.Max(r => r.Length) * _options.Pipeline];
        var timeout = (long)(_options.Timeout.TotalSeconds * Stopwatch.Frequency);
        using var cancel = cancellationToken.Register(state.CloseSocket);
        long done = 0;
        try
        {
            while (done < quota && Stopwatch.GetTimestamp() < deadline && !cancellationToken.IsCancellationRequested)
            {
                var count = (int)Math.Min(_options.Pipeline, quota - done);
                var length = FillBatch(requests, done, count, batch);
                var started = Stopwatch.GetTimestamp();
                int errors;
                try
                {
                    var socket = state.Begin(started + timeout, endPoint);
                    if (!socket.Connected)
                    {
                        await socket.ConnectAsync(endPoint).ConfigureAwait(false);
                    }

                    await SocketIo.SendAsync(socket, batch, 0, length).ConfigureAwait(false);
                    errors = await ReadRepliesAsync(socket, buffer, count).ConfigureAwait(false);
                    state.End(closeSocket: _options.Connection == ConnectionMode.PerMessage);
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
                {
                    errors = count;
                    var timedOut = state.End(closeSocket: true);
                    if (!timedOut && !cancellationToken.IsCancellationRequested)
                    {
                        await Task.Delay(10).ConfigureAwait(false); // a refused server: do not spin
                    }
                }

                Record(latency, started, count, errors);
                done += count;
            }
        }
        finally
        {
            state.CloseSocket();
        }
    }

    /// <summary>Reads <paramref name="count"/> replies; returns how many were errors.</summary>
    private async Task<int> ReadRepliesAsync(Socket socket, byte[] buffer, int count)
    {
        if (_options.Framing == Framing.Legacy)
        {
            var received = await SocketIo.ReceiveAsync(socket, buffer, 0, buffer.Length).ConfigureAwait(false);
            if (received == 0)
            {
                throw new InvalidOperationException("The server closed the connection.");
            }

            return buffer[0] == (byte)'E' ? 1 : 0;
        }

        var replies = new LineReplies();
        while (replies.Count < count)
        {
            var received = await SocketIo.ReceiveAsync(socket, buffer, 0, buffer.Length).ConfigureAwait(false);
            if (received == 0)
            {
                throw new InvalidOperationException("The server closed the connection.");
            }

            replies.Add(buffer.AsSpan(0, received));
        }

        return replies.Errors;
    }

    /// <summary>Counts line-framed replies as their bytes arrive, and those that are errors.</summary>
    private struct LineReplies
    {
        private bool _inLine;

        public int Count { get; private set; }

        public int Errors { get; private set; }

        public void Add(ReadOnlySpan<byte> bytes)
        {
            foreach (var b in bytes)
            {
                if (!_inLine && b == (byte)'E')
                {
                    Errors++; // every error reply starts with "Error:"
                }

                _inLine = b != (byte)'\n';
                Count += _inLine ? 0 : 1;
            }
        }
    }

    /// <summary>
    /// A worker's socket and the deadline of its request in flight. The lock makes the watchdog's "late?
    /// then close" one step, so it never closes a socket the worker has moved on from.
    /// </summary>
    private sealed class WorkerState
    {
        private readonly object _gate = new();
        private Socket? _socket;
        private long _deadline; // Stopwatch timestamp; 0 while no request is in flight
        private bool _timedOut;

        /// <summary>Starts a request: the open socket, or a new one to connect.</summary>
        public Socket Begin(long deadline, IPEndPoint endPoint)
        {
            lock (_gate)
            {
                _socket ??= new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                _deadline = deadline;
                return _socket;
            }
        }

        /// <summary>Ends the request in flight; returns whether the watchdog ended it first.</summary>
        public bool End(bool closeSocket)
        {
            lock (_gate)
            {
                var timedOut = _timedOut;
                _timedOut = false;
                _deadline = 0;
                if (closeSocket)
                {
                    _socket?.Dispose();
                    _socket = null;
                }

                return timedOut;
            }
        }

        public void TimeOutIfLate(long now)
        {
            lock (_gate)
            {
                if (_deadline != 0 && now - _deadline > 0 && _socket is not null)
                {
                    _timedOut = true;
                    _socket.Dispose(); // the worker's pending call fails: its requests count as errors
                }
            }
        }

        public void CloseSocket()
        {
            lock (_gate)
            {
                _socket?.Dispose();
            }
        }
    }
}
