using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

#if ENGINE_NETSTANDARD
public abstract class OpenLoopTests
#else
public class OpenLoopTests
#endif
{
    protected virtual bool UseEventLoops => true;

    private Task<LoadResult> Run(LoadOptions options)
    {
        options.UseEventLoops = UseEventLoops;
        return new LoadGenerator(options).RunAsync().WaitAsync(Bound);
    }

    [Fact]
    public void TheScheduleSpreadsTheRateOverTheWorkersAtFixedIntervals()
    {
        var options = new LoadOptions { Rate = 1000, Concurrency = 4, Pipeline = 2 };
        var schedules = Enumerable.Range(0, 4).Select(w => new LoadSchedule(options, w, start: 0)).ToArray();
        var interval = 4 * 2 / 1000.0 * System.Diagnostics.Stopwatch.Frequency; // a batch of 2 every 8 ms per worker
        var dues = schedules.Select(s => Enumerable.Range(0, 3).Select(_ => s.Next(now: 12345)).ToArray()).ToArray();
        for (var w = 0; w < 4; w++)
        {
            Assert.Equal(interval * w / 4, dues[w][0], 1.0);        // the workers offset by a quarter of the interval
            Assert.Equal(interval, dues[w][1] - dues[w][0], 1.0);
            Assert.Equal(interval, dues[w][2] - dues[w][1], 1.0);
        }

        Assert.True(schedules[0].IsOpen);
        Assert.Equal((long)interval, schedules[0].LateAfter); // 8 ms: more than the 2 ms least
        var closed = new LoadSchedule(new LoadOptions(), 0, start: 0);
        Assert.False(closed.IsOpen);
        Assert.Equal(777, closed.Next(now: 777)); // a closed loop's batch is due when it goes
    }

    [Theory]
    [InlineData(ConnectionMode.Persistent, 1)]
    [InlineData(ConnectionMode.Persistent, 4)]
    [InlineData(ConnectionMode.PerMessage, 1)]
    public async Task ATimedOpenLoopSendsEveryRequestDueInItsDuration(ConnectionMode connection, int pipeline)
    {
        // 800 requests/s for a second over 4 connections: each connection's batches are due every 4 * pipeline / 800 s,
        // the first at its offset, so exactly 800 requests are due before the end, however fast the machine is.
        using var server = StartServer(o => o.LogPath = null);
        var result = await Run(new LoadOptions { Port = server.Port, Rate = 800, Concurrency = 4, Pipeline = pipeline, Connection = connection, Count = 0, Duration = TimeSpan.FromSeconds(1) });
        Assert.Equal(800, result.Requests);
        Assert.Equal(0, result.Errors);
        Assert.Equal(800, result.Rate);
        Assert.Equal(800, server.Requests);
        Assert.True(result.P99 >= result.Uncorrected.P99, $"corrected p99 {result.P99} below the uncorrected {result.Uncorrected.P99}");
        Assert.True(result.P50 >= result.Uncorrected.P50);
        Assert.Equal(result.Requests, result.Timeline.Sum(s => s.Requests));
    }

    [Fact]
    public async Task ACountedOpenLoopTakesAsLongAsItsSchedule()
    {
        // 400 requests at 1,000/s: the last is due 0.396 s after the start, and nothing goes before it is due.
        using var server = StartServer(o => o.LogPath = null);
        var result = await Run(new LoadOptions { Port = server.Port, Rate = 1000, Concurrency = 4, Count = 400 });
        Assert.Equal(400, result.Requests);
        Assert.True(result.Elapsed >= TimeSpan.FromSeconds(0.39), $"400 requests at 1,000/s took only {result.Elapsed}");
    }

    [Fact]
    public async Task AStopEndsAnOpenLoopWaitingForItsNextBatch()
    {
        // One request a second per connection: the workers spend the run waiting; a stop ends the wait.
        using var server = StartServer(o => o.LogPath = null);
        using var stop = new CancellationTokenSource();
        var generator = new LoadGenerator(new LoadOptions { Port = server.Port, Rate = 2, Concurrency = 2, Count = 0, Duration = TimeSpan.FromMinutes(5), UseEventLoops = UseEventLoops });
        var run = generator.RunAsync(stop.Token);
        try
        {
            Eventually(() => generator.Completed >= 2, "the first two requests");
        }
        finally
        {
            stop.Cancel();
        }

        var result = await run.WaitAsync(Bound);
        Assert.True(result.Interrupted);
        Assert.Equal(0, result.Errors);
        Assert.True(result.Requests >= 2);
    }

    [Fact]
    public async Task AServerThatCannotKeepUpMakesLateRequests()
    {
        // A server that takes 50 ms a reply, asked for 200/s over 2 connections (one reply each per 10 ms): every
        // request after the first is sent late, as the schedule slips by a whole interval each time.
        using var slow = new ScriptedServer(request => { Thread.Sleep(50); return ($"Response for the key {request.Split(' ')[1].Trim()} : 1\n", false); });
        var result = await Run(new LoadOptions { Port = slow.Port, Rate = 200, Concurrency = 2, Count = 20 });
        Assert.Equal(20, result.Requests);
        Assert.True(result.LateRequests >= 16, $"{result.LateRequests} of 20 requests late");
        Assert.True(result.AchievedRate < 200 * 0.99, $"achieved {result.AchievedRate}/s");
        Assert.True(result.P99 > result.Uncorrected.P99, "the corrected latencies include the waits for the slipped schedule");
    }
}

public class OpenLoopTestsOnTheAsyncPath : OpenLoopTests
{
    protected override bool UseEventLoops => false;
}
