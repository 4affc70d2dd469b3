using System;
using System.IO;
using System.Threading;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Logging;

/// <summary>
/// The one writer of a conversation log file. Producers append whole lines (a batch per read) to a
/// shared buffer under a short lock and go on; a dedicated thread swaps that buffer for an empty one and
/// writes the full one, so lines keep the order they were appended in, are never torn or interleaved, and
/// no producer waits on the disk. (A queue of pooled chunks cost a pool rent, a queue node and a pool
/// return per read: the largest part of the log's cost on the profile.)
/// While traffic flows the writer looks every 5 ms, so a producer never pays for a wake-up (a futex call
/// per request measured ~10% of throughput); it waits with Thread.Sleep, because a timed wait on a
/// semaphore spins first (perf: a third of the writer's time in sched_yield, taken from the serving
/// threads on a 2-core machine), and each wake-up preempts a serving thread. After a second of silence
/// it sleeps until the next producer signals it. The file is opened once, truncated.
/// A write failure (disk full, file removed) never stops the server: the failure is counted,
/// <see cref="WriteFailed"/> is raised, and the writer reopens the file for the next batch.
/// </summary>
public sealed class ConversationLogWriter : IDisposable
{
    private const int PollMilliseconds = 5;
    private const int PollsBeforeSleep = 1000 / PollMilliseconds;
    private const int ExistenceCheckMilliseconds = 1000;

    private readonly object _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private ByteBuffer _filling = new(64 * 1024); // producers append here, under _gate
    private ByteBuffer _writing = new(64 * 1024); // the writer's, between swaps
    private long _appended; // bytes appended so far, under _gate
    private long _handled;  // bytes written (or lost to a reported failure) so far
    private FileStream? _stream;
    private volatile int _sleeping;
    private volatile bool _closing;
    private bool _closed; // under _gate: the buffers are returned
    private long _writeErrors;
    private int _lastExistenceCheck = Environment.TickCount;

    /// <summary>Opens (and empties) <paramref name="path"/>; throws when it cannot be written.</summary>
    public ConversationLogWriter(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        _stream = Open(FileMode.Create);
        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "KeyShell conversation log" };
        _thread.Start();
    }

    public string Path { get; }

    /// <summary>Write failures so far (each also raised through <see cref="WriteFailed"/>).</summary>
    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>Raised on the writer thread when the file cannot be written.</summary>
    public event Action<Exception>? WriteFailed;

    /// <summary>Queues whole lines (each ending in LF) for writing, in call order. Copies the bytes. Lines
    /// appended once the writer has closed are dropped (its buffers are back in the pool by then).</summary>
    public void Append(ReadOnlySpan<byte> lines)
    {
        if (lines.IsEmpty)
        {
            return;
        }

        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _filling.Write(lines);
            _appended += lines.Length;
        }

        if (_sleeping == 1 && Interlocked.Exchange(ref _sleeping, 0) == 1)
        {
            _wake.Release();
        }
    }

    /// <summary>Returns once every line appended before the call is in the file (or the timeout passed).</summary>
    public bool Flush(TimeSpan timeout)
    {
        long target;
        lock (_gate)
        {
            target = _appended;
        }

        var deadline = Environment.TickCount + (int)Math.Min(int.MaxValue / 2, timeout.TotalMilliseconds);
        while (Interlocked.Read(ref _handled) < target)
        {
            if (unchecked(Environment.TickCount - deadline) >= 0 || !_thread.IsAlive)
            {
                return Interlocked.Read(ref _handled) >= target;
            }

            Thread.Sleep(1);
        }

        return true;
    }

    /// <summary>Writes everything appended, closes the file and ends the writer thread.</summary>
    public void Dispose()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        _wake.Release();
        _thread.Join();
        _wake.Dispose();
    }

    private void WriteLoop()
    {
        var idlePolls = 0;
        while (true)
        {
            var wrote = WriteWhatWasAppended();
            if (_closing && !wrote)
            {
                break; // nothing came since the last look, and nothing will
            }

            if (wrote)
            {
                idlePolls = 0;
                if (_closing)
                {
                    continue; // closing: write what came meanwhile at once, no wait
                }
            }

            if (++idlePolls < PollsBeforeSleep)
            {
                Thread.Sleep(PollMilliseconds);
                continue;
            }

            // Deep sleep: announce it, then look again, so a producer that appended before seeing the flag
            // is not missed; from here on the next producer wakes us.
            Interlocked.Exchange(ref _sleeping, 1);
            if (!HasUnwritten() && !_closing)
            {
                _wake.Wait();
            }

            Interlocked.Exchange(ref _sleeping, 0);
            idlePolls = 0;
        }

        _stream?.Dispose();
        _stream = null;
        lock (_gate)
        {
            // Under the gate: an Append racing the close must not write into an array the pool gave away.
            _closed = true;
            _filling.Dispose();
        }

        _writing.Dispose();
    }

    private bool HasUnwritten()
    {
        lock (_gate)
        {
            return _filling.Length > 0;
        }
    }

    /// <summary>Swaps the buffers and writes the full one. False when nothing was appended since the last time.</summary>
    private bool WriteWhatWasAppended()
    {
        ByteBuffer batch;
        long appended;
        lock (_gate)
        {
            if (_filling.Length == 0)
            {
                return false;
            }

            batch = _filling;
            _filling = _writing;
            _writing = batch;
            appended = _appended;
        }

        try
        {
            CheckFileStillThere();
            _stream ??= Open(FileMode.Append);
            _stream.Write(batch.Array, 0, batch.Length);
            _stream.Flush();
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            Fail(e);
        }
        finally
        {
            batch.Clear();
            Interlocked.Exchange(ref _handled, appended);
        }

        return true;
    }

    /// <summary>
    /// Deleting an open file does not fail its writes (they go to the unlinked file), so the writer looks,
    /// once a second, whether its file is still there; if not, it reports the failure and starts a new one.
    /// </summary>
    private void CheckFileStillThere()
    {
        if (_stream is null || unchecked(Environment.TickCount - _lastExistenceCheck) < ExistenceCheckMilliseconds)
        {
            return;
        }

        _lastExistenceCheck = Environment.TickCount;
        if (!File.Exists(Path))
        {
            Fail(new FileNotFoundException($"The conversation log '{Path}' was deleted while the server wrote it; a new file was started. Lines written in the last second may be lost.", Path));
        }
    }

    private void Fail(Exception e)
    {
        try
        {
            _stream?.Dispose();
        }
        catch (IOException)
        {
            // The buffered bytes are lost with the failure already reported.
        }

        _stream = null;

        // Report, then count: whoever sees the counter move knows the failure has been reported.
        WriteFailed?.Invoke(e);
        Interlocked.Increment(ref _writeErrors);
    }

    // Unbuffered (1): each batch is one write already, a buffer would only copy it once more.
    private FileStream Open(FileMode mode) =>
        new(Path, mode, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 1);
}
