using System;

namespace KeyShell.Engine.Client;

/// <summary>What a load run measured. Latencies are per request (per batch when pipelined).</summary>
public sealed class LoadResult
{
    internal LoadResult(LoadOptions options, long requests, long errors, TimeSpan elapsed, LatencyHistogram latency)
    {
        ComputerName = options.ComputerName;
        Port = options.Port;
        Concurrency = options.Concurrency;
        Connection = options.Connection;
        Pipeline = options.Pipeline;
        Requests = requests;
        Errors = errors;
        Elapsed = elapsed;
        RequestsPerSecond = elapsed.TotalSeconds > 0 ? (requests - errors) / elapsed.TotalSeconds : 0;
        P50 = Micro(latency.Percentile(50));
        P90 = Micro(latency.Percentile(90));
        P99 = Micro(latency.Percentile(99));
        Max = Micro(latency.Max);
    }

    public string ComputerName { get; }

    public int Port { get; }

    public int Concurrency { get; }

    public ConnectionMode Connection { get; }

    public int Pipeline { get; }

    /// <summary>Requests sent (answered or failed).</summary>
    public long Requests { get; }

    /// <summary>Requests that got an error reply, no reply, or no connection.</summary>
    public long Errors { get; }

    public TimeSpan Elapsed { get; }

    /// <summary>Successful requests per second.</summary>
    public double RequestsPerSecond { get; }

    public TimeSpan P50 { get; }

    public TimeSpan P90 { get; }

    public TimeSpan P99 { get; }

    public TimeSpan Max { get; }

    private static TimeSpan Micro(long microseconds) => TimeSpan.FromTicks(microseconds * 10);
}
