using System;
using System.Collections.Generic;

namespace KeyShell.Engine.Client;

/// <summary>
/// What a load run measured. Latencies are per request (per batch when pipelined). The result carries its
/// latency histogram in a sparse form (<see cref="LatencyBuckets"/>, <see cref="LatencyCounts"/>) and its
/// window (<see cref="StartTime"/>, <see cref="EndTime"/>, UTC), so results from several generators, also
/// deserialized ones from remoting or jobs, merge into one (<see cref="LoadResultMerge"/>).
/// </summary>
public sealed class LoadResult
{
    internal LoadResult(LoadOptions options, long requests, long errors, DateTime startTime, TimeSpan elapsed, LatencyHistogram latency)
        : this(options.ComputerName, options.Port, options.Concurrency, options.Connection, options.Pipeline, options.Framing,
            requests, errors, startTime, elapsed, latency, runs: 1)
    {
    }

    /// <summary>
    /// Rebuilds a result from its parts, as a deserialized result (Invoke-Command, Receive-Job) carries them.
    /// <paramref name="latencyBuckets"/> are the lowest values of the used buckets in microseconds, and
    /// <paramref name="latencyCounts"/> their counts; <paramref name="max"/> is the slowest request.
    /// </summary>
    public LoadResult(
        string computerName, int port, int concurrency, ConnectionMode connection, int pipeline, Framing framing,
        long requests, long errors, DateTime startTime, DateTime endTime, TimeSpan max,
        IReadOnlyList<long> latencyBuckets, IReadOnlyList<long> latencyCounts, int runs = 1)
        : this(computerName, port, concurrency, connection, pipeline, framing, requests, errors, ToUtc(startTime), ToUtc(endTime) - ToUtc(startTime),
            LatencyHistogram.FromSparse(latencyBuckets ?? throw new ArgumentNullException(nameof(latencyBuckets)), latencyCounts ?? throw new ArgumentNullException(nameof(latencyCounts)), Micros(max)), runs)
    {
        if (requests < 0 || errors < 0 || errors > requests || endTime.ToUniversalTime() < startTime.ToUniversalTime() || runs < 1)
        {
            throw new ArgumentException("A load result needs 0 <= Errors <= Requests, StartTime <= EndTime and at least one run.");
        }
    }

    private LoadResult(
        string computerName, int port, int concurrency, ConnectionMode connection, int pipeline, Framing framing,
        long requests, long errors, DateTime startTime, TimeSpan elapsed, LatencyHistogram latency, int runs)
    {
        ComputerName = computerName ?? throw new ArgumentNullException(nameof(computerName));
        Port = port;
        Concurrency = concurrency;
        Connection = connection;
        Pipeline = pipeline;
        Framing = framing;
        Requests = requests;
        Errors = errors;
        Elapsed = elapsed;
        StartTime = startTime;
        EndTime = startTime + elapsed;
        Runs = runs;
        RequestsPerSecond = elapsed.TotalSeconds > 0 ? (requests - errors) / elapsed.TotalSeconds : 0;
        P50 = FromMicros(latency.Percentile(50));
        P90 = FromMicros(latency.Percentile(90));
        P99 = FromMicros(latency.Percentile(99));
        Max = FromMicros(latency.Max);
        latency.ToSparse(out var buckets, out var counts);
        LatencyBuckets = buckets;
        LatencyCounts = counts;
        Latency = latency;
    }

    public string ComputerName { get; }

    public int Port { get; }

    /// <summary>Workers (connections) that ran at once; for a merged result, the sum over its runs.</summary>
    public int Concurrency { get; }

    public ConnectionMode Connection { get; }

    public int Pipeline { get; }

    public Framing Framing { get; }

    /// <summary>Requests sent (answered or failed).</summary>
    public long Requests { get; }

    /// <summary>Requests that got an error reply, no reply, or no connection.</summary>
    public long Errors { get; }

    /// <summary>How long the run took: for a merged result, from the earliest start to the latest end.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Successful requests per second over <see cref="Elapsed"/>.</summary>
    public double RequestsPerSecond { get; }

    public TimeSpan P50 { get; }

    public TimeSpan P90 { get; }

    public TimeSpan P99 { get; }

    public TimeSpan Max { get; }

    /// <summary>When the first request was sent (UTC).</summary>
    public DateTime StartTime { get; }

    /// <summary>When the run ended (UTC).</summary>
    public DateTime EndTime { get; }

    /// <summary>How many runs this result merges (1 for a single Measure-KeyServer run).</summary>
    public int Runs { get; }

    /// <summary>The latency histogram: the lowest value, in microseconds, of each bucket that has samples, ascending.
    /// A bucket spans less than 1/128 of its lowest value.</summary>
    public long[] LatencyBuckets { get; }

    /// <summary>The latency histogram: how many requests fell in each bucket of <see cref="LatencyBuckets"/>.</summary>
    public long[] LatencyCounts { get; }

    internal LatencyHistogram Latency { get; }

    /// <summary>Merges results: sums, the joint window, the merged histogram (see <see cref="LoadResultMerge"/>).</summary>
    internal static LoadResult Merged(LoadResult first, int concurrency, long requests, long errors, DateTime start, DateTime end, LatencyHistogram latency, int runs) =>
        new(first.ComputerName, first.Port, concurrency, first.Connection, first.Pipeline, first.Framing, requests, errors, start, end - start, latency, runs);

    private static DateTime ToUtc(DateTime time) => time.Kind == DateTimeKind.Utc ? time : time.ToUniversalTime();

    private static long Micros(TimeSpan time) => time.Ticks / 10;

    private static TimeSpan FromMicros(long microseconds) => TimeSpan.FromTicks(microseconds * 10);
}
