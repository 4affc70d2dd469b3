using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>
/// Runs Start-KeyServer's -Handler script block for each request, on a pool of background runspaces
/// (-ThrottleLimit of them), as Pode serves routes. Each runspace runs -InitializationScript once; the
/// handler gets the request, then -ArgumentList. Its output, joined with spaces, is the reply. The engine
/// stops a run that passes the handler timeout; the runspace then goes back to the pool.
/// </summary>
internal sealed class ScriptBlockHandler : IKeyRequestHandler, IDisposable
{
    private readonly string _script;
    private readonly object[] _arguments;
    private readonly Runspace[] _runspaces;
    private readonly ConcurrentBag<Runspace> _idle;
    private readonly SemaphoreSlim _free;

    public ScriptBlockHandler(ScriptBlock handler, object[]? arguments, ScriptBlock? initialization, int throttleLimit)
    {
        // Script blocks belong to the runspace that made them: each pool runspace compiles the text itself.
        _script = handler.ToString();
        _arguments = arguments ?? Array.Empty<object>();
        _runspaces = new Runspace[throttleLimit];
        try
        {
            for (var i = 0; i < throttleLimit; i++)
            {
                _runspaces[i] = Open(initialization);
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        _idle = new ConcurrentBag<Runspace>(_runspaces);
        _free = new SemaphoreSlim(throttleLimit, throttleLimit);
    }

    public int ThrottleLimit => _runspaces.Length;

    public async Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
    {
        await _free.WaitAsync(cancellationToken).ConfigureAwait(false);
        _idle.TryTake(out var runspace);
        try
        {
            using var shell = PowerShell.Create();
            shell.Runspace = runspace;
            shell.AddScript(_script, useLocalScope: true).AddArgument(request);
            foreach (var argument in _arguments)
            {
                shell.AddArgument(argument);
            }

            using var stop = cancellationToken.Register(() => shell.BeginStop(null, null));
            var output = await Task.Factory.FromAsync(shell.BeginInvoke(), shell.EndInvoke).ConfigureAwait(false);
            if (output.Count == 0 && shell.Streams.Error.Count > 0)
            {
                throw shell.Streams.Error[0].Exception;
            }

            return string.Join(" ", output.Where(o => o is not null).Select(o => o.ToString()));
        }
        finally
        {
            _idle.Add(runspace!);
            _free.Release();
        }
    }

    public void Dispose()
    {
        foreach (var runspace in _runspaces.Where(r => r is not null))
        {
            runspace.Dispose();
        }
    }

    private static Runspace Open(ScriptBlock? initialization)
    {
        var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
        runspace.Open();
        if (initialization is null)
        {
            return runspace;
        }

        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddScript(initialization.ToString()).Invoke();
        if (shell.Streams.Error.Count > 0)
        {
            runspace.Dispose();
            throw new InvalidOperationException("The -InitializationScript failed: " + shell.Streams.Error[0], shell.Streams.Error[0].Exception);
        }

        return runspace;
    }
}
