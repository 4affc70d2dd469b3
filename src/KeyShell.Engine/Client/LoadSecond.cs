using System;
using HdrHistogram;

namespace KeyShell.Engine.Client;

/// <summary>
/// One second of a load run's timeline: the requests that ended in it, their errors, and the latencies of
/// its successes (from the time each request was due). Seconds are whole seconds of the UTC clock, so the
/// timelines of generators on several machines line up (the first and last seconds of a run are partial:
/// see <see cref="Elapsed"/>). Its histogram travels as text (<see cref="EncodedHistogram"/>), so a
/// deserialized timeline merges as a live one does.
/// </summary>
public sealed class LoadSecond
{
    /// <param name="time">The start of this second (UTC; a whole second).</param>
    /// <param name="elapsed">How much of it the run covered (up to a second; more when the sampler was late).</param>
    /// <param name="requests">Requests that ended in it, successes and errors.</param>
    /// <param name="errors">Those that failed.</param>
    /// <param name="encodedHistogram">Its successes' latencies: HdrHistogram's compressed encoding in base64 (<see cref="LatencyHistograms.Encode"/>).</param>
    public LoadSecond(DateTime time, TimeSpan elapsed, long requests, long errors, string encodedHistogram)
        : this(time, elapsed, requests, errors, LatencyHistograms.Decode(encodedHistogram, LatencyHistograms.SecondSignificantDigits), encodedHistogram)
    {
    }

    internal LoadSecond(DateTime time, TimeSpan elapsed, long requests, long errors, HistogramBase histogram, string? encodedHistogram = null)
    {
        if (requests < 0 || errors < 0 || errors > requests || elapsed < TimeSpan.Zero || histogram.TotalCount != requests - errors)
        {
            throw new ArgumentException($"A second of the timeline needs 0 <= Errors <= Requests and as many latencies as successes (here {requests} requests, {errors} errors, {histogram.TotalCount} latencies).");
        }

        Time = time.Kind == DateTimeKind.Utc ? time : time.ToUniversalTime();
        Elapsed = elapsed;
        Requests = requests;
        Errors = errors;
        EncodedHistogram = encodedHistogram ?? LatencyHistograms.Encode(histogram);
        RequestsPerSecond = elapsed > TimeSpan.Zero ? requests / elapsed.TotalSeconds : 0;
        P50 = LatencyHistograms.At(histogram, 50);
        P99 = LatencyHistograms.At(histogram, 99);
        Max = histogram.TotalCount == 0 ? null : LatencyHistograms.FromMicroseconds(histogram.GetMaxValue());
    }

    /// <summary>The start of this second (UTC, a whole second).</summary>
    public DateTime Time { get; }

    /// <summary>How much of the second the run covered.</summary>
    public TimeSpan Elapsed { get; }

    public long Requests { get; }

    public long Errors { get; }

    /// <summary>Requests that ended in this second, per second of it covered.</summary>
    public double RequestsPerSecond { get; }

    public TimeSpan? P50 { get; }

    public TimeSpan? P99 { get; }

    public TimeSpan? Max { get; }

    /// <summary>The latencies of this second's successes: HdrHistogram's compressed encoding in base64.</summary>
    public string EncodedHistogram { get; }

    /// <summary>The latencies of this second's successes, decoded from <see cref="EncodedHistogram"/> on each call
    /// (kept as text: an hour of seconds holds a few MB, where the histograms would hold a few hundred).</summary>
    public HistogramBase GetHistogram() => LatencyHistograms.Decode(EncodedHistogram, LatencyHistograms.SecondSignificantDigits);

    public override string ToString() => $"{Time:HH:mm:ss} {Requests} requests, {Errors} errors";
}
