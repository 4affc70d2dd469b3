using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace KeyShell.Engine.Metrics;

/// <summary>
/// The client's instruments on the meter <c>KeyShell.Client</c>, for Invoke-KeyClient and
/// Measure-KeyServer: requests by outcome, and their duration. As with <see cref="ServerMetrics"/>, the
/// Meter is static and each run holds its target's tags, built once.
/// </summary>
internal sealed class ClientMetrics
{
    public const string MeterName = "KeyShell.Client";

    private static readonly Meter Meter = new(MeterName, typeof(ClientMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> Requests = Meter.CreateCounter<long>(
        "keyshell.client.requests", "{request}", "Requests finished, by outcome: ok, or error (an error reply, no reply, or no connection).");

    private static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>(
        "keyshell.client.request.duration", "s", "From sending a request (connecting, per message) to its whole reply; per batch when pipelined.");

    private readonly KeyValuePair<string, object?>[] _ok;
    private readonly KeyValuePair<string, object?>[] _error;

    public ClientMetrics(string computerName, int port)
    {
        _ok = new KeyValuePair<string, object?>[] { new("server.address", computerName), new("server.port", port), new("keyshell.outcome", "ok") };
        _error = new KeyValuePair<string, object?>[] { new("server.address", computerName), new("server.port", port), new("keyshell.outcome", "error") };
    }

    /// <summary>One reply to one request.</summary>
    public void Replied(bool isError, TimeSpan latency)
    {
        var tags = isError ? _error : _ok;
        Requests.Add(1, tags);
        if (RequestDuration.Enabled)
        {
            RequestDuration.Record(latency.TotalSeconds, tags);
        }
    }

    /// <summary>A request that got no reply (timeout, lost connection, refused, cancelled).</summary>
    public void Failed() => Requests.Add(1, _error);

    /// <summary>
    /// Requests of a load worker that ended at <paramref name="now"/>, sent at <paramref name="started"/>
    /// (Stopwatch timestamps): <paramref name="ok"/> answered, <paramref name="errors"/> failed. One Add per
    /// outcome, and the duration once per request, as the load result counts them.
    /// </summary>
    public void Done(long ok, long errors, long started, long now)
    {
        if (ok > 0)
        {
            Requests.Add(ok, _ok);
        }

        if (errors > 0)
        {
            Requests.Add(errors, _error);
        }

        if (RequestDuration.Enabled)
        {
            var seconds = (now - started) / (double)Stopwatch.Frequency;
            for (var i = 0L; i < ok + errors; i++)
            {
                RequestDuration.Record(seconds, i < ok ? _ok : _error);
            }
        }
    }
}
