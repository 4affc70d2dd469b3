using System;
using HdrHistogram;

namespace KeyShell.Engine.Client;

/// <summary>
/// The figures users compare across load testers, read off one latency histogram: count, mean, standard
/// deviation, percentiles and maximum. Every figure is null when the histogram is empty: a run with no
/// success has no latencies, never made-up ones.
/// </summary>
public sealed class LatencySummary
{
    internal LatencySummary(HistogramBase histogram)
    {
        Count = histogram.TotalCount;
        if (Count == 0)
        {
            return;
        }

        Mean = LatencyHistograms.FromMicroseconds(histogram.GetMean());
        StdDev = LatencyHistograms.FromMicroseconds(histogram.GetStdDeviation());
        P50 = LatencyHistograms.At(histogram, 50);
        P90 = LatencyHistograms.At(histogram, 90);
        P99 = LatencyHistograms.At(histogram, 99);
        P999 = LatencyHistograms.At(histogram, 99.9);
        P9999 = LatencyHistograms.At(histogram, 99.99);
        Max = LatencyHistograms.FromMicroseconds(histogram.GetMaxValue());
    }

    /// <summary>Latencies recorded (successful requests).</summary>
    public long Count { get; }

    public TimeSpan? Mean { get; }

    public TimeSpan? StdDev { get; }

    public TimeSpan? P50 { get; }

    public TimeSpan? P90 { get; }

    public TimeSpan? P99 { get; }

    /// <summary>The 99.9th percentile.</summary>
    public TimeSpan? P999 { get; }

    /// <summary>The 99.99th percentile.</summary>
    public TimeSpan? P9999 { get; }

    public TimeSpan? Max { get; }

    public override string ToString() =>
        Count == 0 ? "no latencies" : $"p50 {P50!.Value.TotalMilliseconds:0.###} ms, p99 {P99!.Value.TotalMilliseconds:0.###} ms, max {Max!.Value.TotalMilliseconds:0.###} ms";
}
