using System;
using System.Threading;

namespace KeyShell.Engine.Logging;

/// <summary>
/// One owner's hold on a conversation log file (a server's, a client's). Every owner in this process that
/// names the same file writes through one shared open file (<see cref="SharedLogFile"/>): the first owner
/// empties the file, later ones join without emptying it, and the file closes when the last one lets go.
/// Another process that names a file in use gets <see cref="LogPathInUseException"/> and changes nothing in it.
/// <see cref="Append"/> returns once the lines are in the file (in the kernel, not yet on the disk), each batch
/// whole and in call order; no thread buffers them, so a process killed at any moment loses none it handed over.
/// A write failure (disk full, file removed) never stops the owner: it is counted, <see cref="WriteFailed"/>
/// is raised (the first time, then at most once a second), and the next batch is tried again.
/// </summary>
public sealed class ConversationLogWriter : IDisposable
{
    private const int ReportIntervalMilliseconds = 1000;

    private readonly SharedLogFile _file;
    private readonly object _reportGate = new();
    private long _writeErrors;
    private bool _reported;
    private int _lastReport;

    /// <summary>Opens <paramref name="path"/>, or joins this process's writer of it. Throws
    /// <see cref="LogPathInUseException"/> when another process writes it, and another
    /// <see cref="System.IO.IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot be written.</summary>
    public ConversationLogWriter(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        _file = SharedLogFile.Join(Path, this);
    }

    public string Path { get; }

    /// <summary>This owner's failed writes so far (each batch that did not reach the file counts).</summary>
    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>Raised on the writing thread when a batch cannot be written: for the first failure, then at
    /// most once a second while failures go on. Exceptions thrown by its handlers are ignored.</summary>
    public event Action<Exception>? WriteFailed;

    /// <summary>True while this owner holds its share (guarded by the shared file).</summary>
    internal bool IsJoined { get; set; }

    /// <summary>Writes whole lines (each ending in LF) into the file before it returns, never interleaved
    /// with another owner's. Never throws. Lines appended once this owner has let go are dropped.</summary>
    public void Append(ReadOnlySpan<byte> lines)
    {
        if (!lines.IsEmpty)
        {
            _file.Write(this, lines);
        }
    }

    /// <summary>Lets go of the file (it closes with its last owner). Safe to call twice.</summary>
    public void Dispose() => _file.Leave(this);

    /// <summary>Raises (when due) and counts one failure. Report, then count: whoever sees the counter move
    /// knows the first failure has been reported.</summary>
    internal void Report(Exception error, bool always)
    {
        bool tell;
        lock (_reportGate)
        {
            var now = Environment.TickCount;
            tell = always || !_reported || unchecked(now - _lastReport) >= ReportIntervalMilliseconds;
            if (tell)
            {
                _reported = true;
                _lastReport = now;
            }
        }

        if (tell)
        {
            try
            {
                WriteFailed?.Invoke(error);
            }
            catch (Exception)
            {
                // A handler's failure must not reach the thread that serves requests.
            }
        }

        Interlocked.Increment(ref _writeErrors);
    }
}
