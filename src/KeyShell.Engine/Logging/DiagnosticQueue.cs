using System;
using System.Collections.Concurrent;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Logging;

/// <summary>One of the engine's own diagnostics (not a conversation line).</summary>
public sealed class Diagnostic
{
    public Diagnostic(DateTime time, bool isWarning, string message)
    {
        Time = time;
        IsWarning = isWarning;
        Message = message;
    }

    public DateTime Time { get; }

    /// <summary>True for warnings and errors; false for information a user sees on request (verbose).</summary>
    public bool IsWarning { get; }

    public string Message { get; }

    public override string ToString() => Message;
}

/// <summary>
/// The engine's diagnostics kept (up to a bound) for a host that reads them when it can: a PowerShell
/// session writes them to its warning and verbose streams at its next command. A plain class, so a host
/// that isolates the engine's Microsoft.Extensions.Logging in its own load context can use it without
/// touching that library's types.
/// </summary>
public sealed class DiagnosticQueue
{
    private readonly ConcurrentQueue<Diagnostic> _items = new();
    private readonly int _capacity;
    private int _count;
    private long _dropped;

    public DiagnosticQueue(int capacity = 1000)
    {
        _capacity = capacity;
        Logger = new QueueLogger(this);
    }

    /// <summary>Diagnostics not kept because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    internal ILogger Logger { get; }

    public bool TryTake(out Diagnostic diagnostic)
    {
        if (_items.TryDequeue(out diagnostic!))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }

        return false;
    }

    private void Add(Diagnostic diagnostic)
    {
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            Interlocked.Decrement(ref _count);
            Interlocked.Increment(ref _dropped);
            return;
        }

        _items.Enqueue(diagnostic);
    }

    private sealed class QueueLogger : ILogger
    {
        private readonly DiagnosticQueue _queue;

        public QueueLogger(DiagnosticQueue queue) => _queue = queue;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                _queue.Add(new Diagnostic(DateTime.UtcNow, logLevel >= LogLevel.Warning, formatter(state, exception)));
            }
        }
    }
}

/// <summary>Sends each diagnostic to the host's logger and to the diagnostic queue, whichever are set.</summary>
internal sealed class DiagnosticsLogger : ILogger
{
    private readonly ILogger? _host;
    private readonly ILogger? _queue;

    public DiagnosticsLogger(ILogger? host, DiagnosticQueue? queue)
    {
        _host = host;
        _queue = queue?.Logger;
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => _host?.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => (_host?.IsEnabled(logLevel) ?? false) || (_queue?.IsEnabled(logLevel) ?? false);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _host?.Log(logLevel, eventId, state, exception, formatter);
        _queue?.Log(logLevel, eventId, state, exception, formatter);
    }
}
