using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class LoadGeneratorTests
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
        var port = FreePort();
        var options = OnThisPath(new LoadOptions { Port = port, Concurrency = 2, Count = 20 });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(20, result.Requests);
        Assert.Equal(20, result.Errors);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(80), $"10 refused requests per worker should wait 10 ms each, took {watch.Elapsed}");
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
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 3, Count = 0, Duration = TimeSpan.FromMilliseconds(300) });
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.True(result.Requests > 0);
        Assert.Equal(0, result.Errors);
        Assert.InRange(result.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ACancelEndsTheRunPromptly()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var options = OnThisPath(new LoadOptions { Port = server.Port, Concurrency = 4, Count = 0, Duration = TimeSpan.FromMinutes(5) });
        var result = await new LoadGenerator(options).RunAsync(cancel.Token).WaitAsync(Bound);
        Assert.True(result.Requests > 0);
        Assert.True(result.Elapsed < TimeSpan.FromSeconds(10), $"the run went on for {result.Elapsed} after a cancel at 300 ms");
    }
}

public class LoadGeneratorTestsOnTheAsyncPath : LoadGeneratorTests
{
    protected override bool UseEventLoops => false;
}
