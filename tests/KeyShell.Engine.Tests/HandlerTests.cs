using System.Collections.Concurrent;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class HandlerTests
{
    private sealed class DelegateHandler : IKeyRequestHandler
    {
        private readonly Func<KeyRequest, CancellationToken, Task<string>> _handle;

        public DelegateHandler(Func<KeyRequest, CancellationToken, Task<string>> handle) => _handle = handle;

        public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken) => _handle(request, cancellationToken);
    }

    private static KeyServer StartWith(Func<KeyRequest, CancellationToken, Task<string>> handle, TimeSpan? timeout = null) =>
        StartServer(o =>
        {
            o.Handler = new DelegateHandler(handle);
            o.HandlerTimeout = timeout ?? TimeSpan.FromSeconds(10);
        });

    [Fact]
    public void PipelinedRequestsOnOneConnectionGetTheirRepliesInOrderWhateverEachTakes()
    {
        var random = new Random(7);
        using var server = StartWith(async (request, _) =>
        {
            int delay;
            lock (random)
            {
                delay = random.Next(0, 5);
            }

            await Task.Delay(delay);
            return $"reply {request.ClientId} {request.Key}\nwith a line break";
        });
        using var client = Connect(server.Port);
        Send(client, string.Concat(Enumerable.Range(0, 50).Select(i => $"c {i}\n")));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"reply c {i} with a line break"), ReadLines(client, 50));
    }

    [Fact]
    public void AThrowingHandlerIsAnErrorReplyAndTheServerGoesOn()
    {
        using var server = StartWith((request, _) => request.Key == "bad" ? throw new InvalidOperationException("boom") : Task.FromResult("fine"));
        using var client = Connect(server.Port);
        Send(client, "1 bad\n1 good\n");
        Assert.Equal(new[] { "Error: handler failed: boom", "fine" }, ReadLines(client, 2));
        Eventually(() => server.Errors == 1, "the error to be counted");
    }

    [Fact]
    public void ASlowHandlerTimesOutAndTheServerGoesOn()
    {
        using var server = StartWith(async (request, token) =>
        {
            if (request.Key == "slow")
            {
                await Task.Delay(Timeout.Infinite, token);
            }

            return "fast";
        }, TimeSpan.FromMilliseconds(300));
        using var client = Connect(server.Port);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Send(client, "1 slow\n1 quick\n");
        Assert.Equal(new[] { "Error: handler timed out", "fast" }, ReadLines(client, 2));

        // The 300 ms asked for, not StartWith's default of 10 s: a generous bound between the two.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public void ConnectionsAreHandledInParallel()
    {
        // Each handler waits until all eight requests are inside a handler at once: only handlers that run in
        // parallel can all answer "together"; one at a time, the first would wait out its bound (half the
        // test's, so that its reply still comes within the client's receive timeout).
        const int Clients = 8;
        var inside = 0;
        var allInside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = StartWith(async (_, token) =>
        {
            if (Interlocked.Increment(ref inside) == Clients)
            {
                allInside.TrySetResult();
            }

            try
            {
                await allInside.Task.WaitAsync(Bound / 2, token);
                return "together";
            }
            catch (TimeoutException)
            {
                return $"alone: {Volatile.Read(ref inside)} of {Clients} requests reached a handler";
            }
        }, timeout: Bound);
        using var clients = ConnectMany(server.Port, Clients);
        foreach (var client in clients)
        {
            Send(client, "1 1\n");
        }

        Assert.All(clients, c => Assert.Equal("together", ReadLines(c, 1).Single()));
    }

    [Fact]
    public async Task AMapReplacedUnderLoadNeverAnswersFromAHalfBuiltMap()
    {
        var keys = Enumerable.Range(0, 200).Select(i => "k" + i).ToArray();
        var mapA = new KeyMap(keys.ToDictionary(k => k, _ => "A"));
        var mapB = new KeyMap(keys.ToDictionary(k => k, _ => "B"));
        using var server = StartServer(o => { o.KeyMap = mapA; o.LogPath = null; });
        using var stop = new CancellationTokenSource();
        var replies = new ConcurrentBag<string>();
        var load = Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            using var client = Connect(server.Port);
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                Send(client, string.Concat(keys.Skip(n++ % 10 * 20).Take(20).Select(k => $"w{worker} {k}\n")));
                foreach (var reply in ReadLines(client, 20))
                {
                    replies.Add(reply);
                }
            }
        })).ToArray();
        try
        {
            // Swap the maps over and over while the load gets 4,000 more replies (200 batches of 20), however long
            // that takes here, so the swaps surely overlap lookups.
            Eventually(() => !replies.IsEmpty, "the load to get going");
            var target = replies.Count + 4_000;
            var deadline = DateTime.UtcNow + Bound;
            for (var swap = 0; replies.Count < target; swap++)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the load got {replies.Count} of {target} replies within {Bound}");
                server.KeyMap = swap % 2 == 0 ? mapB : mapA;
            }
        }
        finally
        {
            stop.Cancel();
        }

        await Task.WhenAll(load).WaitAsync(Bound);
        Assert.All(replies, r => Assert.Matches(@"^Response for the key k\d+ : [AB]$", r));
    }
}
