using HdrHistogram;
using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class LoadResultMergeTests
{
    private static readonly DateTime T0 = new(2025, 1, 1, 12, 0, 0, DateTimeKind.Utc);

    private static HistogramBase Histogram(IEnumerable<long> latencies)
    {
        var histogram = LatencyHistograms.Create();
        foreach (var latency in latencies)
        {
            histogram.RecordValue(latency);
        }

        return histogram;
    }

    /// <summary>A run's result with known latencies (µs), errors and timeline: what the generator would have built.</summary>
    internal static LoadResult Run(long[] latencies, long errors, DateTime start, TimeSpan elapsed, int port = 8080, int pipeline = 1, int concurrency = 4, double? rate = null, long[]? uncorrected = null)
    {
        // The timeline: the latencies spread over the run's seconds, the errors in its first second.
        var seconds = Math.Max(1, (int)Math.Ceiling(elapsed.TotalSeconds));
        var timeline = Enumerable.Range(0, seconds).Select(s =>
        {
            var part = latencies.Where((_, i) => i % seconds == s).ToArray();
            var errorsHere = s == 0 ? errors : 0;
            return new LoadSecond(start.AddSeconds(s), TimeSpan.FromSeconds(1), part.Length + errorsHere, errorsHere, Histogram(part));
        }).ToArray();
        var parts = new LoadResultParts
        {
            ComputerName = "127.0.0.1",
            Port = port,
            Pipeline = pipeline,
            Concurrency = concurrency,
            Rate = rate,
            StartTime = start,
            EndTime = start + elapsed,
            ConnectionLost = errors,
            Timeline = timeline,
        };
        return new LoadResult(parts, Histogram(latencies), Histogram(uncorrected ?? latencies));
    }

    private static long Micros(TimeSpan? time) => time!.Value.Ticks / 10;

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

        Assert.Equal(6_015, merged.Requests);
        Assert.Equal(15, merged.Errors);
        Assert.Equal(15, merged.ConnectionLost);
        Assert.Equal(12, merged.Concurrency);
        Assert.Equal(3, merged.Runs);
        Assert.Equal(T0.AddSeconds(-1), merged.StartTime);
        Assert.Equal(T0.AddSeconds(11), merged.EndTime);
        Assert.Equal(TimeSpan.FromSeconds(12), merged.Elapsed);
        Assert.Equal(6_000 / 12.0, merged.RequestsPerSecond, 9);
        Assert.Equal(6_015 / 12.0, merged.AchievedRate, 9);
        Assert.Equal(6_000, merged.Histogram.TotalCount);

        // Percentiles of all 6,000 latencies (within HdrHistogram's 0.1 %), never an average of the three runs'.
        var all = a.Concat(b).Concat(c).OrderBy(v => v).ToArray();
        foreach (var (p, reported) in new[] { (50.0, merged.P50), (90.0, merged.P90), (99.0, merged.P99), (99.9, merged.P999) })
        {
            var truth = all[(int)Math.Ceiling(p / 100 * all.Length) - 1];
            Assert.InRange(Micros(reported), truth * 0.999, truth * 1.001);
        }

        Assert.InRange(Micros(merged.Max), c.Max() * 0.999, c.Max() * 1.001);
        Assert.Equal(all.Average(), Micros(merged.Mean), all.Average() * 0.002);
        var averagedP90 = results.Average(r => Micros(r.P90));
        Assert.NotEqual(averagedP90, Micros(merged.P90), 0.02 * averagedP90);
    }

    [Fact]
    public void MergesTimelinesSecondBySecond()
    {
        var a = Run(Enumerable.Repeat(100L, 300).ToArray(), 6, T0, TimeSpan.FromSeconds(3));
        var b = Run(Enumerable.Repeat(5_000L, 200).ToArray(), 0, T0.AddSeconds(1), TimeSpan.FromSeconds(3));
        var merged = LoadResultMerge.Merge(new[] { a, b });

        Assert.Equal(Enumerable.Range(0, 4).Select(s => T0.AddSeconds(s)), merged.Timeline.Select(s => s.Time));
        Assert.Equal(merged.Requests, merged.Timeline.Sum(s => s.Requests));
        Assert.Equal(merged.Errors, merged.Timeline.Sum(s => s.Errors));
        var second1 = merged.Timeline[1]; // 100 of a's (100 µs) and 67 of b's (5 ms)
        Assert.Equal(100 + 67, second1.Requests);
        Assert.InRange(Micros(second1.P50), 99, 101);
        Assert.InRange(Micros(second1.P99), 4_950, 5_050); // a second keeps 2 significant digits: within 1 %
        Assert.Equal(second1.Requests - second1.Errors, second1.GetHistogram().TotalCount);
    }

    [Fact]
    public void AResultRebuiltFromItsPartsIsTheSame()
    {
        var original = Run(Enumerable.Range(1, 1_000).Select(i => (long)i * 37).ToArray(), 3, T0, TimeSpan.FromSeconds(2), rate: 500,
            uncorrected: Enumerable.Range(1, 1_000).Select(i => (long)i * 20).ToArray());
        var rebuilt = new LoadResult(original.ToParts());
        foreach (var property in typeof(LoadResult).GetProperties().Where(p => p.PropertyType != typeof(HistogramBase) && p.PropertyType != typeof(LatencySummary) && !p.PropertyType.IsArray))
        {
            Assert.Equal(property.GetValue(original), property.GetValue(rebuilt));
        }

        Assert.Equal(original.Uncorrected.P99, rebuilt.Uncorrected.P99);
        Assert.NotEqual(original.P99, rebuilt.Uncorrected.P99);
        Assert.Equal(original.Keys, rebuilt.Keys);
        Assert.Equal(original.Timeline.Select(s => (s.Time, s.Requests, s.P99)), rebuilt.Timeline.Select(s => (s.Time, s.Requests, s.P99)));

        // Local times are taken as what they are: the same instant in UTC.
        var parts = original.ToParts();
        parts.StartTime = T0.ToLocalTime();
        parts.EndTime = T0.AddSeconds(1).ToLocalTime();
        var local = new LoadResult(parts);
        Assert.Equal(T0, local.StartTime);
        Assert.Equal(DateTimeKind.Utc, local.StartTime.Kind);
    }

    [Fact]
    public void NamesTheDifferencesBetweenTargetsModesAndLoops()
    {
        var one = Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1));
        Assert.Contains("targets 127.0.0.1:8080, 127.0.0.1:9090", LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), port: 9090) }));
        Assert.Contains("modes Persistent/Pipeline 1/Line, Persistent/Pipeline 8/Line", LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), pipeline: 8) }));
        Assert.Contains("loops closed loop, open loop (-Rate)", LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), rate: 100) }));
        Assert.Null(LoadResultMerge.Mismatch(new[] { one, Run(new long[] { 99 }, 0, T0, TimeSpan.FromSeconds(3), concurrency: 64) }));
    }

    [Fact]
    public void SumsTheRatesAsked()
    {
        var merged = LoadResultMerge.Merge(new[] { Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), rate: 100), Run(new long[] { 10 }, 0, T0, TimeSpan.FromSeconds(1), rate: 250) });
        Assert.Equal(350, merged.Rate);
    }

    [Fact]
    public void ARunWithoutASuccessHasNoLatencies()
    {
        var failed = Run(Array.Empty<long>(), 20, T0, TimeSpan.FromSeconds(1));
        Assert.Equal(20, failed.Requests);
        Assert.Null(failed.P50);
        Assert.Null(failed.P9999);
        Assert.Null(failed.Mean);
        Assert.Null(failed.Max);
        Assert.Null(failed.Uncorrected.P99);
        Assert.Null(failed.Timeline[0].P99);
        Assert.Equal(0, failed.RequestsPerSecond);
    }

    [Fact]
    public void RejectsResultsThatCannotBe()
    {
        Assert.Throws<ArgumentException>(() => LoadResultMerge.Merge(Array.Empty<LoadResult>()));
        var parts = Run(new long[] { 5 }, 0, T0, TimeSpan.FromSeconds(1)).ToParts();
        parts.EndTime = T0.AddSeconds(-1);
        Assert.Throws<ArgumentException>(() => new LoadResult(parts));
        parts = Run(new long[] { 5 }, 0, T0, TimeSpan.FromSeconds(1)).ToParts();
        parts.EncodedHistogram = "not a histogram";
        Assert.Contains("Histogram cannot be read", Assert.Throws<ArgumentException>(() => new LoadResult(parts)).Message);
        parts = Run(new long[] { 5 }, 0, T0, TimeSpan.FromSeconds(1)).ToParts();
        parts.Timeout = -1;
        Assert.Throws<ArgumentException>(() => new LoadResult(parts));
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
        Assert.Equal(500, result.Histogram.TotalCount);
        Assert.Equal(500, result.Timeline.Sum(s => s.Requests));
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
