using System;
using System.Globalization;
using System.IO;
using HdrHistogram;
using HdrHistogram.Utilities;

namespace KeyShell.Engine.Client;

/// <summary>
/// The load generator's latency histograms: HdrHistogram's, in microseconds, from 1 µs to two days with 3
/// significant digits (a value is reported within 0.1 % of the true one), and their text form: HdrHistogram's
/// compressed encoding in base64, as HdrHistogram's own .hlog files hold it (any HdrHistogram library reads it),
/// which is what a result carries through PowerShell remoting and jobs.
/// </summary>
public static class LatencyHistograms
{
    /// <summary>The largest latency recorded, in microseconds (two days); longer ones are recorded as this.</summary>
    public const long HighestMicroseconds = 2L * 24 * 3600 * 1_000_000;

    public const int SignificantDigits = 3;

    /// <summary>A second of the timeline keeps 2 significant digits (within 1 %): 31 KiB a histogram, where 3
    /// digits take 232 KiB, which the runtime keeps on its large-object heap; a new one each second would
    /// bring full collections, and their pauses, into the measurement.</summary>
    public const int SecondSignificantDigits = 2;

    /// <summary>An empty histogram of the generator's range and precision.</summary>
    public static HistogramBase Create() => new LongHistogram(1, HighestMicroseconds, SignificantDigits);

    /// <summary>An empty histogram for a second of the timeline (<see cref="SecondSignificantDigits"/>).</summary>
    public static HistogramBase CreateForSecond() => new LongHistogram(1, HighestMicroseconds, SecondSignificantDigits);

    /// <summary>A value in the histogram's range: below 1 µs is 0, above two days is two days.</summary>
    internal static long Clamp(long microseconds) => microseconds < 0 ? 0 : microseconds > HighestMicroseconds ? HighestMicroseconds : microseconds;

    /// <summary>HdrHistogram's compressed encoding of <paramref name="histogram"/>, in base64.</summary>
    public static string Encode(HistogramBase histogram)
    {
        if (histogram is null)
        {
            throw new ArgumentNullException(nameof(histogram));
        }

        var buffer = ByteBuffer.Allocate(histogram.GetNeededByteBufferCapacity());
        var length = histogram.EncodeIntoCompressedByteBuffer(buffer);
        var bytes = new byte[length];
        buffer.Position = 0;
        for (var i = 0; i < length; i++)
        {
            bytes[i] = buffer.Get();
        }

        return Convert.ToBase64String(bytes);
    }

    /// <summary>Reads a histogram written by <see cref="Encode"/> (or by any HdrHistogram library's compressed
    /// encoding); throws <see cref="FormatException"/> when the text is not one.</summary>
    public static HistogramBase Decode(string text) => Decode(text, SignificantDigits);

    /// <summary>As <see cref="Decode(string)"/>, into a histogram of <paramref name="digits"/> significant digits.</summary>
    internal static HistogramBase Decode(string text, int digits)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new FormatException("The histogram is empty: expected HdrHistogram's compressed encoding in base64.");
        }

        try
        {
            var decoded = HistogramEncoding.DecodeFromCompressedByteBuffer(ByteBuffer.Allocate(Convert.FromBase64String(text.Trim())), 0);
            if (decoded.GetMaxValue() > HighestMicroseconds)
            {
                throw new FormatException($"The histogram holds latencies above two days ({decoded.GetMaxValue()} µs).");
            }

            // In the generator's own range and precision, so that histograms of any origin add up exactly.
            var histogram = new LongHistogram(1, HighestMicroseconds, digits);
            histogram.Add(decoded);
            return histogram;
        }
        catch (Exception e) when (e is not FormatException)
        {
            throw new FormatException("The histogram is not HdrHistogram's compressed encoding in base64: " + e.Message, e);
        }
    }

    /// <summary>The latency at <paramref name="percentile"/> (0-100), or null when nothing was recorded.</summary>
    public static TimeSpan? At(HistogramBase histogram, double percentile) =>
        histogram.TotalCount == 0 ? null : FromMicroseconds(histogram.GetValueAtPercentile(percentile));

    public static TimeSpan FromMicroseconds(double microseconds) => TimeSpan.FromTicks((long)Math.Round(microseconds * 10));

    /// <summary>Microseconds between two Stopwatch timestamps.</summary>
    internal static long Microseconds(long from, long to) => (long)((to - from) * (1_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    /// <summary>
    /// HdrHistogram's percentile distribution of <paramref name="histogram"/>, values in milliseconds, exactly as
    /// HdrHistogram writes it (the <c>Value Percentile TotalCount 1/(1-Percentile)</c> table and the
    /// <c>#[Mean</c>, <c>#[Max</c>, <c>#[Buckets</c> footer): the .hgrm text that HdrHistogram's plotter reads.
    /// </summary>
    public static void WritePercentileDistribution(HistogramBase histogram, TextWriter writer)
    {
        if (histogram is null || writer is null)
        {
            throw new ArgumentNullException(histogram is null ? nameof(histogram) : nameof(writer));
        }

        // The library formats through the writer (and partly the current culture); the file format is
        // invariant: a decimal point, whatever the machine's culture.
        var culture = CultureInfo.CurrentCulture;
        using var invariant = new StringWriter(CultureInfo.InvariantCulture);
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            histogram.OutputPercentileDistribution(invariant, percentileTicksPerHalfDistance: 5, outputValueUnitScalingRatio: 1000.0, useCsvFormat: false);
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }

        writer.Write(invariant.ToString());
    }
}
