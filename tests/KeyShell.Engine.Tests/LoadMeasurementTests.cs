using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>What a load result says: errors by kind, latencies of successes only, keys, warm-up, timeline, a stop.</summary>
public class LoadMeasurementTests
{
    private static Task<LoadResult> Run(LoadOptions options, CancellationToken cancellation = default) => new LoadGenerator(options).RunAsync(cancellation).WaitAsync(Bound);

    private static void AssertNoLatencies(LoadResult result)
    {
        Assert.Equal(0, result.Histogram.TotalCount);
        Assert.Null(result.P50);
        Assert.Null(result.P99);
        Assert.Null(result.P9999);
        Assert.Null(result.Max);
        Assert.Null(result.Mean);
        Assert.Null(result.StdDev);
        Assert.Equal(0, result.RequestsPerSecond);
    }

    [Theory]
    [InlineData(ConnectionMode.PerMessage)]
    [InlineData(ConnectionMode.Persistent)]
    public async Task AClosedPortIsConnectFailedWithNoLatencies(ConnectionMode connection)
    {
        using var refusing = RefusingPort(out var port);
        var result = await Run(new LoadOptions { Port = port, Concurrency = 2, Count = 20, Connection = connection });
        Assert.Equal(20, result.Requests);
        Assert.Equal(20, result.Errors);
        Assert.Equal(20, result.ConnectFailed);
        AssertNoLatencies(result);
    }

    [Fact]
    public async Task AServerThatNeverRepliesIsTimeoutWithNoLatencies()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var result = await Run(new LoadOptions { Port = ((IPEndPoint)silent.LocalEndpoint).Port, Concurrency = 2, Count = 4, Timeout = TimeSpan.FromMilliseconds(300) });
        Assert.Equal(4, result.Timeout);
        Assert.Equal(4, result.Errors);
        AssertNoLatencies(result);
    }

    [Theory]
    [InlineData(ConnectionMode.PerMessage, Framing.Line)]
    [InlineData(ConnectionMode.Persistent, Framing.Line)]
    [InlineData(ConnectionMode.Persistent, Framing.Legacy)]
    public async Task AnHttpServersReplyIsUnexpectedReply(ConnectionMode connection, Framing framing)
    {
        using var http = ScriptedServer.Http();
        var result = await Run(new LoadOptions { Port = http.Port, Concurrency = 2, Count = 10, Connection = connection, Framing = framing });
        Assert.Equal(10, result.Requests);
        Assert.Equal(10, result.UnexpectedReply);
        AssertNoLatencies(result);
    }

    [Theory]
    [InlineData(Framing.Line)]
    [InlineData(Framing.Legacy)]
    public async Task WithoutTheReplyCheckAnyOneLineReplyThatIsNotAnErrorIsASuccess(Framing framing)
    {
        // As openssl s_server -rev: each line back, reversed. Not the protocol's form, yet one reply per request.
        using var reversing = new ScriptedServer(request => (new string(request.TrimEnd('\n').Reverse().ToArray()) + "\n", false));
        var strict = await Run(new LoadOptions { Port = reversing.Port, Concurrency = 2, Count = 50, Framing = framing });
        Assert.Equal(50, strict.UnexpectedReply);
        var skipped = await Run(new LoadOptions { Port = reversing.Port, Concurrency = 2, Count = 50, Framing = framing, SkipReplyCheck = true });
        Assert.Equal(0, skipped.Errors);
        Assert.Equal(50, skipped.Histogram.TotalCount);
    }

    [Fact]
    public async Task AnAnswerForAnotherKeyIsUnexpectedReply()
    {
        using var wrong = new ScriptedServer(request => ($"Response for the key x{request.Split(' ')[1].Trim()} : 1\n", false));
        var result = await Run(new LoadOptions { Port = wrong.Port, Concurrency = 2, Count = 100 });
        Assert.Equal(100, result.UnexpectedReply);
        AssertNoLatencies(result);
    }

    [Fact]
    public async Task AReplyCutOffByACloseIsUnexpectedReplyAndACloseWithoutOneIsConnectionLost()
    {
        using var cut = new ScriptedServer(request => ($"Response for the key {request.Split(' ')[1].Trim()} : 1", true)); // no line end, then a close
        var result = await Run(new LoadOptions { Port = cut.Port, Concurrency = 2, Count = 6 });
        Assert.Equal(6, result.UnexpectedReply);

        using var closing = new ScriptedServer(_ => (string.Empty, true));
        result = await Run(new LoadOptions { Port = closing.Port, Concurrency = 2, Count = 6 });
        Assert.Equal(6, result.ConnectionLost);
        AssertNoLatencies(result);
    }

    [Fact]
    public async Task ErrorRepliesAreErrorReplyAndOnlySuccessesHaveLatencies()
    {
        var map = new KeyMap(Enumerable.Range(0, 5).ToDictionary(k => k.ToString(), k => $"value {k}"));
        using var server = StartServer(o => { o.LogPath = null; o.KeyMap = map; });
        var result = await Run(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 1_000 });
        Assert.Equal(1_000, result.Requests);
        Assert.Equal(500, result.ErrorReply);
        Assert.Equal(500, result.Errors);
        Assert.Equal(500, result.Histogram.TotalCount);
        Assert.Equal(500, result.Latency.Count);
    }

    [Fact]
    public async Task AnyKeyMapLoadsWithItsKeysAndTheClientIdsCarryThePrefix()
    {
        var log = Path.Combine(TempDirectory(), "log.txt");
        using var server = StartServer(o => { o.LogPath = log; o.KeyMap = new KeyMap(new Dictionary<string, string> { ["red"] = "1", ["green"] = "2" }); });
        var result = await Run(new LoadOptions { Port = server.Port, Concurrency = 3, Count = 300, Keys = new[] { "red", "green" }, ClientIdPrefix = "lg-" });
        Assert.Equal(0, result.Errors);
        Assert.Equal(300, result.Histogram.TotalCount);
        Assert.Equal(new[] { "red", "green" }, result.Keys);
        server.Dispose();
        var clients = LogLines(log).Where(l => l.StartsWith("Client: ", StringComparison.Ordinal)).Select(l => l.Split(' ')[1]).Distinct().OrderBy(c => c);
        Assert.Equal(new[] { "lg-0", "lg-1", "lg-2" }, clients);
    }

    [Fact]
    public async Task TheWarmUpIsMeasuredNowhereAndDoesNotCountTowardTheCount()
    {
        using var server = StartServer(o => o.LogPath = null);
        var before = DateTime.UtcNow;
        var result = await Run(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 500, Warmup = TimeSpan.FromSeconds(1) });
        Assert.Equal(500, result.Requests);
        Assert.Equal(500, result.Histogram.TotalCount);
        Assert.True(result.StartTime >= before.AddSeconds(1), $"measured from {result.StartTime:O}, within a second of {before:O}");
        Assert.Equal(TimeSpan.FromSeconds(1), result.Warmup);
        Assert.True(server.Requests > 500, $"the warm-up sent requests too: the server counted {server.Requests}");
        Assert.Equal(500, result.Timeline.Sum(s => s.Requests));
    }

    [Fact]
    public async Task TheTimelineIsWholeUtcSecondsAddingUpToTheTotals()
    {
        var map = new KeyMap(Enumerable.Range(0, 9).ToDictionary(k => k.ToString(), k => "v")); // key 9 is an error
        using var server = StartServer(o => { o.LogPath = null; o.KeyMap = map; });
        var result = await Run(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 0, Duration = TimeSpan.FromSeconds(2.5) });
        Assert.True(result.Timeline.Length >= 3, $"{result.Timeline.Length} seconds in a 2.5 s run");
        Assert.All(result.Timeline, s => Assert.Equal(0, s.Time.Ticks % TimeSpan.TicksPerSecond));
        Assert.Equal(result.Timeline.Select(s => s.Time).Distinct().OrderBy(t => t), result.Timeline.Select(s => s.Time));
        Assert.True(result.Timeline[0].Time <= result.StartTime && result.StartTime < result.Timeline[0].Time.AddSeconds(1));
        Assert.Equal(result.Requests, result.Timeline.Sum(s => s.Requests));
        Assert.Equal(result.Errors, result.Timeline.Sum(s => s.Errors));
        Assert.Equal(result.ErrorReply, result.Errors);
        Assert.All(result.Timeline.Where(s => s.Requests > s.Errors), s => Assert.True(s.P50 <= s.P99 && s.P99 <= s.Max));
    }

    [Fact]
    public async Task ClosedLoopLatenciesAreTheirOwnUncorrectedOnes()
    {
        using var server = StartServer(o => o.LogPath = null);
        var result = await Run(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 2_000 });
        Assert.Null(result.Rate);
        Assert.Equal(result.EncodedHistogram, result.EncodedUncorrectedHistogram);
        Assert.Equal(0, result.LateRequests);
    }

    [Fact]
    public async Task AStopEndsTheRunAndReturnsWhatRanMarkedInterrupted()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var stop = new CancellationTokenSource();
        var generator = new LoadGenerator(new LoadOptions { Port = server.Port, Concurrency = 4, Count = 0, Duration = TimeSpan.FromMinutes(5) });
        var run = generator.RunAsync(stop.Token);
        try
        {
            Eventually(() => generator.Completed >= 2_000, "2,000 requests");
        }
        finally
        {
            stop.Cancel();
        }

        var result = await run.WaitAsync(Bound);
        Assert.True(result.Interrupted);
        Assert.True(result.Requests >= 2_000, $"{result.Requests} requests");
        Assert.Equal(0, result.Errors); // the requests in flight at the stop count nowhere, not as errors
        Assert.True(result.Elapsed < TimeSpan.FromMinutes(5));
        Assert.Equal(result.Requests, result.Timeline.Sum(s => s.Requests));
    }

    [Theory]
    [InlineData(nameof(LoadOptions.Pipeline))]
    [InlineData(nameof(LoadOptions.Keys))]
    [InlineData(nameof(LoadOptions.ClientIdPrefix))]
    [InlineData(nameof(LoadOptions.Rate))]
    public void OptionsThatCannotWorkNameTheOptionAndTheValue(string option)
    {
        var options = new LoadOptions();
        object? value = null;
        switch (option)
        {
            case nameof(LoadOptions.Pipeline):
                options.Pipeline = 4;
                options.Connection = ConnectionMode.PerMessage;
                value = 4;
                break;
            case nameof(LoadOptions.Keys):
                options.Keys = new[] { "ok", "two words" };
                value = "two words";
                break;
            case nameof(LoadOptions.ClientIdPrefix):
                options.ClientIdPrefix = new string('p', 64);
                value = options.ClientIdPrefix;
                break;
            case nameof(LoadOptions.Rate):
                options.Rate = -1;
                value = -1.0;
                break;
        }

        var error = Assert.Throws<LoadOptionsException>(() => new LoadGenerator(options));
        Assert.Equal(option, error.Option);
        Assert.Equal(value, error.Value);
        Assert.DoesNotContain("(Parameter", error.Message);
        Assert.Null(error.ParamName);
    }

    [Fact]
    public void RecordingAllocatesNothing()
    {
        var stripe = new LoadRecorder(1).StripeOf(0);
        stripe.Succeeded(1, 100, 90);
        stripe.Failed(LoadErrorKind.Timeout, 1);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            stripe.Succeeded(1, 100 + i, 90 + i);
            stripe.Succeeded(16, long.MaxValue, long.MaxValue); // past the range: recorded as its top, not thrown
            stripe.Failed(LoadErrorKind.ErrorReply, 1);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        var second = new LoadInterval(second: true);
        var total = new LoadInterval();
        new LoadRecorder(1).Drain(second, total);
        Assert.Equal(0, total.Corrected.TotalCount);
    }
}
