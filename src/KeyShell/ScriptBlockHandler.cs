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
/// about 7 µs. The handler gets the request, then -ArgumentList; its output, each object made text as
/// PowerShell makes it ("$object") and joined with spaces, is the reply. Its other streams are merged into
/// that output and sorted out (see <see cref="HandlerWork.Complete"/>): nothing piles up in a runspace that
/// runs for as long as the server. A run past the handler timeout is stopped (its pipeline is stopped and
/// started again).
/// </summary>
internal sealed class ScriptBlockHandler : IKeyRequestHandler, IDisposable
{
    // The worker loop. $Feed blocks until a request comes and ends when the server stops.
    private const string WorkerLoop = @"
param($Feed, $HandlerText, $Arguments)
$handler = [scriptblock]::Create($HandlerText)
foreach ($work in $Feed) {
    try { $work.Complete(@(& $handler $work.Request @Arguments *>&1)) }
    catch { $work.Fail($_.Exception) }
}";

    private readonly BlockingCollection<HandlerWork> _queue = new();
    private readonly Worker[] _workers;

    /// <param name="handler">The handler's text, its own <c>$using:</c> already made variables (<see cref="UsingVariables"/>).</param>
    /// <param name="initialization">The -InitializationScript's text, or null.</param>
    /// <param name="variables">The variables each runspace defines first: the <c>$using:</c> values.</param>
    public ScriptBlockHandler(string handler, object[]? arguments, string? initialization, IReadOnlyDictionary<string, object?> variables, int throttleLimit)
    {
        _workers = new Worker[throttleLimit];
        try
        {
            for (var i = 0; i < throttleLimit; i++)
            {
                _workers[i] = new Worker(_queue, handler, arguments ?? Array.Empty<object>(), initialization, variables, Diagnostics, i);
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

    /// <summary>What handlers wrote besides their replies (errors next to a reply, warnings, Write-Host, verbose).</summary>
    public HandlerDiagnostics Diagnostics { get; } = new();

    public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
    {
        var work = new HandlerWork(request, Diagnostics);
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

        public Worker(BlockingCollection<HandlerWork> queue, string handler, object[] arguments, string? initialization, IReadOnlyDictionary<string, object?> variables, HandlerDiagnostics diagnostics, int index)
        {
            _queue = queue;
            _handler = handler;
            _arguments = arguments;
            _runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
            _runspace.Open();
            foreach (var variable in variables)
            {
                _runspace.SessionStateProxy.SetVariable(variable.Key, variable.Value);
            }

            // Progress cannot be merged into the output (*>&1): with no host to show it, it would only pile up.
            _runspace.SessionStateProxy.SetVariable("ProgressPreference", ActionPreference.SilentlyContinue);
            _shell = PowerShell.Create();
            _shell.Runspace = _runspace;
            if (initialization is not null)
            {
                // Script blocks belong to the runspace that made them: each runspace compiles the text itself.
                _shell.AddScript(initialization).Invoke();
                if (_shell.Streams.Error.Count > 0)
                {
                    var error = _shell.Streams.Error[0];
                    Dispose();
                    throw new InvalidOperationException("The -InitializationScript failed: " + error, error.Exception);
                }

                if (index == 0)
                {
                    diagnostics.AddStreams(_shell.Streams, "The -InitializationScript");
                }

                _shell.Streams.ClearStreams();
                _shell.Commands.Clear();
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
        private readonly HandlerDiagnostics _diagnostics;
        private int _state;

        internal HandlerWork(KeyRequest request, HandlerDiagnostics diagnostics)
        {
            Request = request;
            _diagnostics = diagnostics;
        }

        public KeyRequest Request { get; }

        internal Task<string> Reply => _reply.Task;

        internal Worker? Worker { get; set; }

        /// <summary>
        /// The handler's output, all streams merged (*>&amp;1). Objects make the reply: each as PowerShell makes it
        /// text ("$object": strings as they are, numbers in the invariant culture, a list's items joined with
        /// spaces, a [pscustomobject] as @{Name=Value}, and so a hashtable too), joined with spaces. Errors it wrote make the reply <c>Error: handler failed: ...</c>
        /// when there is no output; beside output they go to the server's diagnostics, as do warnings (as
        /// warnings), Write-Host, verbose and debug lines (as verbose lines).
        /// </summary>
        public void Complete(object[] output)
        {
            var texts = new List<string>();
            var errors = new List<string>();
            foreach (var item in output)
            {
                switch (item is PSObject wrapped ? wrapped.BaseObject : item)
                {
                    case null:
                        break;
                    case ErrorRecord error:
                        errors.Add(error.ToString());
                        break;
                    case WarningRecord warning:
                        _diagnostics.Add(true, $"The handler warned, for '{Request}': {warning.Message}");
                        break;
                    case InformationalRecord record:
                        _diagnostics.Add(false, $"The handler, for '{Request}': {record.Message}");
                        break;
                    case InformationRecord information:
                        _diagnostics.Add(false, $"The handler, for '{Request}': {information.MessageData}");
                        break;
                    case IDictionary dictionary:
                        // As a [pscustomobject] shows: PowerShell's own text for a hashtable is its type name.
                        texts.Add("@{" + string.Join("; ", dictionary.Cast<DictionaryEntry>().Select(e => $"{e.Key}={LanguagePrimitives.ConvertTo<string>(e.Value)}")) + "}");
                        break;
                    default:
                        texts.Add(LanguagePrimitives.ConvertTo<string>(item) ?? string.Empty);
                        break;
                }
            }

            var reply = string.Join(" ", texts.Where(t => t.Length > 0));
            var failed = reply.Length == 0 && errors.Count > 0;
            foreach (var error in errors.Skip(failed ? 1 : 0))
            {
                _diagnostics.Add(true, $"The handler wrote an error for '{Request}': {error}");
            }

            _reply.TrySetResult(
                reply.Length > 0 ? reply
                : failed ? Replies.HandlerFailed(errors[0])
                : Replies.ErrorPrefix + " handler returned no reply");
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
