#if NET
using System;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Linux;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Client;

/// <summary>The load run on epoll event loops: each worker a state machine the loop's thread drives.</summary>
public sealed partial class LoadGenerator
{
    private async Task RunOnEventLoopsAsync(IPEndPoint endPoint, long deadline, LatencyHistogram[] histograms, CancellationToken cancellationToken)
    {
        var loops = new EventLoop[Math.Min(Math.Min(16, Environment.ProcessorCount), _options.Concurrency)];
        LoopWorker[] workers = Array.Empty<LoopWorker>();
        try
        {
            for (var i = 0; i < loops.Length; i++)
            {
                loops[i] = new EventLoop($"KeyShell load loop {i + 1}", _ => StopWorkersOnCurrentLoop(workers));
            }

            // Replies are counted as they arrive and never kept, so a loop's workers, served one at a time on
            // its thread, share one receive buffer (10,000 workers need 2 buffers, not 10,000).
            var buffers = loops.Select(_ => new byte[64 * 1024]).ToArray();
            workers = Enumerable.Range(0, _options.Concurrency)
                .Select(id => new LoopWorker(this, id, loops[id % loops.Length], buffers[id % loops.Length], endPoint, QuotaOf(id), deadline, histograms[id]))
                .ToArray();
            using var watchdog = new Timer(_ => TimeOutLateWorkers(workers), null, 100, 100);
            using var cancel = cancellationToken.Register(() => CancelWorkers(workers));
            foreach (var worker in workers)
            {
                worker.Start();
            }

            await Task.WhenAll(workers.Select(w => w.Finished)).ConfigureAwait(false);
        }
        finally
        {
            foreach (var loop in loops)
            {
                loop?.Dispose();
            }
        }
    }

    /// <summary>On a loop's thread, when the loop itself failed: its workers cannot go on.</summary>
    private static void StopWorkersOnCurrentLoop(LoopWorker[] workers)
    {
        foreach (var worker in workers.Where(w => w.IsOnCurrentEventLoop))
        {
            worker.Stop();
        }
    }

    private static void TimeOutLateWorkers(LoopWorker[] workers)
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var worker in workers)
        {
            worker.TimeOutIfLate(now);
        }
    }

    private static void CancelWorkers(LoopWorker[] workers)
    {
        foreach (var worker in workers)
        {
            worker.Cancel();
        }
    }

    /// <summary>
    /// One worker: connect (non-blocking), send a batch, count its replies, again. Only its loop's thread
    /// acts on it while it is registered; the watchdog and a cancel only shut its socket down, under the
    /// gate, and the loop sees the hang-up. After a refused connection it waits 10 ms on a timer, off the
    /// loop, so that a server that is down is not hammered.
    /// </summary>
    private sealed class LoopWorker : IReadyHandler
    {
        private readonly LoadGenerator _generator;
        private readonly EventLoop _loop;
        private readonly IPEndPoint _endPoint;
        private readonly long _quota;
        private readonly long _runDeadline;
        private readonly LatencyHistogram _latency;
        private readonly byte[][] _requests;
        private readonly byte[] _batch;
        private readonly byte[] _buffer; // the loop's, shared with its other workers
        private readonly long _timeout;
        private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly object _gate = new();
        private SocketDescriptor? _connection; // under _gate when set or shut down
        private EventLoop.Registration? _registration;
        private long _requestDeadline; // under _gate; 0 while no batch is in flight
        private bool _timedOut;        // under _gate
        private volatile bool _cancelled;
        private long _done;
        private int _count;
        private int _length;
        private int _sent;
        private long _started;
        private bool _connecting;
        private bool _watchingWrites; // the registration waits for writability (connecting, or a full send buffer)
        private bool _awaitingReplies;
        private LineReplies _replies;
        private int _finishing;

        public LoopWorker(LoadGenerator generator, int id, EventLoop loop, byte[] buffer, IPEndPoint endPoint, long quota, long runDeadline, LatencyHistogram latency)
        {
            _generator = generator;
            _loop = loop;
            _buffer = buffer;
            _endPoint = endPoint;
            _quota = quota;
            _runDeadline = runDeadline;
            _latency = latency;
            _requests = generator.RequestsOf(id);
            _batch = new byte[_requests.Max(r => r.Length) * generator._options.Pipeline];
            _timeout = (long)(generator._options.Timeout.TotalSeconds * Stopwatch.Frequency);
        }

        public Task Finished => _finished.Task;

        public bool IsOnCurrentEventLoop => _loop.IsCurrentThread;

        private LoadOptions Options => _generator._options;

        /// <summary>Starts the first batch; on the caller's thread, whose last act registers the socket.</summary>
        public void Start() => NextBatchOrRetry();

        public void OnReady()
        {
            try
            {
                if (_connecting)
                {
                    _connecting = false;
                    if (LinuxSockets.PendingError(_connection!.Value) < 0)
                    {
                        BatchFailed();
                        return;
                    }
                }

                if (_awaitingReplies)
                {
                    Receive();
                }
                else
                {
                    Send();
                }
            }
            catch (Exception)
            {
                // Not expected (the calls above report errno, not exceptions); the batch fails, the worker goes on.
                BatchFailed();
            }
        }

        public void TimeOutIfLate(long now)
        {
            lock (_gate)
            {
                if (_requestDeadline != 0 && now - _requestDeadline > 0)
                {
                    _timedOut = true;
                    _connection?.Shutdown(); // the loop sees the hang-up: the batch counts as errors
                }
            }
        }

        public void Cancel()
        {
            _cancelled = true;
            lock (_gate)
            {
                _connection?.Shutdown();
            }
        }

        /// <summary>On the loop's thread, when the loop failed: ends the worker.</summary>
        public void Stop()
        {
            _cancelled = true;
            Finish();
        }

        /// <summary>The next batch, on the open connection or a new one; or the end, when the worker is done.</summary>
        private void NextBatch()
        {
            if (_done >= _quota || _cancelled || Stopwatch.GetTimestamp() >= _runDeadline)
            {
                Finish();
                return;
            }

            _count = (int)Math.Min(Options.Pipeline, _quota - _done);
            _length = FillBatch(_requests, _done, _count, _batch);
            _sent = 0;
            _replies = default;
            _awaitingReplies = false;
            _started = Stopwatch.GetTimestamp();
            lock (_gate)
            {
                _requestDeadline = _started + _timeout;
            }

            if (_connection is not null)
            {
                Send();
                return;
            }

            var result = LinuxSockets.Connect(_endPoint, out var descriptor);
            if (descriptor < 0)
            {
                BatchFailed(); // refused at once (or out of descriptors)
                return;
            }

            lock (_gate)
            {
                _connection = new SocketDescriptor(descriptor);
            }

            if (_cancelled)
            {
                BatchFailed(); // cancelled before the connection was there to shut down
                return;
            }

            _connecting = result != 0;
            _watchingWrites = true;
            _registration = _loop.CreateRegistration(this, descriptor);
            _registration.Start(forWrites: true); // writable once connected (or failed): OnReady sends
        }

        private void Send()
        {
            while (_sent < _length)
            {
                var sent = LinuxSockets.Send(_connection!.Value, _batch.AsSpan(_sent, _length - _sent));
                if (sent == -LinuxSockets.EAGAIN)
                {
                    if (!_watchingWrites)
                    {
                        _watchingWrites = true;
                        _registration!.WaitForWrites();
                    }

                    return;
                }

                if (sent < 0)
                {
                    BatchFailed();
                    return;
                }

                _sent += sent;
            }

            _awaitingReplies = true;
            if (_watchingWrites)
            {
                _watchingWrites = false; // once per connection, or after a full send buffer: not per batch
                _registration!.WaitForReads();
            }
        }

        private void Receive()
        {
            var received = LinuxSockets.Receive(_connection!.Value, _buffer);
            if (received == -LinuxSockets.EAGAIN)
            {
                return;
            }

            if (received <= 0)
            {
                BatchFailed(); // reset, closed, or shut down by the watchdog or a cancel
                return;
            }

            if (Options.Framing == Framing.Legacy)
            {
                BatchDone(_buffer[0] == (byte)'E' ? 1 : 0); // the seed's framing: one read is the reply
                return;
            }

            _replies.Add(_buffer.AsSpan(0, received));
            if (_replies.Count >= _count)
            {
                BatchDone(_replies.Errors);
            }
        }

        private void BatchDone(int errors)
        {
            EndBatch();
            _generator.Record(_latency, _started, _count, errors);
            _done += _count;
            if (Options.Connection == ConnectionMode.PerMessage)
            {
                CloseConnection();
            }

            NextBatchOrRetry();
        }

        private void BatchFailed()
        {
            var timedOut = EndBatch();
            _generator.Record(_latency, _started, _count, _count);
            _done += _count;
            CloseConnection();
            if (timedOut || _cancelled)
            {
                NextBatchOrRetry(); // a late server is tried again at once; a cancel finishes there
                return;
            }

            // A refused or broken connection: wait a little, off the loop, rather than spin on it.
            _ = Task.Delay(10).ContinueWith(_ => NextBatchOrRetry(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        /// <summary>The next batch; the kernel refusing the registration counts as a failed batch, not a failed loop.</summary>
        private void NextBatchOrRetry()
        {
            try
            {
                NextBatch();
            }
            catch (Exception)
            {
                BatchFailed(); // the kernel refused the registration: this batch fails, the next is retried
            }
        }

        /// <summary>Ends the batch in flight for the watchdog; returns whether the watchdog ended it first.</summary>
        private bool EndBatch()
        {
            lock (_gate)
            {
                var timedOut = _timedOut;
                _timedOut = false;
                _requestDeadline = 0;
                return timedOut;
            }
        }

        private void CloseConnection()
        {
            _registration?.Unregister();
            _registration = null;
            _connecting = false;
            lock (_gate)
            {
                _connection?.Close();
                _connection = null;
            }
        }

        private void Finish()
        {
            if (Interlocked.Exchange(ref _finishing, 1) == 0)
            {
                CloseConnection();
                _finished.TrySetResult(true);
            }
        }
    }
}
#endif
