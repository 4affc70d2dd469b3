using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class LoadResultMergeTests
{
    private static readonly DateTime T0 = new(2025, 1, 1, 12, 0, 0, DateTimeKind.Utc);

    /// <summary>A run's result with known latencies: what the generator would have built.</summary>
    private static LoadResult Run(long[] latencies, long errors, DateTime start, TimeSpan elapsed, int port = 8080, int pipeline = 1, int concurrency = 4)
    {
        var histogram = new LatencyHistogram();
        foreach (var latency in latencies)
        {
            histogram.Record(latency);
        }

        var options = new LoadOptions { Port = port, Pipeline = pipeline, Concurrency = concurrency };
        return new LoadResult(options, latencies.Length, errors, start, elapsed, histogram);
    }

    private static long Micros(TimeSpan time) => time.Ticks / 10;

    [Fact]
    public void MergesCountsExactlyAndPercentilesFromTheMergedHistogram()
    {
        // Three generators: fast, middling and slow, over overlapping windows.
        var a = Enumerable.Range(1, 3_000).Select(i => 100L + (i % 200)).ToArray();          // 100-299 µs
        var b = Enumerable.Range(1, 2_000).Select(i => 1_000L + (i * 7 % 4_000)).ToArray();  // 1-5 ms
        var c = Enumerable.Range(1, 1_000).Select(i => 20_000L + (i * 13 % 80_000)).ToArray(); // 20-100 ms
        var results = new[]
        {
            Run(a, 10, T0, TimeSpan.FromSeconds(10)),
            Run(b, 0, T0.AddSeconds(2), TimeSpan.FromSeconds(9)),
            Run(c, 5, T0.AddSeconds(-1), TimeSpan.FromSeconds(4)),
        };

        Assert.Null(LoadResultMerge.Mismatch(results));
        var merged = LoadResultMerge.Merge(results);

        Assert.Equal(6_000, merged.Requests);
        Assert.Equal(15, merged.Errors);
        Assert.Equal(12, merged.Concurrency);
        Assert.Equal(3, merged.Runs);
        Assert.Equal(T0.AddSeconds(-1), merged.StartTime);
        Assert.Equal(T0.AddSeconds(11), merged.EndTime);
        Assert.Equal(TimeSpan.FromSeconds(12), merged.Elapsed);
        Assert.Equal((6_000 - 15) / 12.0, merged.RequestsPerSecond, 9);
        Assert.Equal(6_000, merged.LatencyCounts.Sum());
        Assert.Equal(c.Max(), Micros(merged.Max));

        // Percentiles of all 6,000 latencies, never an average of the three runs' percentiles.
        var all = a.Concat(b).Concat(c).OrderBy(v => v).ToArray();
        foreach (var (p, reported) in new[] { (50.0, merged.P50), (90.0, merged.P90), (99.0, merged.P99) })
        {
            var truth = all[(int)Math.Ceiling(p / 100 * all.Length) - 1];
            var value = Micros(reported);
            Assert.True(value <= truth && truth <= value * (1 + LatencyHistogram.RelativeError), $"p{p}: merged {value} µs, true {truth} µs");
        }

        var averagedP90 = results.Average(r => Micros(r.P90));
        Assert.NotEqual(averagedP90, Micros(merged.P90), 0.02 * averagedP90);
    }

    [Fact]
    public void AResultRebuiltFromItsPartsIsTheSame()
    {
        var original = Run(Enumerable.Range(1, 1_000).Select(i => (long)i * 37).ToArray(), 3, T0, TimeSpan.FromSeconds(2));
        var rebuilt = new LoadResult(
            original.ComputerName, original.Port, original.Concurrency, original.Connection, original.Pipeline, original.Framing,
            original.Requests, original.Errors, original.StartTime, original.EndTime, original.Max,
            original.LatencyBuckets, original.LatencyCounts);
        Assert.Equal(original.P50, rebuilt.P50);
        Assert.Equal(original.P90, rebuilt.P90);
        Assert.Equal(original.P99, rebuilt.P99);
        Assert.Equal(original.Max, rebuilt.Max);
        Assert.Equal(original.Elapsed, rebuilt.Elapsed);
        Assert.Equal(original.RequestsPerSecond, rebuilt.RequestsPerSecond, 9);
        Assert.Equal(original.LatencyBuckets, rebuilt.LatencyBuckets);
        Assert.Equal(original.LatencyCounts, rebuilt.LatencyCounts);

        // Local times are taken as what they are: the same instant in UTC.
        var local = new LoadResult("h", 1, 1, ConnectionMode.Persistent, 1, Framing.Line, 1, 0, T0.ToLocalTime(), T0.AddSeconds(1).ToLocalTime(), TimeSpan.Zero, new long[] { 5 }, new long[] { 1 });
        Assert.Equal(T0, local.StartTime);
        Assert.Equal(DateTimeKind.Utc, local.StartTime.Kind);
    }

    [Fact]
    public void NamesTheDifferencesBetweenTargetsAndModes()
    {
        var one = Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1));
        Assert.Contains("targets 127.0.0.1:8080, 127.0.0.1:9090", LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), port: 9090) }));
        Assert.Contains("modes Persistent/Pipeline 1/Line, Persistent/Pipeline 8/Line", LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), pipeline: 8) }));
        Assert.Null(LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 99 }, 0, T0, TimeSpan.FromSeconds(3), concurrency: 64) }));
    }

    [Fact]
    public void RejectsResultsThatCannotBe()
    {
        Assert.Throws<ArgumentException>(() => LoadResultMerge.Merge(Array.Empty<LoadResult>()));
        Assert.Throws<ArgumentException>(() => new LoadResult("h", 1, 1, ConnectionMode.Persistent, 1, Framing.Line, 1, 2, T0, T0, TimeSpan.Zero, new long[0], new long[0]));
        Assert.Throws<ArgumentException>(() => new LoadResult("h", 1, 1, ConnectionMode.Persistent, 1, Framing.Line, 1, 0, T0, T0.AddSeconds(-1), TimeSpan.Zero, new long[0], new long[0]));
    }

    [Fact]
    public async Task AGeneratorWaitsForStartAtAndCarriesItsWindowAndHistogram()
    {
        using var server = StartServer(o => o.LogPath = null);
        var startAt = DateTime.UtcNow.AddMilliseconds(700);
        var result = await new LoadGenerator(new LoadOptions { Port = server.Port, Concurrency = 2, Count = 500, StartAt = startAt }).RunAsync().WaitAsync(Bound);
        Assert.True(result.StartTime >= startAt, $"started at {result.StartTime:O}, before {startAt:O}");
        Assert.Equal(DateTimeKind.Utc, result.StartTime.Kind);
        Assert.Equal(result.StartTime + result.Elapsed, result.EndTime);
        Assert.Equal(500, result.LatencyCounts.Sum());
        Assert.Equal(result.LatencyBuckets.Length, result.LatencyCounts.Length);
    }

    [Fact]
    public async Task ACancelEndsTheWaitForStartAt()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var run = new LoadGenerator(new LoadOptions { Port = server.Port, Count = 10, StartAt = DateTime.UtcNow.AddHours(1) }).RunAsync(cancel.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Bound));
        Assert.Equal(0, server.Connections);
    }
}
