using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;

namespace KeyShell.Engine.Logging;

/// <summary>
/// The one writer of a conversation log file. Producers hand it whole lines (a batch per read, or per
/// event-loop wake-up) through a
/// lock-free queue and go on; a dedicated thread writes them in the order they were handed in, so lines
/// are never torn or interleaved and no lock is taken per request. The file is opened once, truncated.
/// While traffic flows the writer polls the queue every 5 ms, so a producer never pays for a
/// wake-up (a futex call per request measured ~10% of throughput); it polls with Thread.Sleep, because a
/// timed wait on a semaphore spins first (perf: a third of the writer's time in sched_yield, taken from
/// the serving threads on a 2-core machine; and each wake-up preempts a serving thread, so it wakes no
/// more than 200 times a second). After a second of silence it sleeps until the next
/// producer signals it.
/// A write failure (disk full, file removed) never stops the server: the lines are counted as lost,
/// <see cref="WriteFailed"/> is raised, and the writer reopens the file on the next batch.
/// </summary>
public sealed class ConversationLogWriter : IDisposable
{
    private readonly ConcurrentQueue<Chunk> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private const int PollMilliseconds = 5;
    private const int ExistenceCheckMilliseconds = 1000;
    private const int PollsBeforeSleep = 1000 / PollMilliseconds;

    private readonly Thread _thread;
    private FileStream? _stream;
    private volatile int _sleeping;
    private volatile bool _closing;
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

    /// <summary>Queues whole lines (each ending in LF) for writing, in call order. Copies the bytes.</summary>
    public void Append(ReadOnlySpan<byte> lines)
    {
        if (lines.IsEmpty)
        {
            return;
        }

        var array = ArrayPool<byte>.Shared.Rent(lines.Length);
        lines.CopyTo(array);
        Enqueue(new Chunk(array, lines.Length, null));
    }

    /// <summary>Returns once every line appended before the call is in the file (or the timeout passed).</summary>
    public bool Flush(TimeSpan timeout)
    {
        if (_closing)
        {
            return _thread.Join(timeout);
        }

        using var done = new ManualResetEventSlim();
        Enqueue(new Chunk(null, 0, done));
        return done.Wait(timeout);
    }

    /// <summary>Writes everything queued, closes the file and ends the writer thread.</summary>
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

    private void Enqueue(Chunk chunk)
    {
        _queue.Enqueue(chunk);
        if (_sleeping == 1 && Interlocked.Exchange(ref _sleeping, 0) == 1)
        {
            _wake.Release();
        }
    }

    private void WriteLoop()
    {
        var idlePolls = 0;
        while (true)
        {
            var wrote = false;
            while (_queue.TryDequeue(out var chunk))
            {
                wrote = true;
                if (chunk.Flushed is { } flushed)
                {
                    Flush();
                    flushed.Set();
                    continue;
                }

                Write(chunk);
            }

            if (wrote)
            {
                Flush();
                idlePolls = 0;
            }

            if (_closing && _queue.IsEmpty)
            {
                break;
            }

            if (++idlePolls < PollsBeforeSleep)
            {
                Thread.Sleep(PollMilliseconds);
                continue;
            }

            // Deep sleep: announce it, then look again, so a producer that enqueued before seeing the
            // flag is not missed; from here on the next producer wakes us.
            Interlocked.Exchange(ref _sleeping, 1);
            if (_queue.IsEmpty && !_closing)
            {
                _wake.Wait();
            }

            Interlocked.Exchange(ref _sleeping, 0);
            idlePolls = 0;
        }

        _stream?.Dispose();
        _stream = null;
    }

    private void Write(Chunk chunk)
    {
        try
        {
            CheckFileStillThere();
            _stream ??= Open(FileMode.Append);
            _stream.Write(chunk.Array!, 0, chunk.Length);
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            Fail(e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk.Array!);
        }
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

    private void Flush()
    {
        try
        {
            _stream?.Flush();
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            Fail(e);
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

    private FileStream Open(FileMode mode) =>
        new(Path, mode, FileAccess.Write, FileShare.Read | FileShare.Delete, 64 * 1024);

    private readonly struct Chunk
    {
        public Chunk(byte[]? array, int length, ManualResetEventSlim? flushed)
        {
            Array = array;
            Length = length;
            Flushed = flushed;
        }

        public byte[]? Array { get; }

        public int Length { get; }

        public ManualResetEventSlim? Flushed { get; }
    }
}
