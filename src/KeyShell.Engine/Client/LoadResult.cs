using System;
using System.Collections.Generic;
using System.Linq;
using HdrHistogram;

namespace KeyShell.Engine.Client;

/// <summary>
/// What a load run measured, warm-up excluded. Latencies are of successful requests only, each from the time
/// the request was due (open loop: its place in the schedule; closed loop: when it was sent), the figures
/// users compare (mean, standard deviation, percentiles to p99.99, maximum) read off HdrHistogram histograms;
/// the same figures from the time each request was actually sent are in <see cref="Uncorrected"/>. Errors
/// are counted by kind. The result carries its histograms as text and its per-second timeline, so results
/// of several generators, also deserialized ones from remoting or jobs, merge into one (<see cref="LoadResultMerge"/>).
/// </summary>
public sealed class LoadResult
{
    private readonly long[] _errors;

    /// <summary>Rebuilds a result from its parts, as a deserialized result (Invoke-Command, Receive-Job) or an
    /// exported one (.csv, .json) carries them. Throws <see cref="ArgumentException"/> when they cannot be one result.</summary>
    public LoadResult(LoadResultParts parts)
        : this(Check(parts), Decode(parts.EncodedHistogram, "Histogram"), Decode(parts.EncodedUncorrectedHistogram ?? parts.EncodedHistogram, "UncorrectedHistogram"))
    {
    }

    internal LoadResult(LoadResultParts parts, HistogramBase histogram, HistogramBase uncorrected)
    {
        var start = ToUtc(parts.StartTime);
        var end = ToUtc(parts.EndTime);
        _errors = new[] { parts.ConnectFailed, parts.Timeout, parts.ConnectionLost, parts.ErrorReply, parts.UnexpectedReply };
        if (end < start || parts.Runs < 1 || _errors.Any(e => e < 0) || parts.LateRequests < 0 || uncorrected.TotalCount != histogram.TotalCount)
        {
            throw new ArgumentException("A load result needs StartTime <= EndTime, at least one run, no negative count, and as many uncorrected latencies as corrected ones.");
        }

        ComputerName = parts.ComputerName ?? throw new ArgumentException("A load result needs a ComputerName.");
        Port = parts.Port;
        Concurrency = parts.Concurrency;
        Connection = parts.Connection;
        Pipeline = parts.Pipeline;
        Framing = parts.Framing;
        Rate = parts.Rate;
        Keys = (parts.Keys ?? LoadOptions.SeedKeys).ToArray();
        ClientIdPrefix = parts.ClientIdPrefix ?? string.Empty;
        Warmup = parts.Warmup;
        StartTime = start;
        EndTime = end;
        Elapsed = end - start;
        Runs = parts.Runs;
        Interrupted = parts.Interrupted;
        Errors = _errors.Sum();
        Requests = histogram.TotalCount + Errors;
        LateRequests = parts.LateRequests;
        RequestsPerSecond = Elapsed > TimeSpan.Zero ? histogram.TotalCount / Elapsed.TotalSeconds : 0;
        AchievedRate = Elapsed > TimeSpan.Zero ? Requests / Elapsed.TotalSeconds : 0;
        Histogram = histogram;
        UncorrectedHistogram = uncorrected;
        Latency = new LatencySummary(histogram);
        Uncorrected = new LatencySummary(uncorrected);
        EncodedHistogram = LatencyHistograms.Encode(histogram);
        EncodedUncorrectedHistogram = LatencyHistograms.Encode(uncorrected);
        Timeline = (parts.Timeline ?? Array.Empty<LoadSecond>()).OrderBy(s => s.Time).ToArray();
    }

    public string ComputerName { get; }

    public int Port { get; }

    /// <summary>Workers (connections) that ran at once; for a merged result, the sum over its runs.</summary>
    public int Concurrency { get; }

    public ConnectionMode Connection { get; }

    public int Pipeline { get; }

    public Framing Framing { get; }

    /// <summary>The rate asked for (requests per second, open loop); null for a closed loop. Merged: the sum.</summary>
    public double? Rate { get; }

    /// <summary>The keys sent.</summary>
    public string[] Keys { get; }

    public string ClientIdPrefix { get; }

    /// <summary>How long the load ran before the measured window began.</summary>
    public TimeSpan Warmup { get; }

    /// <summary>Requests measured, answered or failed.</summary>
    public long Requests { get; }

    /// <summary>Requests that failed, of every kind (the five properties that follow).</summary>
    public long Errors { get; }

    public long ConnectFailed => _errors[(int)LoadErrorKind.ConnectFailed];

    public long Timeout => _errors[(int)LoadErrorKind.Timeout];

    public long ConnectionLost => _errors[(int)LoadErrorKind.ConnectionLost];

    public long ErrorReply => _errors[(int)LoadErrorKind.ErrorReply];

    public long UnexpectedReply => _errors[(int)LoadErrorKind.UnexpectedReply];

    /// <summary>Open loop: requests sent later than they were due (by more than their connection's interval, and
    /// at least 2 ms), because the reply before them came late: the rate was not held.</summary>
    public long LateRequests { get; }

    /// <summary>How long the measured window took: for a merged result, from the earliest start to the latest end.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Successful requests per second over <see cref="Elapsed"/>.</summary>
    public double RequestsPerSecond { get; }

    /// <summary>Requests (of any outcome) per second over <see cref="Elapsed"/>: with -Rate, the rate achieved.</summary>
    public double AchievedRate { get; }

    public TimeSpan? Mean => Latency.Mean;

    public TimeSpan? StdDev => Latency.StdDev;

    public TimeSpan? P50 => Latency.P50;

    public TimeSpan? P90 => Latency.P90;

    public TimeSpan? P99 => Latency.P99;

    /// <summary>The 99.9th percentile.</summary>
    public TimeSpan? P999 => Latency.P999;

    /// <summary>The 99.99th percentile.</summary>
    public TimeSpan? P9999 => Latency.P9999;

    public TimeSpan? Max => Latency.Max;

    /// <summary>The latency figures above, together (corrected: from the time each request was due).</summary>
    public LatencySummary Latency { get; }

    /// <summary>The same figures from the time each request was sent (what a closed-loop tool reports); in a
    /// closed loop they equal the corrected ones.</summary>
    public LatencySummary Uncorrected { get; }

    /// <summary>When the measured window began (UTC; after the warm-up).</summary>
    public DateTime StartTime { get; }

    /// <summary>When the run ended (UTC).</summary>
    public DateTime EndTime { get; }

    /// <summary>How many runs this result merges (1 for a single Measure-KeyServer run).</summary>
    public int Runs { get; }

    /// <summary>The run was stopped (Ctrl+C) before its count or duration: the result is of what ran.</summary>
    public bool Interrupted { get; }

    /// <summary>The successes' latencies (corrected), in microseconds: an HdrHistogram histogram.</summary>
    public HistogramBase Histogram { get; }

    /// <summary>The successes' latencies from the time each request was sent, in microseconds.</summary>
    public HistogramBase UncorrectedHistogram { get; }

    /// <summary><see cref="Histogram"/> as HdrHistogram's compressed encoding in base64: what survives remoting, jobs and export.</summary>
    public string EncodedHistogram { get; }

    /// <summary><see cref="UncorrectedHistogram"/> as HdrHistogram's compressed encoding in base64.</summary>
    public string EncodedUncorrectedHistogram { get; }

    /// <summary>Per second of the UTC clock: requests, errors, p50, p99 and maximum latency.</summary>
    public LoadSecond[] Timeline { get; }

    /// <summary>The error count of <paramref name="kind"/>.</summary>
    public long ErrorsOf(LoadErrorKind kind) => _errors[(int)kind];

    /// <summary>This result's parts, from which <see cref="LoadResult(LoadResultParts)"/> rebuilds it.</summary>
    public LoadResultParts ToParts() => new()
    {
        ComputerName = ComputerName,
        Port = Port,
        Concurrency = Concurrency,
        Connection = Connection,
        Pipeline = Pipeline,
        Framing = Framing,
        Rate = Rate,
        Keys = Keys,
        ClientIdPrefix = ClientIdPrefix,
        Warmup = Warmup,
        StartTime = StartTime,
        EndTime = EndTime,
        Runs = Runs,
        Interrupted = Interrupted,
        ConnectFailed = ConnectFailed,
        Timeout = Timeout,
        ConnectionLost = ConnectionLost,
        ErrorReply = ErrorReply,
        UnexpectedReply = UnexpectedReply,
        LateRequests = LateRequests,
        EncodedHistogram = EncodedHistogram,
        EncodedUncorrectedHistogram = EncodedUncorrectedHistogram,
        Timeline = Timeline,
    };

    public override string ToString() =>
        $"{ComputerName}:{Port} {Requests} requests, {Errors} errors, {RequestsPerSecond:0} /s, {Latency}";

    private static LoadResultParts Check(LoadResultParts parts) => parts ?? throw new ArgumentNullException(nameof(parts));

    private static HistogramBase Decode(string? text, string name)
    {
        try
        {
            return LatencyHistograms.Decode(text ?? throw new FormatException("it is missing"));
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"The load result's {name} cannot be read: {e.Message}", e);
        }
    }

    private static DateTime ToUtc(DateTime time) => time.Kind == DateTimeKind.Utc ? time : time.ToUniversalTime();
}

/// <summary>
/// The parts a load result is made of, as they travel (deserialized, or read back from an export): the
/// target and mode, the window, the error counts by kind, the histograms as text and the timeline.
/// Everything else (requests, rates, percentiles) follows from these.
/// </summary>
public sealed class LoadResultParts
{
    public string ComputerName { get; set; } = string.Empty;

    public int Port { get; set; }

    public int Concurrency { get; set; }

    public ConnectionMode Connection { get; set; } = ConnectionMode.Persistent;

    public int Pipeline { get; set; } = 1;

    public Framing Framing { get; set; }

    public double? Rate { get; set; }

    public IReadOnlyList<string>? Keys { get; set; }

    public string? ClientIdPrefix { get; set; }

    public TimeSpan Warmup { get; set; }

    public DateTime StartTime { get; set; }

    public DateTime EndTime { get; set; }

    public int Runs { get; set; } = 1;

    public bool Interrupted { get; set; }

    public long ConnectFailed { get; set; }

    public long Timeout { get; set; }

    public long ConnectionLost { get; set; }

    public long ErrorReply { get; set; }

    public long UnexpectedReply { get; set; }

    public long LateRequests { get; set; }

    /// <summary>The corrected latencies: HdrHistogram's compressed encoding in base64.</summary>
    public string? EncodedHistogram { get; set; }

    /// <summary>The uncorrected latencies; null: the same as the corrected (a closed loop).</summary>
    public string? EncodedUncorrectedHistogram { get; set; }

    public IReadOnlyList<LoadSecond>? Timeline { get; set; }
}
