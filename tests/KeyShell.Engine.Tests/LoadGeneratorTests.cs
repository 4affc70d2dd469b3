using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as LoadGeneratorTestsOnTheAsyncPath.
public abstract class LoadGeneratorTests
#else
public class LoadGeneratorTests
#endif
{
    /// <summary>Linux runs the workers on event loops; <see cref="LoadGeneratorTestsOnTheAsyncPath"/> runs the portable path.</summary>
    protected virtual bool UseEventLoops => true;

    private LoadOptions OnThisPath(LoadOptions options)
    {
        options.UseEventLoops = UseEventLoops;
        return options;
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent, Framing.Line, 1, 8)]
    [InlineData(ConnectionMode.Persistent, Framing.Line, 16, 3)]
    [InlineData(ConnectionMode.PerMessage, Framing.Line, 1, 4)]
    [InlineData(ConnectionMode.Persistent, Framing.Legacy, 1, 4)]
    [InlineData(ConnectionMode.PerMessage, Framing.Legacy, 1, 4)]
    public async Task EveryRequestIsAnsweredAndCountedOnce(ConnectionMode connection, Framing framing, int pipeline, int concurrency)
    {
        using var server = StartServer(o => o.LogPath = null);
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = concurrency, Count = 2_001, Connection = connection, Framing = framing, Pipeline = pipeline });
        var generator = new LoadGenerator(options);
        var result = await generator.RunAsync().WaitAsync(Bound);
        Assert.Equal(2_001, result.Requests);
        Assert.Equal(0, result.Errors);
        Assert.Equal(2_001, generator.Completed);
        Assert.Equal(2_001, server.Requests);
        Assert.True(result.P50 <= result.P99 && result.P99 <= result.Max);
    }

    [Fact]
    public async Task ErrorRepliesCountAsErrors()
    {
        // Keys 0-4 only: the workers' requests for 5-9 get "Error: ..." replies, pipelined or not.
        var map = new KeyMap(Enumerable.Range(0, 5).ToDictionary(k => k.ToString(), k => $"value {k}"));
        using var server = StartServer(o => { o.LogPath = null; o.KeyMap = map; });
        foreach (var pipeline in new[] { 1, 10 })
        {
            var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 1_000, Pipeline = pipeline });
            var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
            Assert.Equal(1_000, result.Requests);
            Assert.Equal(500, result.Errors);
        }
    }

    [Fact]
    public async Task AClosedPortFailsEveryRequestWithoutSpinning()
    {
        using var refusing = RefusingPort(out var port);
        var options = OnThisPath(new LoadOptions { Port = port, Concurrency = 2, Count = 20 });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(20, result.Requests);
        Assert.Equal(20, result.Errors);
        // A lower bound that follows from the logic, not from speed: each worker waits 10 ms after each of its 10
        // refused requests. Task.Delay's clock is coarse (a 10 ms delay measured 9.1 ms here; the kernel's coarse
        // clock ticks every 4 ms at most), so each wait lasts at least 6 ms: 60 ms in all. Spinning takes well under.
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(50), $"10 refused requests per worker should wait 10 ms each, took {watch.Elapsed}");
    }

    [Fact]
    public async Task RequestsASilentServerNeverAnswersTimeOutAsErrors()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start(); // connections wait in the backlog; nothing is ever read or answered
        var options = OnThisPath(new LoadOptions
        {
            Port = ((IPEndPoint)silent.LocalEndpoint).Port,
            Concurrency = 2,
            Count = 6,
            Timeout = TimeSpan.FromMilliseconds(300),
        });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(6, result.Requests);
        Assert.Equal(6, result.Errors);
        // Each worker's three requests time out one after another, each no sooner than 300 ms after it started
        // (the timeout and this watch read the same clock, Stopwatch): a lower bound from the logic, not from speed.
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(900), $"three rounds of 300 ms per worker took only {watch.Elapsed}");
    }

    [Fact]
    public async Task AnsweredRequestsAreNotTimedOut()
    {
        using var server = StartServer(o => o.LogPath = null);
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 4, Count = 20_000, Timeout = TimeSpan.FromSeconds(5) });
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(20_000, result.Requests);
        Assert.Equal(0, result.Errors);
    }

    [Fact]
    public async Task ATimedRunEndsAfterItsDuration()
    {
        using var server = StartServer(o => o.LogPath = null);
        // A second: long enough for the workers' first requests on a busy machine, short for the suite.
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 3, Count = 0, Duration = TimeSpan.FromSeconds(1) });
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.True(result.Requests > 0);
        Assert.Equal(0, result.Errors);

        // Not before its duration (the run's clock); and it ends: ten times the duration, a bound, not a speed.
        Assert.InRange(result.Elapsed, options.Duration, 10 * options.Duration);
    }

    [Fact]
    public async Task ACancelEndsTheRunPromptly()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var cancel = new CancellationTokenSource();
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 4, Count = 0, Duration = TimeSpan.FromMinutes(5) });
        var generator = new LoadGenerator(options);
        var run = generator.RunAsync(cancel.Token);
        try
        {
            Eventually(() => generator.Completed > 100, "the run to get going");
        }
        finally
        {
            cancel.Cancel(); // also when the test fails: the run must not go on for its five minutes
        }

        var result = await run.WaitAsync(Bound);
        Assert.True(result.Requests > 100);
        Assert.True(result.Elapsed < options.Duration, $"the run went on for {result.Elapsed} after a cancel");
    }
}

public class LoadGeneratorTestsOnTheAsyncPath : LoadGeneratorTests
{
    protected override bool UseEventLoops => false;
}
