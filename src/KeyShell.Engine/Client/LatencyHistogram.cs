using System;
using System.Collections.Generic;

namespace KeyShell.Engine.Client;

/// <summary>
/// Latencies in microseconds, in log-linear buckets as HdrHistogram keeps them: exact below 256 µs, and
/// above that 128 buckets per power of two, so a reported value is the lowest of its bucket and at most
/// <see cref="RelativeError"/> (1/128, 0.8 %) below the true one. Rows of buckets (one per power of two)
/// are allocated when a value first lands in them: a worker whose latencies span a few powers of two keeps
/// a few KiB, whatever the run's length. Not thread-safe: one per worker, merged at the end.
/// Its sparse form (<see cref="ToSparse"/>: each used bucket's lowest value and its count) is two arrays of
/// Int64, which survive PowerShell's serialization, and it merges with other runs' exactly.
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>The largest error of a reported value, relative to the true one (it is never above it).</summary>
    public const double RelativeError = 1.0 / SubBuckets;

    private const int SubBuckets = 128;                 // buckets per power of two, above the exact range
    private const int ExactLimit = 2 * SubBuckets;      // 0..255 µs are counted exactly, in row 0
    private const int Rows = 64 - 8 + 1;                // row k >= 1 holds [128 << k, 256 << k), k up to 56

    private readonly long[]?[] _rows = new long[Rows][];

    public long Count { get; private set; }

    public long Max { get; private set; }

    public void Record(long microseconds) => Record(microseconds, 1);

    /// <summary>Records <paramref name="count"/> samples of one value.</summary>
    public void Record(long microseconds, long count)
    {
        if (count <= 0)
        {
            return;
        }

        var value = Math.Max(0, microseconds);
        var row = RowOf(value);
        var buckets = _rows[row] ??= new long[row == 0 ? ExactLimit : SubBuckets];
        buckets[row == 0 ? value : (value >> row) - SubBuckets] += count;
        Count += count;
        Max = Math.Max(Max, value);
    }

    public void Add(LatencyHistogram other)
    {
        for (var row = 0; row < Rows; row++)
        {
            if (other._rows[row] is not { } theirs)
            {
                continue;
            }

            var ours = _rows[row] ??= new long[theirs.Length];
            for (var i = 0; i < theirs.Length; i++)
            {
                ours[i] += theirs[i];
            }
        }

        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The latency below which <paramref name="percentile"/> percent of the samples fall (its bucket's lowest value).</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100 * Count));
        long seen = 0;
        foreach (var (value, count) in Buckets())
        {
            seen += count;
            if (seen >= rank)
            {
                return Math.Min(value, Max);
            }
        }

        return Max;
    }

    /// <summary>The used buckets, in ascending order: each one's lowest value and its count.</summary>
    public void ToSparse(out long[] values, out long[] counts)
    {
        var used = new List<(long Value, long Count)>(Buckets());
        values = new long[used.Count];
        counts = new long[used.Count];
        for (var i = 0; i < used.Count; i++)
        {
            (values[i], counts[i]) = used[i];
        }
    }

    /// <summary>A histogram from its sparse form; <paramref name="max"/> is the true maximum, which the buckets round down.</summary>
    public static LatencyHistogram FromSparse(IReadOnlyList<long> values, IReadOnlyList<long> counts, long max)
    {
        if (values.Count != counts.Count)
        {
            throw new ArgumentException($"The histogram has {values.Count} bucket values but {counts.Count} counts.");
        }

        var histogram = new LatencyHistogram();
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] < 0 || counts[i] < 0)
            {
                throw new ArgumentException("Histogram bucket values and counts cannot be negative.");
            }

            histogram.Record(values[i], counts[i]);
        }

        histogram.Max = Math.Max(histogram.Max, max);
        return histogram;
    }

    private IEnumerable<(long Value, long Count)> Buckets()
    {
        for (var row = 0; row < Rows; row++)
        {
            if (_rows[row] is not { } buckets)
            {
                continue;
            }

            for (var i = 0; i < buckets.Length; i++)
            {
                if (buckets[i] != 0)
                {
                    yield return (row == 0 ? i : (long)(i + SubBuckets) << row, buckets[i]);
                }
            }
        }
    }

    /// <summary>0 for the exact range; above it k, where value &gt;&gt; k lands in [128, 256).</summary>
    private static int RowOf(long value) => value < ExactLimit ? 0 : Log2(value) - 7;

    private static int Log2(long value)
    {
#if NET
        return System.Numerics.BitOperations.Log2((ulong)value);
#else
        var log = 0;
        while ((value >>= 1) != 0)
        {
            log++;
        }

        return log;
#endif
    }
}
