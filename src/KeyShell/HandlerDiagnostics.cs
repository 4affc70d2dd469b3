using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Threading;
using KeyShell.Engine.Logging;

namespace KeyShell;

/// <summary>
/// What a -Handler wrote besides its replies, kept (up to a bound) until the session's next command that
/// touches the server writes it, with the server's own diagnostics (<see cref="KeyShellCmdlet"/>). A handler
/// that warns on every request cannot grow it without bound: past the bound, lines are counted, not kept.
/// </summary>
internal sealed class HandlerDiagnostics
{
    private const int Capacity = 1000;
    private readonly ConcurrentQueue<Diagnostic> _items = new();
    private int _count;
    private long _dropped;

    public void Add(bool isWarning, string message)
    {
        if (Interlocked.Increment(ref _count) > Capacity)
        {
            Interlocked.Decrement(ref _count);
            Interlocked.Increment(ref _dropped);
            return;
        }

        _items.Enqueue(new Diagnostic(DateTime.UtcNow, isWarning, message));
    }

    /// <summary>Keeps what a run wrote to its streams (the -InitializationScript's, for one).</summary>
    public void AddStreams(PSDataStreams streams, string who)
    {
        foreach (var warning in streams.Warning)
        {
            Add(true, $"{who} warned: {warning.Message}");
        }

        foreach (var information in streams.Information)
        {
            Add(false, $"{who}: {information.MessageData}");
        }

        foreach (var verbose in streams.Verbose)
        {
            Add(false, $"{who}: {verbose.Message}");
        }
    }

    public bool TryTake(out Diagnostic diagnostic)
    {
        if (_items.TryDequeue(out diagnostic!))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }

        var dropped = Interlocked.Exchange(ref _dropped, 0);
        if (dropped > 0)
        {
            diagnostic = new Diagnostic(DateTime.UtcNow, true, $"{dropped} more lines the handler wrote were not kept.");
            return true;
        }

        return false;
    }
}
