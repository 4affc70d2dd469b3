using System;

namespace KeyShell.Engine.Client;

/// <summary>
/// Latencies in microseconds, in log-linear buckets (exact below 128 µs, within 1.6% above), so a long run
/// keeps a few kilobytes instead of every sample. Not thread-safe: one per worker, merged at the end.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int Linear = 128;
    private const int SubBuckets = 64;
    private readonly long[] _counts = new long[Linear + (32 * SubBuckets)];

    public long Count { get; private set; }

    public long Max { get; private set; }

    public void Record(long microseconds)
    {
        var value = Math.Max(0, microseconds);
        _counts[IndexOf(value)]++;
        Count++;
        Max = Math.Max(Max, value);
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The latency below which <paramref name="percentile"/> percent of the samples fall.</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(percentile / 100 * Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(ValueOf(i), Max);
            }
        }

        return Max;
    }

    private static int IndexOf(long value)
    {
        if (value < Linear)
        {
            return (int)value;
        }

        var shift = Log2(value) - 6; // value >> shift lands in [64, 127]
        return Linear + ((shift - 1) * SubBuckets) + (int)((value >> shift) - SubBuckets);
    }

    private static long ValueOf(int index)
    {
        if (index < Linear)
        {
            return index;
        }

        var shift = ((index - Linear) / SubBuckets) + 1;
        var sub = (index - Linear) % SubBuckets;
        return (long)(sub + SubBuckets) << shift;
    }

    private static int Log2(long value)
    {
        var log = 0;
        while ((value >>= 1) != 0)
        {
            log++;
        }

        return log;
    }
}
