using KeyShell.Engine.Client;

namespace KeyShell.Engine.Tests;

public class LatencyHistogramTests
{
    private static readonly double[] Percentiles = { 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 100 };

    /// <summary>The percentile as the histogram defines it (the sample of rank ceil(p% of n)), read off every sample.</summary>
    private static long TruePercentile(long[] sorted, double percentile) =>
        sorted[Math.Max(1, (long)Math.Ceiling(percentile / 100 * sorted.Length)) - 1];

    private static LatencyHistogram Of(IEnumerable<long> values)
    {
        var histogram = new LatencyHistogram();
        foreach (var value in values)
        {
            histogram.Record(value);
        }

        return histogram;
    }

    private static void AssertWithinBound(long[] samples, LatencyHistogram histogram)
    {
        var sorted = samples.OrderBy(v => v).ToArray();
        Assert.Equal(sorted.Length, histogram.Count);
        Assert.Equal(sorted[^1], histogram.Max);
        foreach (var p in Percentiles)
        {
            var truth = TruePercentile(sorted, p);
            var reported = histogram.Percentile(p);
            Assert.True(reported <= truth && truth <= reported * (1 + LatencyHistogram.RelativeError),
                $"p{p}: reported {reported}, true {truth}: more than {LatencyHistogram.RelativeError:P2} apart");
        }
    }

    [Fact]
    public void CountsExactlyBelow256Microseconds()
    {
        var samples = Enumerable.Range(0, 256).Select(v => (long)v).ToArray();
        var histogram = Of(samples);
        foreach (var p in Percentiles)
        {
            Assert.Equal(TruePercentile(samples, p), histogram.Percentile(p));
        }
    }

    [Fact]
    public void ReportsPercentilesOfOneToAHundredThousandWithinTheBound()
    {
        var samples = Enumerable.Range(1, 100_000).Select(v => (long)v).ToArray();
        AssertWithinBound(samples, Of(samples));
        var small = Of(new long[] { 5, 7, 9, 11 });
        Assert.Equal(7, small.Percentile(50));
        Assert.Equal(11, small.Percentile(100));
    }

    [Fact]
    public void ReportsEveryPercentileWithinOnePercentOverNineDecades()
    {
        Assert.True(LatencyHistogram.RelativeError < 0.01);
        var random = new Random(15);
        var samples = Enumerable.Range(0, 50_000).Select(_ => (long)Math.Exp(random.NextDouble() * Math.Log(1e9))).ToArray();
        AssertWithinBound(samples, Of(samples));
    }

    [Fact]
    public void ASparseCopyHasTheSameBucketsAndPercentiles()
    {
        var random = new Random(7);
        var samples = Enumerable.Range(0, 10_000).Select(_ => (long)random.Next(50, 2_000_000)).ToArray();
        var histogram = Of(samples);
        histogram.ToSparse(out var values, out var counts);
        Assert.Equal(samples.Length, counts.Sum());
        Assert.True(values.Length < 2_000, $"{values.Length} buckets for 10,000 samples over 5 decades");
        Assert.Equal(values.OrderBy(v => v), values);
        var copy = LatencyHistogram.FromSparse(values, counts, histogram.Max);
        copy.ToSparse(out var copiedValues, out var copiedCounts);
        Assert.Equal(values, copiedValues);
        Assert.Equal(counts, copiedCounts);
        Assert.Equal(histogram.Max, copy.Max);
        foreach (var p in Percentiles)
        {
            Assert.Equal(histogram.Percentile(p), copy.Percentile(p));
        }
    }

    [Fact]
    public void MergedHistogramsEqualOneHistogramOfAllTheSamples()
    {
        var random = new Random(3);
        var parts = Enumerable.Range(0, 3).Select(i => Enumerable.Range(0, 5_000).Select(_ => (long)random.Next(100 * (i + 1), 100_000 * (i + 1))).ToArray()).ToArray();
        var merged = new LatencyHistogram();
        foreach (var part in parts)
        {
            merged.Add(Of(part));
        }

        var all = parts.SelectMany(p => p).ToArray();
        var whole = Of(all);
        foreach (var p in Percentiles)
        {
            Assert.Equal(whole.Percentile(p), merged.Percentile(p));
        }

        AssertWithinBound(all, merged);
    }

    [Fact]
    public void RejectsASparseFormWhoseArraysDoNotMatch()
    {
        Assert.Throws<ArgumentException>(() => LatencyHistogram.FromSparse(new long[] { 1, 2 }, new long[] { 1 }, 2));
        Assert.Throws<ArgumentException>(() => LatencyHistogram.FromSparse(new long[] { 1 }, new long[] { -1 }, 2));
    }
}
