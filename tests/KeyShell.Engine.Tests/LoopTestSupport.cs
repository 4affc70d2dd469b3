#if !ENGINE_NETSTANDARD
using System.Collections.Concurrent;
using KeyShell.Engine.Transport.Epoll;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

internal static class LoopTestSupport
{
    /// <summary>Runs <paramref name="work"/> on the loop's thread and returns its result.</summary>
    public static T OnLoop<T>(EventLoop loop, Func<T> work)
    {
        var done = new TaskCompletionSource<T>();
        loop.Post(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        Assert.True(done.Task.Wait(Bound), "the loop did not run the posted work");
        return done.Task.Result;
    }
}

/// <summary>epoll, with a record of what was added and removed, and of what each descriptor is watched for.</summary>
internal sealed class RecordingPoller : IPoller
{
    private readonly EpollPoller _inner = new(64);
    private int _wakes;

    public ConcurrentQueue<(string Operation, int Descriptor)> Calls { get; } = new();

    /// <summary>What each descriptor in the poller is watched for now.</summary>
    public ConcurrentDictionary<int, Interest> Watched { get; } = new();

    public void Add(int descriptor, Interest interest, ulong token)
    {
        Calls.Enqueue(("add", descriptor));
        _inner.Add(descriptor, interest, token);
        Watched[descriptor] = interest;
    }

    public void Change(int descriptor, Interest interest, ulong token)
    {
        Calls.Enqueue(("change", descriptor));
        _inner.Change(descriptor, interest, token);
        Watched[descriptor] = interest;
    }

    public void Remove(int descriptor)
    {
        Calls.Enqueue(("remove", descriptor));
        _inner.Remove(descriptor);
        Watched.TryRemove(descriptor, out _);
    }

    public int Wait(Span<ulong> tokens, int timeoutMs) => _inner.Wait(tokens, timeoutMs);

    /// <summary>How often the loop was woken from another thread.</summary>
    public int Wakes => Volatile.Read(ref _wakes);

    public void Wake()
    {
        Interlocked.Increment(ref _wakes);
        _inner.Wake();
    }

    public void Dispose() => _inner.Dispose();
}
#endif
