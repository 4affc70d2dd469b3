using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>
/// Runs Start-KeyServer's -Handler script block for each request, on a pool of background runspaces
/// (-ThrottleLimit of them), as Pode serves routes. Each runspace runs -InitializationScript once, then
/// one long-lived pipeline that takes requests from a shared queue and calls the handler inline.
/// Measured here: a PowerShell.Invoke per request costs about 300 µs, a call inside a running pipeline
/// about 7 µs. The handler gets the request, then -ArgumentList; its output, joined with spaces, is the
/// reply. A run past the handler timeout is stopped (its pipeline is stopped and started again).
/// </summary>
internal sealed class ScriptBlockHandler : IKeyRequestHandler, IDisposable
{
    // The worker loop. $Feed blocks until a request comes and ends when the server stops.
    private const string WorkerLoop = @"
param($Feed, $HandlerText, $Arguments)
$handler = [scriptblock]::Create($HandlerText)
foreach ($work in $Feed) {
    try { $work.Complete(@(& $handler $work.Request @Arguments)) }
    catch { $work.Fail($_.Exception) }
}";

    private readonly BlockingCollection<HandlerWork> _queue = new();
    private readonly Worker[] _workers;

    public ScriptBlockHandler(ScriptBlock handler, object[]? arguments, ScriptBlock? initialization, int throttleLimit)
    {
        _workers = new Worker[throttleLimit];
        try
        {
            for (var i = 0; i < throttleLimit; i++)
            {
                _workers[i] = new Worker(_queue, handler.ToString(), arguments ?? Array.Empty<object>(), initialization, i);
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        foreach (var worker in _workers)
        {
            worker.Start();
        }
    }

    public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
    {
        var work = new HandlerWork(request);
        work.StopOnCancel(cancellationToken);
        _queue.Add(work, cancellationToken);
        return work.Reply;
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        foreach (var worker in _workers.Where(w => w is not null))
        {
            worker.Dispose();
        }
    }

    /// <summary>One runspace, the pipeline running the worker loop in it, and the thread that drives it.</summary>
    internal sealed class Worker : IDisposable
    {
        private readonly BlockingCollection<HandlerWork> _queue;
        private readonly string _handler;
        private readonly object[] _arguments;
        private readonly Runspace _runspace;
        private readonly PowerShell _shell;
        private readonly Thread _thread;
        private readonly object _gate = new();
        private HandlerWork? _current;

        public Worker(BlockingCollection<HandlerWork> queue, string handler, object[] arguments, ScriptBlock? initialization, int index)
        {
            _queue = queue;
            _handler = handler;
            _arguments = arguments;
            _runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
            _runspace.Open();
            _shell = PowerShell.Create();
            _shell.Runspace = _runspace;
            if (initialization is not null)
            {
                // Script blocks belong to the runspace that made them: each runspace compiles the text itself.
                _shell.AddScript(initialization.ToString()).Invoke();
                if (_shell.Streams.Error.Count > 0)
                {
                    var error = _shell.Streams.Error[0];
                    Dispose();
                    throw new InvalidOperationException("The -InitializationScript failed: " + error, error.Exception);
                }
            }

            _thread = new Thread(Run) { IsBackground = true, Name = $"KeyShell handler {index}" };
        }

        public void Start() => _thread.Start();

        public void Dispose()
        {
            _shell.Dispose();
            _runspace.Dispose();
        }

        /// <summary>Stops the pipeline if it is still running <paramref name="work"/> (a timeout).</summary>
        public void Interrupt(HandlerWork work)
        {
            lock (_gate)
            {
                if (ReferenceEquals(_current, work) && !work.Reply.IsCompleted)
                {
                    _shell.BeginStop(null, null);
                }
            }
        }

        private void Run()
        {
            while (!_queue.IsCompleted)
            {
                try
                {
                    _shell.Commands.Clear();
                    _shell.AddScript(WorkerLoop).AddArgument(new Feed(this)).AddArgument(_handler).AddArgument(_arguments);
                    _shell.Invoke();
                }
                catch (Exception e) when (e is PipelineStoppedException || e is RuntimeException || e is InvalidRunspaceStateException || e is ObjectDisposedException)
                {
                    // Stopped for a timeout (the loop starts again) or closed with the server.
                }

                lock (_gate)
                {
                    _current?.Fail(new TimeoutException("The handler was stopped."));
                    _current = null;
                }
            }
        }

        /// <summary>The requests this worker takes from the shared queue, one at a time.</summary>
        private sealed class Feed : IEnumerable
        {
            private readonly Worker _worker;

            public Feed(Worker worker) => _worker = worker;

            public IEnumerator GetEnumerator()
            {
                foreach (var work in _worker._queue.GetConsumingEnumerable())
                {
                    if (!work.TryStart())
                    {
                        continue; // timed out while it waited in the queue: its client has had its error reply
                    }

                    lock (_worker._gate)
                    {
                        _worker._current = work;
                        work.Worker = _worker;
                    }

                    yield return work;
                    lock (_worker._gate)
                    {
                        _worker._current = null;
                    }
                }
            }
        }
    }

    /// <summary>One request on its way through a worker; the loop calls Complete or Fail.</summary>
    public sealed class HandlerWork
    {
        private const int Queued = 0;
        private const int Running = 1;
        private const int GivenUp = 2;

        private readonly TaskCompletionSource<string> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _state;

        internal HandlerWork(KeyRequest request) => Request = request;

        public KeyRequest Request { get; }

        internal Task<string> Reply => _reply.Task;

        internal Worker? Worker { get; set; }

        public void Complete(object[] output)
        {
            var reply = string.Join(" ", output.Where(o => o is not null).Select(o => o is PSObject p ? p.BaseObject.ToString() : o.ToString()));
            if (reply.Length == 0)
            {
                _reply.TrySetResult(Replies.ErrorPrefix + " handler returned no reply");
                return;
            }

            _reply.TrySetResult(reply);
        }

        public void Fail(Exception exception) =>
            _reply.TrySetException(exception is RuntimeException { ErrorRecord.Exception: { } inner } && inner is not RuntimeException ? inner : exception);

        /// <summary>Claims the work for a worker; false when it was given up while queued.</summary>
        internal bool TryStart() => Interlocked.CompareExchange(ref _state, Running, Queued) == Queued;

        /// <summary>On a timeout: work still queued is given up (no worker will run it); running work is stopped.</summary>
        internal void StopOnCancel(CancellationToken cancellation) =>
            cancellation.Register(() =>
            {
                if (Interlocked.CompareExchange(ref _state, GivenUp, Queued) == Queued)
                {
                    _reply.TrySetCanceled();
                }
                else
                {
                    Worker?.Interrupt(this);
                }
            });
    }
}
