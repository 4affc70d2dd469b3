using System;
using System.Collections.Concurrent;
using System.Threading;

namespace KeyShell;

/// <summary>
/// Hands items from worker threads to the pipeline thread, which alone may write output. Adding is
/// lock-free and wakes the pipeline thread only when it is asleep: a BlockingCollection signals a
/// semaphore on every add, which at tens of thousands of replies a second cost a wake-up each.
/// </summary>
internal sealed class PipelineQueue<T> : IDisposable
{
    private readonly ConcurrentQueue<T> _items = new();
    private readonly ManualResetEventSlim _added = new(false);
    private int _sleeping;

    public bool IsEmpty => _items.IsEmpty;

    public void Add(T item)
    {
        _items.Enqueue(item);
        if (Volatile.Read(ref _sleeping) == 1 && Interlocked.Exchange(ref _sleeping, 0) == 1)
        {
            _added.Set();
        }
    }

    /// <summary>Takes the next item, waiting up to <paramref name="millisecondsTimeout"/> when there is none.</summary>
    public bool TryTake(out T item, int millisecondsTimeout)
    {
        if (_items.TryDequeue(out item!))
        {
            return true;
        }

        _added.Reset();
        Interlocked.Exchange(ref _sleeping, 1); // a fence: an Add from here on sees it, or we see its item
        if (!_items.TryDequeue(out item!))
        {
            _added.Wait(millisecondsTimeout);
            Volatile.Write(ref _sleeping, 0);
            return _items.TryDequeue(out item!);
        }

        Volatile.Write(ref _sleeping, 0);
        return true;
    }

    public void Dispose() => _added.Dispose();
}
